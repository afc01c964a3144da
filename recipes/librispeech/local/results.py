"""Write RESULTS.md for a LibriSpeech experiment (stage 10 of recipes/librispeech/run.sh).

Reads what stages 7-9 left in ``EXP/decode/METHOD/SET/`` (``result.json`` from
``asr evaluate --json``: the scores and the decoding settings; ``command.txt``; and
``decode.log``, where ``asr evaluate`` said where alpha and beta came from) and prints
Markdown, icefall's way: one table per evaluation set with a row per decoding method, and
under it the exact commands that produced each row. A decoding of another model than
``--model`` (one left from an earlier ``--avg``) is left out.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import shlex
import subprocess
from pathlib import Path


def _method_order(method: str) -> tuple[int, str]:
    return (0 if method == "greedy" else 1, method)


def _weights_source(log: Path) -> str:
    """Where ``asr evaluate`` said alpha and beta came from: ``tuned`` or ``default`` (the
    first word after ``using`` in its note on stderr), or ``""`` when it wrote no note (both
    were given)."""
    if not log.is_file():
        return ""
    for line in log.read_text(errors="replace").splitlines():
        words = line.removeprefix("asr: ").split()
        if words[:1] == ["using"] and len(words) > 1:
            return words[1]
    return ""


def _model(command: Path) -> str | None:
    """The file name of the ``--model`` in the command that made a decoding or a tuning (the
    name alone: every model of an experiment lies in its folder, which may have moved)."""
    if not command.is_file():
        return None
    args = shlex.split(command.read_text())
    return next((Path(value).name for flag, value in itertools.pairwise(args) if flag == "--model"), None)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.2f}"  # null: no reference word to divide by


def _settings(decoding: dict, source: str) -> list[str]:
    """The beam, LM and LM-weight cells of a row, from ``result.json``'s ``decoding``."""
    if decoding.get("decoder") != "beam":
        return ["-", "-", "-"]
    lm = decoding.get("lm")
    if lm is None:
        return [str(decoding["beam_width"]), "-", "-"]
    weights = f"alpha={decoding['alpha']:g} beta={decoding['beta']:g}" + (f" ({source})" if source else "")
    return [str(decoding["beam_width"]), f"`{Path(lm).name}`", weights]


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True)
        return out.stdout.strip() + (" + local changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _training_summary(exp: Path) -> str:
    metrics = exp / "metrics.jsonl"
    if not metrics.is_file():
        return ""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    dev = [r for r in rows if r.get("kind") == "dev"]
    train = [r for r in rows if r.get("kind") == "train"]
    if not dev:
        return ""
    last = dev[-1]
    speed = f", last logged speed {train[-1]['audio_seconds_per_second']:.0f} audio-s/s" if train else ""
    return (f"Training: {last['epoch']} epochs, {last['step']} steps; greedy WER on the per-epoch dev-clean sample "
            f"{100 * last['wer']:.2f}% after the last epoch{speed}.")


def render(args: argparse.Namespace) -> str:
    exp = Path(args.exp)
    decode = exp / "decode"
    methods = sorted((d.name for d in decode.iterdir() if d.is_dir()), key=_method_order) if decode.is_dir() else []
    model = (f"`{args.model}` (the average of the last {args.avg} epochs)" if args.avg > 0
             else f"`{args.model}` (lowest dev WER during training)")
    speeds = f" with speed perturbation {args.speed_perturb}" if args.speed_perturb else ""
    lines = [
        f"# LibriSpeech results: {Path(args.config).stem}",
        "",
        f"Config `{args.config}`, trained on {args.train_set}{speeds}; model {model}.",
        f"Written by stage 10 of `recipes/librispeech/run.sh` on "
        f"{datetime.date.today().isoformat()} (commit {_commit()}). WER and CER in %; S/D/I count words.",
    ]
    summary = _training_summary(exp)
    if summary:
        lines += ["", summary]
    for tune_dir in sorted((exp / "tune").glob("*")) if (exp / "tune").is_dir() else []:
        command = tune_dir / "command.txt"
        if _model(command) == Path(args.model).name:
            lines += ["", f"LM weights for `{tune_dir.name}`, tuned on dev-clean + dev-other with:",
                      "```bash", command.read_text().strip(), "```"]
    for subset in args.sets:
        rows, commands = [], []
        for method in methods:
            where = decode / method / subset
            result_file = where / "result.json"
            if not result_file.is_file() or _model(where / "command.txt") != Path(args.model).name:
                continue
            result = json.loads(result_file.read_text())
            settings = _settings(result.get("decoding", {}), _weights_source(where / "decode.log"))
            cells = [method, _percent(result["wer"]), _percent(result["cer"]),
                     f"{result['substitutions']}/{result['deletions']}/{result['insertions']}",
                     str(result["words"]), str(result["utterances"]), *settings]
            rows.append("| " + " | ".join(cells) + " |")
            commands.append(f"# {method}\n{(where / 'command.txt').read_text().strip()}")
        lines += ["", f"## {subset}", ""]
        if not rows:
            lines.append("Not decoded yet.")
            continue
        lines += ["| decoding | WER | CER | S/D/I | words | utterances | beam | LM | LM weights |",
                  "|---|---:|---:|---:|---:|---:|---:|---|---|", *rows]
        lines += ["", "```bash", *commands, "```"]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--train-set", required=True)
    parser.add_argument("--speed-perturb", default="")
    parser.add_argument("--model", required=True)
    parser.add_argument("--avg", type=int, default=0)
    parser.add_argument("--sets", nargs="+", required=True)
    print(render(parser.parse_args()), end="")


if __name__ == "__main__":
    main()
