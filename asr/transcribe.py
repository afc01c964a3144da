"""Transcribing audio files of any length with a trained model.

Files are streamed, never loaded whole: each is read in blocks, mixed to mono and
resampled to 16 kHz as it goes. A file no longer than a window (``WINDOW_SECONDS``) is
decoded whole. A longer one is cut into pieces of at most a window: in its first pause
(``MIN_PAUSE_SECONDS`` of silence) in the window, so that each piece is heard like the
single utterances the model was trained on, the cut falling ``LEAD_IN_SECONDS`` before
the sound resumes (or mid-pause, for a short pause); where a window has no pause,
it ends there and the next piece starts ``OVERLAP_SECONDS`` earlier, and the two are
stitched in the middle of their overlap (see :class:`_Stitcher`). Pieces of all files
share forward passes. Memory is bounded by a batch of pieces, whatever a file's length.
"""

from __future__ import annotations

import glob
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from asr.align import DIGITAL_SILENCE_DB, Word, align_words, energy_db, loud_frames, noise_floor
from asr.audio import AUDIO_EXTENSIONS, READ_SECONDS, SAMPLE_RATE, AudioError, stream_audio
from asr.decode import Decoder
from asr.inference import Recognizer, pad_waves
from asr.io import walk_files

WINDOW_SECONDS = 20.0  # longest piece decoded at once: the demo model trains on utterances of up to 20 s
OVERLAP_SECONDS = 4.0  # where a window must be cut without a pause, 2 s of context on each side of the stitch
MIN_PAUSE_SECONDS = 0.25  # silence that may end a piece of a long file: longer than pauses inside words
PAUSE_FRAME = 160  # samples: 10 ms frames for finding pauses
PAUSE_DEPTH_DB = 20.0  # pauses are sought only where speech (90th percentile) is this far above the floor
PAUSE_MARGIN_DB = 8.0  # frames this close to the noise floor count as pause
LEAD_IN_SECONDS = 0.1  # a piece that follows a pause starts at most this long before the sound resumes
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


@dataclass(frozen=True)
class Transcript:
    path: str
    words: tuple[Word, ...] = ()
    duration: float = 0.0  # s of audio
    error: str | None = None  # one line: why the file could not be transcribed

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)


# --- inputs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioInput:
    """One file to transcribe. ``name`` names its outputs under an output folder: its path
    relative to the folder argument it was found in, else its file name, without the
    extension; ``-2``, ``-3``, ... are appended where two inputs would share a name."""

    path: str
    name: str


def find_inputs(arguments: Iterable[str]) -> tuple[list[AudioInput], list[str]]:
    """Expand files, folders (searched recursively for audio extensions) and glob patterns.

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
        stem = name = str(relative.with_suffix(""))
        copy = 1
        while name in names:
            copy += 1
            name = f"{stem}-{copy}"
        names.add(name)
        inputs.append(AudioInput(str(path), name))

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
    return inputs, errors


def _glob(pattern: str) -> list[Path]:
    """``glob.glob(pattern, recursive=True)``, sorted, but ``**`` does not follow symbolic
    links to folders: through a link loop, glob's paths would multiply without end."""
    parts = Path(pattern).parts
    first = next(i for i, part in enumerate(parts) if glob.has_magic(part))
    base = Path(*parts[:first]) if first else Path()
    return sorted(base.glob(str(Path(*parts[first:]))))


# --- reading --------------------------------------------------------------------------------


# --- cutting long files ---------------------------------------------------------------------


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


def cut_pieces(blocks: Iterable[np.ndarray], options: TranscribeOptions) -> Iterator[Piece]:
    """:func:`_pieces` with the window, overlap and pause of ``options``."""
    window = round(options.window_seconds * SAMPLE_RATE)
    overlap = round(options.overlap_seconds * SAMPLE_RATE)
    min_pause = options.min_pause_seconds * SAMPLE_RATE / PAUSE_FRAME  # frames
    return _pieces(blocks, window, overlap, min_pause)


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


# --- transcription ------------------------------------------------------------------------


@dataclass
class _File:
    path: str
    stitcher: _Stitcher
    samples: int = 0  # read so far
    error: str | None = None
    done: bool = False  # its last piece is decoded


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


def transcribe_files(
    recognizer: Recognizer, paths: Iterable[str | Path], decoder: Decoder,
    options: TranscribeOptions = TranscribeOptions(),
) -> Iterator[Transcript]:
    """Yield one :class:`Transcript` per path, in order; unreadable files carry an error.

    ``recognizer`` is a checkpoint's :class:`~asr.checkpoint.LoadedModel` or an
    :class:`~asr.export.OnnxModel`.
    """
    batcher = Batcher(recognizer, decoder, options.batch_seconds(recognizer.device))
    for index, path in enumerate(paths):
        batcher.open(index, str(path))
        try:
            for piece in cut_pieces(stream_audio(path, options.read_seconds), options):
                batcher.add(index, piece)
                yield from batcher.finished()
            batcher.end(index)
        except AudioError as err:
            batcher.fail(index, str(err))
        yield from batcher.finished()
    batcher.flush()
    yield from batcher.finished()
