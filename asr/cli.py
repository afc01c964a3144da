"""The ``asr`` command line: a thin layer over the library.

Every error a user can cause (a bad path, a bad file, an unknown option) ends in one
``asr: error: ...`` line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXIT_USER_ERROR = 2
EXIT_PARTIAL_FAILURE = 1


def _fail(message: str, code: int = EXIT_USER_ERROR) -> int:
    print(f"asr: error: {message}", file=sys.stderr)
    return code


def cmd_synth(args: argparse.Namespace) -> int:
    import dataclasses

    from asr.config import ConfigError
    from asr.synth import SynthConfig, synthesize_corpus

    overrides = {k: v for k, v in {
        "train_utterances": args.train, "dev_utterances": args.dev, "test_utterances": args.test,
        "seed": args.seed, "noise": args.noise, "jobs": args.jobs,
    }.items() if v is not None}
    try:
        config = dataclasses.replace(SynthConfig(), **overrides)
    except ValueError as err:
        raise ConfigError(f"synth: {err}") from None
    report = synthesize_corpus(Path(args.out), config, progress=not args.quiet)
    counts = ", ".join(f"{n} {split}" for split, n in report.utterances.items())
    state = "already complete" if report.already_done else f"made in {report.wall_seconds:.0f} s"
    print(f"corpus {args.out}: {counts} utterances, {report.audio_seconds / 3600:.2f} h of audio ({state})")
    if report.failures:
        print(f"{len(report.failures)} utterances failed and were left out: rerun to retry them", file=sys.stderr)
        return EXIT_PARTIAL_FAILURE
    return 0


def cmd_prepare(args: argparse.Namespace) -> int:
    from asr.data import read_librispeech, write_manifest

    utterances, skipped = [], []
    for directory in args.dirs:
        if not Path(directory).is_dir():
            return _fail(f"{directory}: no such directory (expected a LibriSpeech-layout folder of speaker folders)")
        good, bad = read_librispeech(directory, jobs=args.jobs)
        utterances += good
        skipped += bad
    for item in skipped:
        print(f"skipped: {item}", file=sys.stderr)
    count = write_manifest(utterances, args.out)
    hours = sum(u.duration for u in utterances) / 3600
    print(f"wrote {count} utterances ({hours:.2f} h) to {args.out}; skipped {len(skipped)}")
    return EXIT_PARTIAL_FAILURE if skipped and args.strict else 0


def cmd_train(args: argparse.Namespace) -> int:
    from asr.config import load_config
    from asr.train import train

    overrides = dict(_parse_override(o) for o in args.set or [])
    cfg = load_config(args.config, overrides)
    state = train(cfg, args.exp_dir, resume=args.resume, device=args.device, progress=not args.quiet)
    print(f"done: {state.epoch} epochs, {state.step} steps, best dev WER {100 * state.best_wer:.2f}% "
          f"(epoch {state.best_epoch}); model at {Path(args.exp_dir) / 'best.pt'}")
    return 0


def _parse_override(text: str) -> tuple[str, object]:
    import tomllib

    from asr.config import ConfigError

    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. train.epochs=3")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word is taken as a string
    return key.strip(), parsed


def _load(args: argparse.Namespace):
    from asr.checkpoint import load_model
    from asr.inference import resolve_device

    return load_model(args.model, resolve_device(args.device))


def _decoder(args: argparse.Namespace, loaded):
    from asr.decode import GreedyDecoder

    return GreedyDecoder(loaded.vocab)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asr.data import read_manifest
    from asr.evaluate import decode_utterances, format_summary, score, write_reports

    loaded = _load(args)
    utterances = read_manifest(args.manifest)
    if not utterances:
        return _fail(f"{args.manifest}: manifest has no utterances")
    hyps = decode_utterances(
        loaded.model, loaded.config.features, loaded.vocab, utterances, _decoder(args, loaded), progress=not args.json
    )
    result = score(utterances, [h.text for h in hyps])
    out_dir = Path(args.out_dir) if args.out_dir else Path(args.model).parent / f"decode-{Path(args.manifest).stem}"
    write_reports(result, out_dir, [u.speaker for u in utterances])
    if args.json:
        print(json.dumps({**result.summary(), "output_dir": str(out_dir)}))
    else:
        print(format_summary(result))
        print(f"per-utterance results and sclite trn files in {out_dir}")
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.transcribe import transcribe_files

    loaded = _load(args)
    failed = 0
    for item in transcribe_files(loaded, args.audio, _decoder(args, loaded)):
        if item.error:
            failed += 1
            print(f"asr: error: {item.error}", file=sys.stderr)
        else:
            print(f"{item.path}\t{item.text}", flush=True)
    return EXIT_PARTIAL_FAILURE if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Small BiLSTM-CTC speech recognition toolkit.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="make the synthetic espeak-ng corpus in LibriSpeech layout")
    p.add_argument("--out", required=True, help="output folder (gets train/, dev/, test/)")
    p.add_argument("--train", type=int, help="training utterances")
    p.add_argument("--dev", type=int, help="dev utterances")
    p.add_argument("--test", type=int, help="test utterances")
    p.add_argument("--seed", type=int)
    p.add_argument("--noise", type=float, metavar="PROB", help="share of utterances given background noise (default 0.5)")
    p.add_argument("--jobs", type=int, help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", help="LibriSpeech-layout folder(s) -> JSON-lines manifest")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="subset folder(s) holding speaker folders")
    p.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    p.add_argument("--jobs", type=int, help="decoding threads (default: all cores)")
    p.add_argument("--strict", action="store_true", help="exit 1 if any entry was skipped")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model from a TOML config")
    p.add_argument("--config", required=True)
    p.add_argument("--exp-dir", required=True, help="experiment folder for checkpoints and logs")
    p.add_argument("--resume", action="store_true", help="continue from EXP_DIR/last.pt")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    for name, func, helptext in (
        ("evaluate", cmd_evaluate, "decode a manifest and print WER/CER"),
        ("transcribe", cmd_transcribe, "print path<TAB>text for audio files"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--model", required=True, help="checkpoint (.pt)")
        p.add_argument("--device", default="auto", help="auto, cpu or cuda")
        if name == "evaluate":
            p.add_argument("--manifest", required=True)
            p.add_argument("--out-dir", help="where to write per-utterance and trn files")
            p.add_argument("--json", action="store_true", help="print one JSON object")
        else:
            p.add_argument("audio", nargs="+", metavar="AUDIO")
        p.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from asr.errors import USER_ERRORS

    try:
        return args.func(args)
    except USER_ERRORS as err:
        return _fail(" ".join(str(err).split()))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
