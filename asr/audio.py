"""Reading audio: any format soundfile reads, any rate and channel count -> 16 kHz mono float32."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
import soxr

SAMPLE_RATE = 16_000  # Hz; every model in asr works at this rate
READ_SECONDS = 10.0  # audio read from a file at a time when streaming
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64")


class AudioError(Exception):
    """An audio file that cannot be used; ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def check_audio_file(path: str | Path) -> Path:
    """Raise :class:`AudioError` for a missing path, a folder or an empty file; return the Path."""
    path = Path(path)
    if not path.exists():
        raise AudioError(path, "no such file")
    if path.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    return path


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read ``path`` as mono float32 samples in [-1, 1] at ``sample_rate``; shape (N,).

    Raises :class:`AudioError` for a missing, unreadable, empty or non-finite file.
    """
    path = check_audio_file(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(path, f"cannot decode audio ({_one_line(err)})") from None
    if samples.shape[0] == 0:
        raise AudioError(path, "audio has no samples")
    samples = _mono(samples, path)
    if rate != sample_rate:
        samples = librosa.resample(samples, orig_sr=rate, target_sr=sample_rate, res_type="soxr_hq")
    return _clip(samples)


def stream_audio(path: str | Path, read_seconds: float = READ_SECONDS) -> Iterator[np.ndarray]:
    """Yield a file's audio as consecutive blocks of 16 kHz mono float32 samples, each (N,).

    The same samples as :func:`asr.audio.load_audio`, read ``read_seconds`` at a time.
    Raises :class:`AudioError` for a missing, unreadable, empty or non-finite file, also
    when the damage is found part-way through.
    """
    path = check_audio_file(path)
    try:
        with sf.SoundFile(str(path)) as f:
            rate = f.samplerate
            resampler = None
            if rate != SAMPLE_RATE:
                resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
            block = max(1, int(read_seconds * rate))
            total = 0
            while True:
                samples = f.read(block, dtype="float32", always_2d=True)  # (N, C)
                last = len(samples) < block
                total += len(samples)
                if total == 0:
                    raise AudioError(path, "audio has no samples")
                mono = _mono(samples, path)
                if resampler is not None:
                    mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=last)
                if len(mono):
                    yield _clip(mono)
                if last:
                    return
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as err:
        raise AudioError(path, f"cannot decode audio ({_one_line(err)})") from None


def _mono(samples: np.ndarray, path: Path) -> np.ndarray:
    """(N, C) -> (N,) channel mean; non-finite samples are refused."""
    mono = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    if not np.isfinite(mono).all():
        raise AudioError(path, "audio holds NaN or infinite samples")
    return mono


def _clip(samples: np.ndarray) -> np.ndarray:
    # Float files may exceed full scale; clipping keeps features in the range the model saw.
    return np.clip(samples, -1.0, 1.0).astype(np.float32, copy=False)


def audio_duration(path: str | Path) -> float:
    """Duration in seconds read from the file header (no decoding)."""
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise AudioError(path, f"cannot read header ({_one_line(err)})") from None
    return info.frames / info.samplerate


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__
