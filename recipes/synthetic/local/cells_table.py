"""The table of compare_cells.sh (stage 9): one row per trained variant.

    python recipes/synthetic/local/cells_table.py EXP_DIR

Reads, for each EXP_DIR/<cell>-<bi|uni>/: last.pt's training state (steps, audio seconds,
loop time), best.pt's weights (parameters) and the wer.json of each decode-<set> folder.
Prints a Markdown table and writes it to EXP_DIR/cells.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

VARIANTS = [f"{cell}-{direction}" for direction in ("bi", "uni") for cell in ("lstm", "gru", "rnn")]
SETS = ("dev", "test", "test-short", "test-long")


def row(exp: Path) -> str:
    last = torch.load(exp / "last.pt", weights_only=True, map_location="cpu")
    best = torch.load(exp / "best.pt", weights_only=True, map_location="cpu")
    state = last["state"]
    parameters = sum(t.numel() for name, t in best["model"].items() if not name.startswith("feat_"))
    scores = {s: json.loads((exp / f"decode-{s}" / "wer.json").read_text()) for s in SETS}
    speed = state["audio_seconds"] / state["train_seconds"]
    cells = [exp.name, f"{parameters / 1e6:.2f} M", str(state["step"]), f"{state['train_seconds'] / 60:.1f}",
             f"{speed:.0f}"]
    cells += [f"{100 * scores[s]['wer']:.1f} / {100 * scores[s]['cer']:.1f}" for s in ("dev", "test")]
    cells += [f"{100 * scores[s]['wer']:.1f}" for s in ("test-short", "test-long")]
    return "| " + " | ".join(cells) + " |"


def main(exp_dir: str) -> None:
    root = Path(exp_dir)
    header = ("| variant | parameters | updates | training min | audio-s/s | dev WER / CER % | test WER / CER % "
              "| WER % ≤ 3 s | WER % ≥ 10 s |")
    lines = [header, "|" + "---|" * header.count(" | ") + "---|"]
    lines += [row(root / v) for v in VARIANTS if (root / v / "last.pt").exists()]
    table = "\n".join(lines) + "\n"
    (root / "cells.md").write_text(table, encoding="utf-8")
    print(table, end="")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(sys.argv[1])
