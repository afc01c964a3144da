"""The record a training run keeps in its experiment folder: ``metrics.jsonl`` (one JSON row
per log step or dev score, and an "end" row saying why the run stopped), the same rows as
TensorBoard scalars, and ``curves.png``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.io import write_text_atomic


class TrainingLog:
    """The metrics rows of a run, appended to ``metrics.jsonl`` and given to TensorBoard.

    Only an enabled log (the main process's) touches the files, except that every rank
    removes an earlier run's ``metrics.jsonl`` when a run starts over.
    """

    def __init__(self, exp_dir: Path, enabled: bool) -> None:
        self.exp_dir = exp_dir
        self.path = exp_dir / "metrics.jsonl"
        self.enabled = enabled
        self._board = _TensorBoard()

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self._board.close()  # also after a failure: what was logged reaches the file

    def start_over(self) -> None:
        """Remove what an earlier run in the folder logged."""
        self.path.unlink(missing_ok=True)
        if self.enabled:  # TensorBoard would show an earlier run's event files along with this run's
            for events in self.exp_dir.glob("events.out.tfevents.*"):
                events.unlink()

    def drop_after(self, step: int) -> None:
        """Forget the rows a killed run logged after the checkpoint it resumes from (the resumed
        run logs those steps again), a last row the kill cut short, and the "end" row of a run
        that stopped (the resumed run writes its own)."""
        if not self.enabled or not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        kept = []
        for line in lines:
            try:
                row = json.loads(line)
                if row["step"] <= step and row["kind"] != "end":
                    kept.append(line)
            except (ValueError, KeyError, TypeError):
                pass
        if len(kept) != len(lines):
            write_text_atomic(self.path, "".join(line + "\n" for line in kept))

    def open_board(self, start_step: int) -> None:
        """Start the TensorBoard events of a run that continues after optimizer step ``start_step``."""
        if self.enabled:
            self._board.open(self.exp_dir, start_step)

    def write(self, row: dict) -> None:
        """Append ``row`` ({"kind": "train", "dev" or "end", "epoch", "step", values...})."""
        if self.enabled:
            with self.path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            self._board.add(row)

    def plot_curves(self, out_png: Path) -> None:
        """Training loss against step and dev error rates against epoch, as a PNG."""
        if not self.enabled or not self.path.exists():
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        rows = [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]
        train = [r for r in rows if r["kind"] == "train"]
        dev = [r for r in rows if r["kind"] == "dev"]
        fig, (ax_loss, ax_wer) = plt.subplots(1, 2, figsize=(10, 4))
        ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train])
        ax_loss.set(xlabel="step", ylabel="CTC loss (per token)", title="training loss", yscale="log")
        ax_wer.plot([r["epoch"] for r in dev], [100 * r["wer"] for r in dev], marker="o", label="WER")
        ax_wer.plot([r["epoch"] for r in dev], [100 * r["cer"] for r in dev], marker="s", label="CER")
        ax_wer.set(xlabel="epoch", ylabel="%", title="dev error rate (greedy)")
        ax_wer.legend()
        fig.tight_layout()
        fig.savefig(out_png, dpi=100)
        plt.close(fig)


class _TensorBoard:
    """The metrics rows as TensorBoard scalars ("train/loss", "dev/wer", ...) against their
    step, in event files in the experiment folder, when the optional ``tensorboard`` package
    is installed (``pip install 'asr[tensorboard]'``); without it, nothing at all."""

    def __init__(self) -> None:
        self._writer = None

    def open(self, exp_dir: Path, start_step: int) -> None:
        """Start writing for a run that continues after optimizer step ``start_step``."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        # TensorBoard hides what earlier event files hold from this step on: the rows a killed
        # run logged after the checkpoint it resumes from, which this run logs again.
        self._writer = SummaryWriter(str(exp_dir), purge_step=start_step + 1)

    def add(self, row: dict) -> None:
        if self._writer is not None:
            for name, value in row.items():
                if name not in ("kind", "epoch", "step") and not isinstance(value, str):  # an end row's reason
                    self._writer.add_scalar(f"{row['kind']}/{name}", value, row["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


@dataclass
class LogWindow:
    """The micro-batches since the last train row.

    The loss is summed on the device and read at log time only: a .item() per step would
    make the host wait for the GPU at every step.
    """

    loss: torch.Tensor  # () on the training device
    start: float  # time.perf_counter() when the window opened
    batches: int = 0
    audio_seconds: float = 0.0

    @classmethod
    def open(cls, device: torch.device, start: float) -> LogWindow:
        return cls(torch.zeros((), device=device), start)

    def add(self, loss: torch.Tensor, audio_seconds: float) -> None:
        self.loss += loss.detach()
        self.batches += 1
        self.audio_seconds += audio_seconds

    def row(self, epoch: int, step: int, lr: float, device: torch.device, now: float) -> dict:
        """The train row of epoch ``epoch`` (from 0) that closes the window at optimizer step ``step``."""
        row = {
            "kind": "train", "epoch": epoch + 1, "step": step, "loss": self.loss.item() / self.batches, "lr": lr,
            "audio_seconds_per_second": self.audio_seconds / (now - self.start),
        }
        if device.type == "cuda":
            row["gpu_peak_memory_gb"] = torch.cuda.max_memory_allocated(device) / 2**30
        return row
