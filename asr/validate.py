"""Checking manifests before training, in the spirit of Kaldi's ``validate_data_dir.sh``.

Every row of every manifest is checked and every problem reported, not only the first:
rows that are not manifest rows, duplicate ids, missing or unreadable audio, durations that
do not match the audio, empty transcripts and characters the vocabulary cannot spell.
Audio is checked from its header (cheap for 281k LibriSpeech files), or decoded where a
compressed format's header only estimates the duration (m4a, webm, MP3); ``asr prepare``
already decoded every file once.
"""

from __future__ import annotations

import json
import math
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asr.audio import AudioError, audio_duration
from asr.data import Utterance, manifest_row
from asr.text import Vocabulary

# Allowed gap between a row's duration and its audio's: prepare rounds to 0.1 ms, and speed
# perturbation and resampling shift the length by a sample or two.
DURATION_TOLERANCE_S = 0.02

# Problem kinds, each a short name the CLI prints and tests match on.
BAD_ROW = "bad row"
DUPLICATE_ID = "duplicate id"
MISSING_AUDIO = "missing audio"
UNREADABLE_AUDIO = "unreadable audio"
DURATION_MISMATCH = "duration mismatch"
EMPTY_TEXT = "empty text"
OUT_OF_VOCABULARY = "characters outside the vocabulary"
EMPTY_MANIFEST = "empty manifest"
MISSING_MANIFEST = "missing manifest"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a manifest: where (file, line, id), what kind, and the details."""

    manifest: str
    line: int  # 1-based; 0 for the manifest as a whole
    utt_id: str
    kind: str
    detail: str

    def __str__(self) -> str:
        where = f"{self.manifest}:{self.line}" if self.line else self.manifest
        return f"{where}: {self.utt_id + ': ' if self.utt_id else ''}{self.kind}: {self.detail}"


def validate_manifest(
    path: str | Path, vocab: Vocabulary = Vocabulary(), jobs: int | None = None
) -> tuple[int, list[Problem]]:
    """Check one manifest; return the number of rows read and every problem found.

    The text is checked as written, before the normalisation :func:`asr.data.read_manifest`
    applies, so a transcript that would be silently changed (lower case, digits, accents)
    is reported rather than trained on in a form nobody looked at.
    """
    path = Path(path)
    if not path.is_file():
        return 0, [Problem(str(path), 0, "", MISSING_MANIFEST, "no such file")]
    problems: list[Problem] = []
    rows: list[tuple[int, Utterance]] = []
    first_line: dict[str, int] = {}
    with path.open(encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                utt = manifest_row(json.loads(line), path.parent, normalize=False)
                if not (math.isfinite(utt.duration) and utt.duration > 0):
                    raise ValueError(f"duration must be a positive number of seconds, got {utt.duration!r}")
            except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
                detail = f"missing key {err}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
                problems.append(Problem(str(path), number, "", BAD_ROW, detail))
                continue
            if utt.id in first_line:
                problems.append(Problem(str(path), number, utt.id, DUPLICATE_ID,
                                        f"also on line {first_line[utt.id]}"))
            else:
                first_line[utt.id] = number
            if not utt.text.strip():
                problems.append(Problem(str(path), number, utt.id, EMPTY_TEXT, "the transcript is empty"))
            else:
                outside = vocab.unknown_characters(utt.text)
                if outside:
                    problems.append(Problem(
                        str(path), number, utt.id, OUT_OF_VOCABULARY,
                        f"{''.join(outside)!r} in {utt.text!r}; the vocabulary has only "
                        f"{''.join(t for t in vocab.tokens[1:] if t != ' ')!r} and space (asr prepare writes such text)",
                    ))
            rows.append((number, utt))
    if not rows and not problems:
        problems.append(Problem(str(path), 0, "", EMPTY_MANIFEST, "no rows"))
    # Speed-perturbed rows share their audio: each file's header is read once. soundfile
    # releases the GIL while reading, so threads help on network disks.
    files = sorted({utt.audio_filepath for _, utt in rows})
    with ThreadPoolExecutor(max_workers=jobs or min(8, os.cpu_count() or 1)) as pool:
        seconds = dict(zip(files, pool.map(_audio_seconds, files)))
    for number, utt in rows:
        found = seconds[utt.audio_filepath]
        if isinstance(found, Problem):
            problems.append(Problem(str(path), number, utt.id, found.kind, found.detail))
        elif utt.offset is not None:
            if utt.offset + utt.span_seconds > found + DURATION_TOLERANCE_S:
                problems.append(Problem(
                    str(path), number, utt.id, DURATION_MISMATCH,
                    f"the span {utt.offset:g} + {utt.span_seconds:g} s ends past the end of {utt.audio_filepath} "
                    f"({found:.3f} s)",
                ))
        elif abs(found / utt.speed - utt.duration) > DURATION_TOLERANCE_S:
            speed = f" at speed {utt.speed:g}" if utt.speed != 1.0 else ""
            problems.append(Problem(
                str(path), number, utt.id, DURATION_MISMATCH,
                f"the row says {utt.duration:.3f} s but {utt.audio_filepath} lasts {found / utt.speed:.3f} s{speed}",
            ))
    problems.sort(key=lambda p: p.line)
    return len(rows), problems


def _audio_seconds(audio: str) -> float | Problem:
    """The file's duration (from its header where the format has an exact one), or the
    problem (kind and detail) that prevents reading it."""
    if not Path(audio).exists():
        return Problem("", 0, "", MISSING_AUDIO, f"{audio} does not exist")
    try:
        seconds = audio_duration(audio)
    except AudioError as err:
        return Problem("", 0, "", UNREADABLE_AUDIO, str(err))
    if seconds == 0:
        return Problem("", 0, "", UNREADABLE_AUDIO, f"{audio} has no samples")
    return seconds


def validate_manifests(
    paths: list[str | Path], vocab: Vocabulary = Vocabulary(), jobs: int | None = None
) -> tuple[int, list[Problem]]:
    """:func:`validate_manifest` over several files; ids need only be unique within each."""
    total, problems = 0, []
    for path in paths:
        count, found = validate_manifest(path, vocab, jobs)
        total += count
        problems += found
    return total, problems
