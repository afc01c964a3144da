"""Transcribing audio files with a trained model."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.audio import SAMPLE_RATE, AudioError, load_audio
from asr.checkpoint import LoadedModel
from asr.decode import Hypothesis
from asr.inference import log_probs, pad_waves

MAX_BATCH_SECONDS = 240.0  # padded audio per forward pass; bounds memory on any device


@dataclass(frozen=True)
class Transcript:
    path: str
    hypothesis: Hypothesis | None = None
    error: str | None = None  # one line: why the file could not be transcribed

    @property
    def text(self) -> str:
        return self.hypothesis.text if self.hypothesis else ""


def transcribe_files(loaded: LoadedModel, paths: Iterable[str | Path], decoder) -> Iterator[Transcript]:
    """Yield one :class:`Transcript` per path, in order; unreadable files carry an error.

    Files are read ahead and batched, so short files share a forward pass.
    """
    pending: list[tuple[str, torch.Tensor]] = []
    results: list[Transcript] = []

    def flush() -> None:
        if not pending:
            return
        waves, lengths = pad_waves([w for _, w in pending])
        lp, out_lengths = log_probs(loaded.model, loaded.config.features, waves, lengths)
        for (path, _), hyp in zip(pending, decoder(lp, out_lengths)):
            results.append(Transcript(path, hyp))
        pending.clear()

    for path in paths:
        try:
            wave = torch.from_numpy(load_audio(path))
        except AudioError as err:
            flush()
            results.append(Transcript(str(path), error=str(err)))
        else:
            longest = max([len(wave)] + [len(w) for _, w in pending]) / SAMPLE_RATE
            if pending and longest * (len(pending) + 1) > MAX_BATCH_SECONDS:
                flush()
            pending.append((str(path), wave))
        yield from results
        results.clear()
    flush()
    yield from results
