"""Transcribing audio files of any length with a trained model: its options, finding the
files to transcribe, and :func:`transcribe_files`.

Files are streamed, never loaded whole: each is read in blocks, mixed to mono and
resampled to 16 kHz as it goes, cut into pieces of at most a window (``WINDOW_SECONDS``)
at pauses (:mod:`asr.segment`), and the pieces of all files share forward passes
(:mod:`asr.batching`). Memory is bounded by a batch of pieces, whatever a file's length.
An input from a manifest row with an offset is its span of the file, read as if cut out.
Under torchrun each process transcribes a share of the inputs of about equal length
(:func:`share_inputs`).
"""

from __future__ import annotations

import glob
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.audio import AUDIO_EXTENSIONS, READ_SECONDS, AudioError, estimated_duration, stream_audio
from asr.batching import Batcher, Transcript
from asr.data import Utterance
from asr.hypothesis import Decoder
from asr.inference import Recognizer
from asr.io import walk_files
from asr.segment import MIN_PAUSE_SECONDS, Piece, cut_pieces
from asr.sharding import balanced_shares

WINDOW_SECONDS = 20.0  # longest piece decoded at once: the demo model trains on utterances of up to 20 s
OVERLAP_SECONDS = 4.0  # where a window must be cut without a pause, 2 s of context on each side of the stitch
# Padded audio per forward pass, which bounds memory. A GPU gains from large batches. A CPU
# does not: 30-60 s batches transcribed the demo's test set as fast as 240 s ones, and a
# 60-minute file peaked at 504 MB RSS against 846 MB (docs/benchmarks.md, issue 17).
MAX_BATCH_SECONDS = 240.0
CPU_BATCH_SECONDS = 32.0
MIN_STEP_SECONDS = 1.0  # shortest window, and shortest step from one overlapping window to the next


@dataclass(frozen=True)
class TranscribeOptions:
    window_seconds: float = WINDOW_SECONDS
    overlap_seconds: float = OVERLAP_SECONDS
    min_pause_seconds: float = MIN_PAUSE_SECONDS  # math.inf: cut long files into overlapping windows only
    max_batch_seconds: float | None = None  # None: by device, CPU_BATCH_SECONDS or MAX_BATCH_SECONDS
    read_seconds: float = READ_SECONDS

    def __post_init__(self) -> None:
        # A window of microseconds, or one that steps on by microseconds, would cut a file
        # into millions of pieces: as good as a hang.
        if not self.window_seconds >= MIN_STEP_SECONDS:
            raise ValueError(f"window ({self.window_seconds} s) must be at least {MIN_STEP_SECONDS:g} s")
        if not 0 <= self.overlap_seconds <= self.window_seconds - MIN_STEP_SECONDS:
            raise ValueError(f"overlap ({self.overlap_seconds} s) must be at least {MIN_STEP_SECONDS:g} s shorter "
                             f"than the window ({self.window_seconds} s)")
        if self.min_pause_seconds <= 0:
            raise ValueError(f"min_pause_seconds must be positive, got {self.min_pause_seconds}")
        too_small = self.max_batch_seconds is not None and self.max_batch_seconds < self.window_seconds
        if too_small or self.read_seconds <= 0:
            raise ValueError("max_batch_seconds must hold a window and read_seconds must be positive")

    def batch_seconds(self, device: torch.device) -> float:
        """Padded audio per forward pass on ``device``: at least a window."""
        if self.max_batch_seconds is not None:
            return self.max_batch_seconds
        return max(self.window_seconds, CPU_BATCH_SECONDS if device.type == "cpu" else MAX_BATCH_SECONDS)

    def pieces(self, blocks: Iterable[np.ndarray]) -> Iterator[Piece]:
        """The pieces a stream of 16 kHz sample blocks is cut into, with this window, overlap
        and pause."""
        return cut_pieces(blocks, self.window_seconds, self.overlap_seconds, self.min_pause_seconds)


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioInput:
    """One file to transcribe. ``name`` names its outputs under an output folder: its path
    relative to the folder argument it was found in, else its file name, without the
    extension; ``-2``, ``-3``, ... are appended where two inputs would share a name."""

    path: str
    name: str
    offset: float | None = None  # from a manifest row: where its span of the file starts (s); None: all of it
    duration: float | None = None  # from a manifest row: its length (s)

    @property
    def span(self) -> dict[str, float | None]:
        """The part of the file to read, as :func:`asr.audio.stream_audio`'s keywords."""
        if self.offset is None:
            return {}
        return {"offset": self.offset, "duration": self.duration}


