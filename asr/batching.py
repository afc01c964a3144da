"""Decoding pieces of many files in shared forward passes, and stitching each file's pieces
back into one :class:`Transcript`.

A :class:`Batcher` owns the files being transcribed: ``asr transcribe`` and the server's
engine open files, add their pieces (from :mod:`asr.segment`) and take back transcripts;
the batcher decides when a batch is full and keeps each file's words and errors. Memory is
bounded by a batch of pieces, whatever a file's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from asr.align import Word, align_words, loud_frames
from asr.audio import SAMPLE_RATE
from asr.hypothesis import Decoder
from asr.inference import Recognizer, pad_waves
from asr.segment import Piece


@dataclass(frozen=True)
class Transcript:
    path: str
    words: tuple[Word, ...] = ()
    duration: float = 0.0  # s of audio
    error: str | None = None  # one line: why the file could not be transcribed

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def frame_seconds(recognizer: Recognizer) -> float:
    """Seconds per model output frame: ``stack`` feature hops."""
    features = recognizer.config.features
    return recognizer.config.model.stack * features.hop_length / features.sample_rate


def decode_words(recognizer: Recognizer, decoder: Decoder,
                 pieces: list[tuple[np.ndarray, float]]) -> list[list[Word]]:
    """Decode (samples, start s) pieces in one forward pass; each piece's words, timed from
    the start of its stream and ending within the piece."""
    seconds = frame_seconds(recognizer)
    waves, lengths = pad_waves([torch.from_numpy(samples) for samples, _ in pieces])
    lp, out_lengths = recognizer.log_probs(waves, lengths)  # (B, T', V), (B,)
    hyps = decoder(lp, out_lengths)
    lp, out_lengths = lp.float().cpu(), out_lengths.cpu()
    words = []
    for (samples, offset), hyp, frames, n in zip(pieces, hyps, lp, out_lengths.tolist()):
        end = offset + len(samples) / SAMPLE_RATE
        loud = loud_frames(samples, round(seconds * SAMPLE_RATE), n)
        words.append([Word(w.text, w.start, min(w.end, end), w.confidence)
                      for w in align_words(hyp, frames[:n], recognizer.vocab, seconds, offset, loud)])
    return words


class _Stitcher:
    """Joins the words of one file's consecutive pieces into one sequence.

    A piece keeps the words whose centre lies between its ``keep_from`` and
    ``keep_until`` and after the end of the last word kept so far. Pieces cut at a pause
    meet in silence, so this only matters for overlapping windows: a word near their stitch
    point is kept once, from whichever window puts its centre first, even if the two time
    it a little differently.
    """

    def __init__(self) -> None:
        self.words: list[Word] = []

    def add(self, words: list[Word], keep_from: float, keep_until: float) -> None:
        """Add a piece's words, timed from the start of the file."""
        floor = max(keep_from, self.words[-1].end) if self.words else keep_from
        self.words.extend(w for w in words if floor < (w.start + w.end) / 2 < keep_until)


@dataclass
class _File:
    path: str
    stitcher: _Stitcher
    samples: int = 0  # read so far
    error: str | None = None
    done: bool = False  # its last piece is decoded


class Batcher:
    """Collects pieces of open files into forward passes and hands back finished files.

    Files are numbered by their callers (``file``: an input index, an upload's id). A file
    is opened, gets its pieces in order with :meth:`add`, and ends with :meth:`end` or
    :meth:`fail`; :meth:`take` or :meth:`finished` hands back its transcript once its last
    piece is decoded.
    """

    def __init__(self, recognizer: Recognizer, decoder: Decoder, batch_seconds: float) -> None:
        """``batch_seconds``: padded audio per forward pass, at least a piece's longest."""
        self._recognizer, self._decoder = recognizer, decoder
        self._batch_samples = batch_seconds * SAMPLE_RATE
        self._files: dict[int, _File] = {}  # files opened and not yet handed back
        self._pending: list[tuple[int, Piece]] = []  # (file, piece) for the next forward pass
        self._longest = 0  # samples of the longest pending piece
        self._next_out = 0  # the next file :meth:`finished` hands back

    def open(self, file: int, path: str) -> None:
        """Start file ``file``; ``path`` names it in its transcript."""
        self._files[file] = _File(path, _Stitcher())

    def add(self, file: int, piece: Piece) -> None:
        """Add the next piece of ``file``, decoding the pending batch first when the piece
        would overflow it."""
        self._files[file].samples = piece.start + len(piece.samples)
        if self._pending and self._padded_samples(piece) > self._batch_samples:
            self.flush()
        self._pending.append((file, piece))
        self._longest = max(self._longest, len(piece.samples))

    def end(self, file: int) -> None:
        """No more pieces of ``file`` follow. A file too short to leave one sample at 16 kHz
        (one sample at 48 kHz) has no piece to wait for: it is done, with no words."""
        state = self._files[file]
        state.done = state.done or state.samples == 0

    def fail(self, file: int, error: str) -> bool:
        """File ``file`` is handed back with ``error`` (one line) instead of words, and its
        pending pieces are dropped; False where it is not open."""
        state = self._files.get(file)
        if state is None:
            return False
        state.error = error
        return True

    def fail_batch(self, error: str) -> list[int]:
        """The pending batch's forward pass failed: drop its pieces and fail their files
        with ``error``, so that the next batch starts afresh; the files failed."""
        failed = [file for file, _ in self._pending if self.fail(file, error)]
        self._clear()
        return failed

    def drop(self, file: int) -> None:
        """Forget file ``file``, finished or not: nothing is handed back for it."""
        self._files.pop(file, None)

    def underfilled(self) -> bool:
        """Whether pieces are pending that, padded, fill under half of a forward pass."""
        return bool(self._pending) and self._padded_samples() < self._batch_samples / 2

    def flush(self) -> None:
        """Decode the pending pieces in one forward pass."""
        if not self._pending:
            return
        pieces = [(piece.samples, piece.start / SAMPLE_RATE) for _, piece in self._pending]
        words = decode_words(self._recognizer, self._decoder, pieces)
        for (file, piece), piece_words in zip(self._pending, words):
            state = self._files.get(file)
            if state is None or state.error is not None:
                continue  # the file failed further on; its pieces are dropped
            state.stitcher.add(piece_words, piece.keep_from, piece.keep_until)
            state.done = piece.last
        self._clear()

    def take(self, file: int) -> Transcript | None:
        """File ``file``'s transcript once its last piece is decoded (or it failed), handed
        back once; None before."""
        state = self._files.get(file)
        if state is None or not (state.done or state.error):
            return None
        del self._files[file]
        if state.error is not None:
            return Transcript(state.path, error=state.error)
        return Transcript(state.path, tuple(state.stitcher.words), state.samples / SAMPLE_RATE)

    def finished(self) -> Iterator[Transcript]:
        """The finished files, in order of their numbers from 0."""
        while (transcript := self.take(self._next_out)) is not None:
            yield transcript
            self._next_out += 1

    def _padded_samples(self, piece: Piece | None = None) -> int:
        """Samples of the pending batch once padded (every piece costs as much as the
        longest), with ``piece`` added to it when given."""
        if piece is None:
            return self._longest * len(self._pending)
        return max(self._longest, len(piece.samples)) * (len(self._pending) + 1)

    def _clear(self) -> None:
        self._pending.clear()
        self._longest = 0
