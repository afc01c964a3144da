"""Writing transcripts: plain text, JSON with word timings, SRT and WebVTT subtitles."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from asr.align import Word
from asr.batching import Transcript
from asr.io import atomic_write

FORMATS = ("txt", "json", "srt", "vtt")
MAX_SEGMENT_SECONDS = 7.0  # a subtitle stays on screen at most this long
MAX_LINE_CHARS = 42  # the usual subtitle line width; a segment has at most two lines
SPLIT_PAUSE_SECONDS = 0.8  # a silence this long always starts a new segment


@dataclass(frozen=True)
class Segment:
    start: float  # s
    end: float  # s
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


def _fits(words: list[Word], max_seconds: float, line_chars: int) -> bool:
    """Whether ``words`` last at most ``max_seconds`` and fill at most two lines of ``line_chars``."""
    text = " ".join(w.text for w in words)
    return words[-1].end - words[0].start <= max_seconds and all(
        len(line) <= line_chars for line in _wrap(text, line_chars).split("\n"))


def split_segments(
    words: tuple[Word, ...] | list[Word],
    max_seconds: float = MAX_SEGMENT_SECONDS,
    line_chars: int = MAX_LINE_CHARS,
    pause: float = SPLIT_PAUSE_SECONDS,
) -> list[Segment]:
    """Group words into segments of at most ``max_seconds`` and two lines of ``line_chars``.

    A pause of ``pause`` seconds or more always ends a segment. A segment that would grow
    too long is cut at the longest pause in its second half, so cuts fall between phrases
    rather than at a fixed count of words. A single word longer than the limits is a
    segment of its own.
    """
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        if current and word.start - current[-1].end >= pause:
            groups.append(current)
            current = []
        while current and not _fits(current + [word], max_seconds, line_chars):
            candidates = current + [word]
            cut = max(range(max(1, len(current) // 2), len(current) + 1),
                      key=lambda i: (candidates[i].start - candidates[i - 1].end, i))
            groups.append(current[:cut])
            current = current[cut:]
        current.append(word)
    if current:
        groups.append(current)
    return [Segment(g[0].start, g[-1].end, tuple(g)) for g in groups]


def _wrap(text: str, width: int = MAX_LINE_CHARS) -> str:
    """One line, or, when ``text`` is wider than ``width``, two lines broken at the space
    that makes the longer line shortest."""
    if len(text) <= width or " " not in text:
        return text
    cut = min((i for i, c in enumerate(text) if c == " "), key=lambda i: max(i, len(text) - i - 1))
    return text[:cut] + "\n" + text[cut + 1 :]


def _timestamp(seconds: float, separator: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_txt(transcript: Transcript) -> str:
    return transcript.text + "\n"


def word_json(word: Word) -> dict:
    """A word as every JSON output writes it: times to the millisecond, confidence to 1e-4."""
    return {"word": word.text, "start": round(word.start, 3), "end": round(word.end, 3),
            "confidence": round(word.confidence, 4)}


def to_json(transcript: Transcript) -> dict:
    """The transcript as a JSON-ready dict (see the schema in the README)."""
    return {
        "path": transcript.path,
        "text": transcript.text,
        "duration": round(transcript.duration, 3),
        "segments": [
            {
                "start": round(s.start, 3),
                "end": round(s.end, 3),
                "text": s.text,
                "words": [word_json(w) for w in s.words],
            }
            for s in split_segments(transcript.words)
        ],
    }


def to_srt(transcript: Transcript) -> str:
    cues = [
        f"{i}\n{_timestamp(s.start, ',')} --> {_timestamp(s.end, ',')}\n{_wrap(s.text)}\n"
        for i, s in enumerate(split_segments(transcript.words), start=1)
    ]
    return "\n".join(cues)


def to_vtt(transcript: Transcript) -> str:
    cues = [
        f"{_timestamp(s.start, '.')} --> {_timestamp(s.end, '.')}\n{_wrap(s.text)}\n"
        for s in split_segments(transcript.words)
    ]
    return "\n".join(["WEBVTT\n"] + cues)


def render(transcript: Transcript, fmt: str) -> str:
    """The file contents of ``transcript`` in format ``fmt`` (one of :data:`FORMATS`)."""
    if fmt == "json":
        return json.dumps(to_json(transcript), ensure_ascii=False, indent=2) + "\n"
    return {"txt": to_txt, "srt": to_srt, "vtt": to_vtt}[fmt](transcript)


def write_outputs(transcript: Transcript, base: str | Path, formats: tuple[str, ...]) -> list[Path]:
    """Write ``base.<fmt>`` for each format; each file appears whole or not at all."""
    written = []
    for fmt in formats:
        path = Path(f"{base}.{fmt}")
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write(path, what="transcript") as f:
            f.write(render(transcript, fmt))
        written.append(path)
    return written