def _unique(names: set[str], stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``, ... where ``names`` holds it already; added to ``names``."""
    name, copy = stem, 1
    while name in names:
        copy += 1
        name = f"{stem}-{copy}"
    names.add(name)
    return name


def find_inputs(arguments: Iterable[str], rows: Iterable[Utterance] = ()) -> tuple[list[AudioInput], list[str]]:
    """Expand files, folders (searched recursively for audio extensions) and glob patterns,
    then add manifest ``rows`` (each named by its id; a row with an offset is its span).

    Returns the inputs in argument order (each folder's files sorted), without duplicates,
    and one error line for each argument that names nothing.
    """
    inputs: list[AudioInput] = []
    errors: list[str] = []
    seen: set[Path] = set()
    names: set[str] = set()

    def add(path: Path, relative: Path) -> None:
        key = path.resolve()
        if key in seen:
            return
        seen.add(key)
        inputs.append(AudioInput(str(path), _unique(names, str(relative.with_suffix("")))))

    def add_folder(folder: Path) -> int:
        found, unreadable = walk_files(folder, lambda name: Path(name).suffix.lower() in AUDIO_EXTENSIONS)
        errors.extend(f"{path}: cannot read folder ({reason}); its files are not transcribed"
                      for path, reason in unreadable)
        found = [p for p in found if p.is_file()]
        for p in found:
            add(p, p.relative_to(folder))
        return len(found) + len(unreadable)

    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            if not add_folder(path):
                errors.append(f"{argument}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) in this folder")
        elif path.exists() or path.is_symlink():
            add(path, Path(path.name))
        elif glob.has_magic(argument):
            matches = _glob(argument)
            if not matches:
                errors.append(f"{argument}: no files match this pattern")
            for match in map(Path, matches):
                if match.is_dir():
                    add_folder(match)
                else:
                    add(match, Path(match.name))
        else:
            errors.append(f"{argument}: no such file or folder")
    for row in rows:
        span = {} if row.offset is None else {"offset": row.offset, "duration": row.span_seconds}
        inputs.append(AudioInput(row.audio_filepath, _unique(names, row.id), **span))
    return inputs, errors


def share_inputs(inputs: list[AudioInput], rank: int, world_size: int) -> list[int]:
    """The indices of the inputs rank ``rank`` of ``world_size`` transcribes: shares of
    about equal audio (a manifest row's duration, else the file's header or size)."""
    costs = [source.duration if source.duration is not None else estimated_duration(source.path) for source in inputs]
    return balanced_shares(costs, world_size)[rank]


def transcript_rows(done: Iterable[tuple[AudioInput, Transcript]]) -> Iterator[Utterance]:
    """Manifest rows of transcribed inputs: id (the input's name), absolute path, span and
    the transcript as ``text``; inputs that failed are left out."""
    for source, item in done:
        if item.error is None:
            yield Utterance(source.name, str(Path(source.path).absolute()), round(item.duration, 4), item.text,
                            source.name.split("-")[0], offset=source.offset)


def _glob(pattern: str) -> list[Path]:
    """``glob.glob(pattern, recursive=True)``, sorted, but ``**`` does not follow symbolic
    links to folders: through a link loop, glob's paths would multiply without end."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = Path(*parts[:first]) if first else Path()
    return sorted(base.glob(str(Path(*parts[first:]))))


# --- transcription ------------------------------------------------------------------------


def transcribe_files(
    recognizer: Recognizer, paths: Iterable[str | Path | AudioInput], decoder: Decoder,
    options: TranscribeOptions = TranscribeOptions(),
) -> Iterator[Transcript]:
    """Yield one :class:`Transcript` per path, in order; unreadable files carry an error.
    An :class:`AudioInput` with an offset is transcribed as its span of the file, word times
    counted from the span's start.

    ``recognizer`` is a checkpoint's :class:`~asr.checkpoint.LoadedModel` or an
    :class:`~asr.export.OnnxModel`.
    """
    batcher = Batcher(recognizer, decoder, options.batch_seconds(recognizer.device))
    for index, path in enumerate(paths):
        source = path if isinstance(path, AudioInput) else AudioInput(str(path), "")
        batcher.open(index, source.path)
        try:
            for piece in options.pieces(stream_audio(source.path, options.read_seconds, **source.span)):
                batcher.add(index, piece)
                yield from batcher.finished()
            batcher.end(index)
        except AudioError as err:
            batcher.fail(index, str(err))
        yield from batcher.finished()
    batcher.flush()
    yield from batcher.finished()
