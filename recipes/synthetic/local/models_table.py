"""The tables of compare_models.sh (stage 19): one row per trained variant of a budget.

    python recipes/synthetic/local/models_table.py BUDGET_DIR [VARIANT ...]

Reads, for each BUDGET_DIR/VARIANT/: best.pt's config (encoder, cell, direction) and weights
(parameters), last.pt's training state (updates, audio seconds, loop time) and the wer.json
of each decode-SET folder. Prints a Markdown table, with a caption naming the budget (the
folder's name: updates or time) and the test sets, and writes both to BUDGET_DIR/models.md.
A file that is missing leaves its cells "—".
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import torch

MISSING = "—"
SCORED = ("dev", "test-indomain", "test")  # WER / CER
BY_LENGTH = ("test-short", "test-long")  # WER only
# wer.json's audio decoded and the wall time that took (reading, features, model, decoder).
AUDIO_SECONDS, DECODE_SECONDS = "audio_seconds", "decode_seconds"
HEADER = ("| variant | encoder (cell) | streams | parameters | updates | training min | training audio-s/s "
          "| inference audio-s/s | dev WER / CER % | test-indomain WER / CER % "
          "| test (general English) WER / CER % | WER % ≤ 3 s | WER % ≥ 10 s |")
BUDGETS = {
    "updates": "Budget: the same updates (each config's epochs, one seed: the same batches in the same order).",
    "time": "Budget: the same training-loop seconds (train.max_train_seconds), the learning rate decaying over them.",
}
CAPTION = ("Greedy decoding. ≤ 3 s: the utterances of test (general English) of at most 3 s; ≥ 10 s: each test "
           "speaker's consecutive utterances joined until at least 10 s (local/length_sets.py). Training min and "
           "audio-s/s: the training loop's own wall time and throughput; inference audio-s/s: on test.")


def load(path: Path) -> dict[str, Any] | None:
    return torch.load(path, weights_only=True, map_location="cpu") if path.is_file() else None


def read_json(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def percent(score: dict[str, Any] | None, key: str) -> str:
    value = None if score is None else score.get(key)
    return MISSING if value is None else f"{100 * value:.1f}"


def model_cells(best: dict[str, Any] | None) -> list[str]:
    """encoder (cell), streams, parameters: from the checkpoint's own config and weights."""
    if best is None:
        return [MISSING] * 3
    model = best["config"]["model"]
    encoder = model.get("encoder", "rnn")
    recurrent = encoder == "rnn"
    # Attention here sees the whole utterance; a recurrent layer streams when it runs forward only.
    streams = "yes (causal)" if recurrent and not model["bidirectional"] else "no"
    parameters = sum(t.numel() for name, t in best["model"].items() if not name.startswith("feat_"))
    return [f"{encoder} ({model['cell']})" if recurrent else encoder, streams, f"{parameters / 1e6:.2f} M"]


def training_cells(last: dict[str, Any] | None) -> list[str]:
    """updates, training min, training audio-s/s: from last.pt's training state."""
    if last is None:
        return [MISSING] * 3
    state = last["state"]
    speed = state["audio_seconds"] / state["train_seconds"] if state["train_seconds"] else None
    return [str(state["step"]), f"{state['train_seconds'] / 60:.1f}", MISSING if speed is None else f"{speed:.0f}"]


def inference_cell(score: dict[str, Any] | None) -> str:
    if score is None or not score.get(DECODE_SECONDS) or score.get(AUDIO_SECONDS) is None:
        return MISSING
    return f"{score[AUDIO_SECONDS] / score[DECODE_SECONDS]:.0f}"


def row(variant_dir: Path) -> str:
    scores = {s: read_json(variant_dir / f"decode-{s}" / "wer.json") for s in SCORED + BY_LENGTH}
    cells = [variant_dir.name, *model_cells(load(variant_dir / "best.pt")), *training_cells(load(variant_dir / "last.pt")),
             inference_cell(scores["test"])]
    cells += [f"{percent(scores[s], 'wer')} / {percent(scores[s], 'cer')}" for s in SCORED]
    cells += [percent(scores[s], "wer") for s in BY_LENGTH]
    return "| " + " | ".join(cells) + " |"


def table(budget_dir: Path, variants: list[str]) -> str:
    caption = f"{BUDGETS.get(budget_dir.name, f'Budget: {budget_dir.name}.')} {CAPTION}"
    lines = [caption, "", HEADER, "|" + "---|" * (HEADER.count(" | ") + 1)]
    lines += [row(budget_dir / v) for v in variants]
    return "\n".join(lines) + "\n"


def main(budget_dir: str, variants: list[str]) -> None:
    root = Path(budget_dir)
    text = table(root, variants)
    root.mkdir(parents=True, exist_ok=True)
    (root / "models.md").write_text(text, encoding="utf-8")
    print(text, end="")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(sys.argv[1], sys.argv[2:])
