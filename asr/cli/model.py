"""Commands that make or convert a model: train, average, export."""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

from asr.cli.args import whole

if TYPE_CHECKING:
    from asr.train import TrainingState


def add_train(sub) -> None:
    p = sub.add_parser("train", help="train a model from a TOML config")
    p.add_argument("--config", required=True)
    p.add_argument("--exp-dir", required=True, help="experiment folder for checkpoints and logs")
    p.add_argument("--resume", action="store_true", help="continue from EXP_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="EXP_DIR holds an earlier run: delete its checkpoints and metrics and start over")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from asr.config import load_config
    from asr.train import train

    overrides = dict(_parse_override(o) for o in args.set or [])
    cfg = load_config(args.config, overrides)
    state = train(cfg, args.exp_dir, resume=args.resume, overwrite=args.overwrite, device=args.device,
                  progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports
    print(done_line(cfg.text.units, state, Path(args.exp_dir) / "best.pt"))
    return 0


def done_line(units: str, state: TrainingState, best: Path) -> str:
    """What ``asr train`` says at the end: how far the run got, its best dev score and where
    the model is."""
    rate = "phone error rate" if units == "phones" else "WER"  # the dev score train printed each epoch
    scored = (f"best dev {rate} {100 * state.best_wer:.2f}% (epoch {state.best_epoch})"
              if math.isfinite(state.best_wer) else "no dev score")
    # A time budget can stop within an epoch, which the epoch count alone would not show.
    part = f" and part of epoch {state.latest_epoch}" if state.latest_epoch > state.epoch else ""
    return (f"done: {state.epoch} epochs{part}, {state.step} steps, {scored}; "
            + (f"model at {best}" if best.exists() else "no best.pt was written"))


def _parse_override(text: str) -> tuple[str, object]:
    import tomllib

    from asr.errors import ConfigError

    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. train.epochs=3")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word is taken as a string
    return key.strip(), parsed


def add_average(sub) -> None:
    p = sub.add_parser("average", help="average the weights of several checkpoints into one")
    p.add_argument("checkpoints", nargs="*", metavar="CKPT", help="checkpoint files to average (or use --exp-dir)")
    p.add_argument("--exp-dir", help="experiment folder holding epoch-N.pt files (train.keep_epochs)")
    p.add_argument("--last", type=whole(1), default=5, metavar="N", help="with --exp-dir: average the last N epochs (default 5)")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.set_defaults(func=run_average)


def run_average(args: argparse.Namespace) -> int:
    from asr.average import AverageError, average_checkpoints, last_epochs

    if bool(args.checkpoints) == bool(args.exp_dir):
        raise AverageError("give one of --exp-dir EXP (with --last N) or checkpoint files")
    paths = last_epochs(args.exp_dir, args.last) if args.exp_dir else [Path(p) for p in args.checkpoints]
    out = average_checkpoints(paths, args.out)
    print(f"wrote {out}: the average of {len(paths)} checkpoints ({', '.join(p.name for p in paths)})")
    return 0


def add_export(sub) -> None:
    p = sub.add_parser("export", help="export a checkpoint's acoustic model to ONNX (needs asr[onnx])")
    p.add_argument("--model", required=True, help="checkpoint (.pt)")
    p.add_argument("--out", required=True, help="ONNX file to write (.onnx); asr transcribe --model reads it")
    p.add_argument("--opset", type=whole(7), default=17, help="ONNX opset version (default 17)")
    p.add_argument("--compute-type", choices=("float32", "int8"), default="float32",
                   help="int8: also quantise the weights (ONNX Runtime's dynamic int8) after checking the float32 graph")
    p.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from asr.checkpoint import load_model
    from asr.export import export_onnx

    exported = export_onnx(load_model(args.model, "cpu"), args.out, args.opset, int8=args.compute_type == "int8")
    if exported.float32_difference is None:
        print(f"wrote {exported.path}; onnxruntime is not installed, so it was not checked against PyTorch")
        return 0
    print(f"wrote {exported.path} (opset {args.opset}, dynamic batch and time); ONNX Runtime matches PyTorch "
          f"within {exported.float32_difference:.1e} in log-probability")
    if exported.int8_difference is not None:
        print(f"quantised {exported.path} to int8 (dynamic): log-probabilities within {exported.int8_difference:.2g} "
              "of float32 on random features; measure its WER with asr evaluate --model")
    return 0
