"""Recordings and the utterances cut from them, as every corpus reader needs them: each file
decoded once (a good header can front a truncated body), and an utterance that spans the
whole file written as a plain row, one inside a longer recording as an offset row
(``offset`` + ``duration``), read at load time without cutting the file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

from asr.audio import AudioError, decoded_seconds

if TYPE_CHECKING:
    from asr.data import Utterance

# Kaldi's extract-segments (--max-overshoot): a segment that ends this little past the end of
# its recording is cut at the end; one that ends further past it is refused.
SEGMENT_OVERRUN_SECONDS = 0.5
# A segment from 0 to within this of its recording's end is the whole file: durations written
# to 0.1 ms, or at the file's own rate rather than 16 kHz, differ by less.
WHOLE_FILE_TOLERANCE_SECONDS = 1e-4


@dataclass(frozen=True)
class Skipped:
    """An entry that could not be prepared, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


def _measure(path: str) -> float | str:
    try:
        return decoded_seconds(path)
    except AudioError as err:
        return err.reason


def measure_recordings(paths: Iterable[str], jobs: int | None = None) -> dict[str, float | str]:
    """Each distinct file decoded once: path -> its seconds at 16 kHz, or why it cannot be
    read. soundfile and soxr release the GIL while decoding and resampling, so threads scale."""
    unique = sorted(set(paths))
    with ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 1) as pool:
        return dict(zip(unique, pool.map(_measure, unique)))


def recording_utterance(utt_id: str, path: str, seconds: float, text: str, speaker: str, start: float = 0.0,
                        end: float | None = None, phones: str = "") -> Utterance | str:
    """The utterance saying ``text`` from ``start`` to ``end`` s (None: to the end) of the file
    ``path``, which decodes to ``seconds``; or, as a string, why it cannot be one.

    A span from 0 to the end is the whole file, a plain row; any other span an offset row.
    A span that ends up to ``SEGMENT_OVERRUN_SECONDS`` past the end is cut there.
    """
    from asr.data import Utterance  # torch comes with it: downloads do without

    if end is not None and end - seconds > SEGMENT_OVERRUN_SECONDS or start >= seconds:
        return (f"segment {start:g}-{end if end is not None else 'end'} s of {path} lies past the end of its audio "
                f"({seconds:.3f} s)")
    end = seconds if end is None else min(end, seconds)
    if end <= start:
        return f"segment {start:g}-{end:g} s ends before it starts"
    if start == 0 and seconds - end <= WHOLE_FILE_TOLERANCE_SECONDS:
        return Utterance(utt_id, path, round(seconds, 4), text, speaker, phones=phones)
    return Utterance(utt_id, path, round(end - start, 4), text, speaker, phones=phones, offset=round(start, 4))
