"""Cutting a stream of audio into pieces the model can decode, at pauses where it can.

A stream no longer than a window is one piece. A longer one is cut into pieces of at most
a window: in its first pause (``MIN_PAUSE_SECONDS`` of silence) in the window, so that each
piece is heard like the single utterances the model was trained on, the cut falling
``LEAD_IN_SECONDS`` before the sound resumes (or mid-pause, for a short pause); where a
window has no pause, it ends there and the next piece starts an overlap earlier, and each
:class:`Piece` says which of its words to keep so that the two can be stitched in the
middle of their overlap. :func:`silent_frames` judges pauses for live captions too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from asr.align import DIGITAL_SILENCE_DB, energy_db, noise_floor
from asr.audio import SAMPLE_RATE

MIN_PAUSE_SECONDS = 0.25  # silence that may end a piece of a long file: longer than pauses inside words
PAUSE_FRAME = 160  # samples: 10 ms frames for finding pauses
PAUSE_DEPTH_DB = 20.0  # pauses are sought only where speech (90th percentile) is this far above the floor
PAUSE_MARGIN_DB = 8.0  # frames this close to the noise floor count as pause
LEAD_IN_SECONDS = 0.1  # a piece that follows a pause starts at most this long before the sound resumes


@dataclass(frozen=True)
class Piece:
    """Part of a file to decode on its own, and which of its words to keep: those whose
    centre lies after ``keep_from`` (and after the last word kept) and before ``keep_until``."""

    start: int  # sample of the file where the piece begins
    samples: np.ndarray  # (N,)
    keep_from: float  # s
    keep_until: float  # s; math.inf for the last piece

    @property
    def last(self) -> bool:
        return self.keep_until == math.inf


def _first_pause(samples: np.ndarray, min_pause: float, sound_after: bool) -> int | None:
    """Where to cut in the first silence of at least ``min_pause`` 10 ms frames that follows
    sound (and, with ``sound_after``, is followed by sound): ``LEAD_IN_SECONDS`` before its
    end, or at its middle if that is later; None without such a silence.

    Most of the pause goes to the piece before: a model hears a long lead-in of background
    noise worse than a long tail (with the 2026-11-21 demo model, 0.3 s more noise before each
    utterance of a noisy recording took WER from 23.9% to 26.7%; after it, to 24.7%).
    """
    energy = energy_db(samples, PAUSE_FRAME)
    silent = silent_frames(energy, energy)
    sound = np.flatnonzero(~silent)
    if not len(sound):
        return None
    edges = np.diff(np.concatenate([[0], silent[sound[0] :].astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)  # runs of silence, from the first sound
    for begin, end in zip(starts, ends):
        if end - begin >= min_pause and (end < len(silent) - sound[0] or not sound_after):
            lead_in = round(LEAD_IN_SECONDS * SAMPLE_RATE / PAUSE_FRAME)
            return int(sound[0] + max((begin + end) // 2, end - lead_in)) * PAUSE_FRAME
    return None


def silent_frames(energy: np.ndarray, history: np.ndarray) -> np.ndarray:
    """Which 10 ms frames of ``energy`` (dB, (T,)) are pause, judged against the noise floor
    and speech level of ``history`` (dB frames of the audio around them, ``energy`` itself
    for a whole file); (T,) bool."""
    silent = energy <= DIGITAL_SILENCE_DB
    # Quiet frames count only where speech stands well above the floor: in noisy audio, or
    # in speech without a pause, the quietest frames may be parts of words. The margin is
    # below the 10 dB of word edges, as a false pause cuts a word in two.
    if len(history) and np.percentile(history, 90) - (floor := noise_floor(history)) >= PAUSE_DEPTH_DB:
        silent |= energy <= max(floor + PAUSE_MARGIN_DB, float(history.max()) - 40.0)
    return silent


def _pieces(blocks: Iterable[np.ndarray], window: int, overlap: int, min_pause: float) -> Iterator[Piece]:
    """Cut a stream of sample blocks into pieces of at most ``window`` samples.

    A stream no longer than ``window`` is one piece. Otherwise a piece ends in the middle
    of the first pause in its window, or, without one, after ``window`` samples, with the
    next piece starting ``overlap`` samples earlier. Holds about a window and a block.
    """
    buffer = np.zeros(0, np.float32)
    start, keep_from, long = 0, 0.0, False
    for block in blocks:
        buffer = np.concatenate([buffer, block])
        while len(buffer) > window:
            long = True
            cut = _first_pause(buffer[:window], min_pause, sound_after=False)
            if cut is not None:
                yield Piece(start, buffer[:cut], keep_from, (start + cut) / SAMPLE_RATE)
                buffer, start, keep_from = buffer[cut:], start + cut, (start + cut) / SAMPLE_RATE
            else:
                hop = window - overlap
                yield Piece(start, buffer[:window], keep_from, (start + window - overlap / 2) / SAMPLE_RATE)
                # The first quarter of the overlap sits too near the new piece's edge to be trusted.
                buffer, start, keep_from = buffer[hop:], start + hop, (start + hop + overlap / 4) / SAMPLE_RATE
    while long and (cut := _first_pause(buffer, min_pause, sound_after=True)) is not None:
        yield Piece(start, buffer[:cut], keep_from, (start + cut) / SAMPLE_RATE)
        buffer, start, keep_from = buffer[cut:], start + cut, (start + cut) / SAMPLE_RATE
    if len(buffer):
        yield Piece(start, buffer, keep_from, math.inf)


def cut_pieces(blocks: Iterable[np.ndarray], window_seconds: float, overlap_seconds: float,
               min_pause_seconds: float) -> Iterator[Piece]:
    """:func:`_pieces` of 16 kHz sample blocks, with the window, overlap and pause in seconds."""
    window = round(window_seconds * SAMPLE_RATE)
    overlap = round(overlap_seconds * SAMPLE_RATE)
    min_pause = min_pause_seconds * SAMPLE_RATE / PAUSE_FRAME  # frames
    return _pieces(blocks, window, overlap, min_pause)
