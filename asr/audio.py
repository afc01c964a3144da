"""Reading audio: any format, rate and channel count -> 16 kHz mono float32.

libsndfile (soundfile) reads WAV, FLAC and Ogg; what it cannot open (m4a/AAC, mp4 and
other video, webm/Opus, wma, ...) and MP3 are decoded by FFmpeg's libraries inside PyAV.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr.errors import UserError

SAMPLE_RATE = 16_000  # Hz; every model in asr works at this rate
READ_SECONDS = 10.0  # audio read from a file at a time when streaming
# What one file may expand to. A damaged header that claims 1 Hz would make 400 KB of
# samples 13 GB at 16 kHz: rates outside speech audio's are refused, as are whole-file
# reads longer than an hour (stream_audio, which transcription uses, reads any length).
MIN_SAMPLE_RATE = 4_000  # Hz; telephone speech is 8 kHz
MAX_SAMPLE_RATE = 768_000  # Hz; the highest rate audio interfaces record at
MAX_LOAD_SECONDS = 3600.0
MAX_LOAD_SAMPLES = 1 << 29  # samples of all channels read whole at the file's rate: 2 GiB of float32
COMPRESSED_BYTES_PER_SECOND = 16_000  # 128 kbit/s, the usual rate of MP3, AAC and Opus speech and music
# Searched for in folders. libsndfile reads the first row; FFmpeg (PyAV) the others, audio
# and the audio track of video.
AUDIO_EXTENSIONS = (".flac", ".wav", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".w64",
                    ".m4a", ".aac", ".mp4", ".m4b", ".mov", ".webm", ".mkv", ".mka", ".wma", ".wmv", ".amr")


class AudioError(UserError):
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
    if not path.is_file():  # reading a FIFO would wait for a writer forever
        raise AudioError(path, "is not a regular file (a FIFO, socket or device)")
    if path.stat().st_size == 0:
        raise AudioError(path, "file is empty (0 bytes)")
    return path


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, *, offset: float = 0.0,
               duration: float | None = None) -> np.ndarray:
    """Read ``path`` as mono float32 samples in [-1, 1] at ``sample_rate``; shape (N,).

    ``offset`` and ``duration`` (seconds, at the file's own rate) read a span of the file: the
    samples a copy of the file cut there would give, without the copy. A span that runs past
    the end stops there. Raises :class:`AudioError` for a missing, unreadable, empty or
    non-finite file, and for an offset at or past the end of its audio.
    """
    path = check_audio_file(path)
    sound_file = _open_soundfile(path)
    if sound_file is None:  # a format libsndfile does not know: FFmpeg's decoders
        rate, blocks = _ffmpeg_blocks(path, READ_SECONDS)
        kept, total = [], 0
        for block in _span_blocks(path, rate, blocks, offset, duration):  # (N, C)
            total += len(block)
            _check_length(path, total, rate, block.shape[1])
            kept.append(block)
        samples = np.concatenate(kept or [np.zeros((0, 1), np.float32)])  # (N, C)
    else:
        rate = sound_file.samplerate
        try:
            with sound_file:
                start, count = _span_frames(path, sound_file.frames, rate, offset, duration)
                _check_length(path, count, rate, sound_file.channels)
                if start:
                    sound_file.seek(start)
                samples = sound_file.read(count, dtype="float32", always_2d=True)  # (N, C)
        except _SOUNDFILE_ERRORS as err:
            raise AudioError(path, f"cannot decode audio ({_one_line(err)})") from None
    if samples.shape[0] == 0:
        raise AudioError(path, "audio has no samples")
    samples = _mono(samples, path)
    if rate != sample_rate:
        samples = resample(samples, rate, sample_rate)
    return _clip(samples)


def _span_frames(path: Path, frames: int, rate: int, offset: float, duration: float | None) -> tuple[int, int]:
    """(first frame, frames to read) of the span ``offset`` + ``duration`` s of ``frames`` at ``rate``."""
    start = round(offset * rate)
    if offset and start >= frames:
        raise AudioError(path, f"offset {offset:g} s is past the end of its audio ({frames / rate:.3f} s)")
    left = frames - start
    return start, left if duration is None else max(0, min(left, round(duration * rate)))


def _span_blocks(path: Path, rate: int, blocks: Iterator[np.ndarray], offset: float,
                 duration: float | None) -> Iterator[np.ndarray]:
    """The (N, C) blocks of a stream with only the span ``offset`` + ``duration`` s kept."""
    start = round(offset * rate)
    end = None if duration is None else start + round(duration * rate)
    seen = 0
    for block in blocks:
        kept = block[max(0, start - seen) : None if end is None else max(0, end - seen)]
        seen += len(block)
        if len(kept):
            yield kept
        if end is not None and seen >= end:
            return
    if offset and seen <= start:
        raise AudioError(path, f"offset {offset:g} s is past the end of its audio ({seen / rate:.3f} s)")


def resample(samples: np.ndarray, rate: int, target_rate: int) -> np.ndarray:
    """(N,) samples at ``rate`` -> at ``target_rate``, ceil(N x target_rate / rate) of them: soxr's
    HQ filter, as ``librosa.resample(res_type="soxr_hq")`` computes it (the same samples, without
    librosa's import, about a second of a command's start-up)."""
    size = int(np.ceil(samples.shape[0] * (float(target_rate) / rate)))
    out = soxr.resample(samples, rate, target_rate, quality="soxr_hq")
    out = out[:size] if out.shape[0] >= size else np.pad(out, (0, size - out.shape[0]))
    return np.asarray(out, dtype=samples.dtype)


def stream_audio(path: str | Path, read_seconds: float = READ_SECONDS, *, offset: float = 0.0,
                 duration: float | None = None) -> Iterator[np.ndarray]:
    """Yield a file's audio as consecutive blocks of 16 kHz mono float32 samples, each (N,).

    The same samples as :func:`asr.audio.load_audio`, read ``read_seconds`` at a time, so
    memory stays bounded whatever the file's length; ``offset`` and ``duration`` read a span
    of it, as :func:`load_audio` does. Raises :class:`AudioError` for a missing, unreadable,
    empty or non-finite file, also when the damage is found part-way through.
    """
    path = check_audio_file(path)
    yield from _stream(path, None, read_seconds, offset, duration)


def stream_audio_bytes(data: bytes, name: str, read_seconds: float = READ_SECONDS) -> Iterator[np.ndarray]:
    """:func:`stream_audio` for a file held in memory (an upload): nothing touches the file
    system. ``name`` stands for the file in error messages."""
    if not data:
        raise AudioError(name, "file is empty (0 bytes)")
    yield from _stream(Path(name), data, read_seconds)


def _stream(path: Path, data: bytes | None, read_seconds: float, offset: float = 0.0,
            duration: float | None = None) -> Iterator[np.ndarray]:
    sound_file = _open_soundfile(path, data)
    if sound_file is None:
        rate, blocks = _ffmpeg_blocks(path, read_seconds, data)
        blocks = _span_blocks(path, rate, blocks, offset, duration)
    else:
        rate = sound_file.samplerate
        try:
            start, count = _span_frames(path, sound_file.frames, rate, offset, duration)
        except AudioError:
            sound_file.close()
            raise
        blocks = _soundfile_blocks(path, sound_file, read_seconds, start, count)
    return _mono_blocks(path, rate, blocks)


def _mono_blocks(path: Path, rate: int, blocks: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    resampler = None
    if rate != SAMPLE_RATE:
        resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")
    total = 0
    for samples in blocks:  # (N, C)
        total += len(samples)
        mono = _mono(samples, path)
        if resampler is not None:
            mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=False)
        if len(mono):
            yield _clip(mono)
    if total == 0:
        raise AudioError(path, "audio has no samples")
    if resampler is not None:
        tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)  # the resampler's delay line
        if len(tail):
            yield _clip(tail)


class PcmDecoder:
    """Raw signed 16-bit little-endian mono PCM at ``rate`` Hz, arriving in chunks of any
    size (a byte of a sample may come in the next chunk), as 16 kHz float32 samples."""

    def __init__(self, rate: int = SAMPLE_RATE) -> None:
        self._held = b""  # the first byte of a sample whose second has not come yet
        self._resampler = None
        if rate != SAMPLE_RATE:
            self._resampler = soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")

    def decode(self, data: bytes, last: bool = False) -> np.ndarray:
        """The samples of ``data`` (N,); ``last``: the stream ends here (the resampler's tail)."""
        data, self._held = self._held + data, b""
        if len(data) % 2:
            data, self._held = data[:-1], data[-1:]
        samples = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        return samples


_SOUNDFILE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)


def _check_rate(path: Path, rate: int) -> None:
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioError(path, f"sample rate {rate} Hz is outside {MIN_SAMPLE_RATE}-{MAX_SAMPLE_RATE} Hz "
                               "(a damaged header?); not read")


def _check_length(path: Path, frames: int, rate: int, channels: int) -> None:
    if frames > MAX_LOAD_SECONDS * rate or frames * channels > MAX_LOAD_SAMPLES:
        raise AudioError(path, f"too long to read whole ({frames / rate / 3600:.1f} h or more, {channels} channels; at "
                               f"most {MAX_LOAD_SECONDS / 3600:g} h); asr transcribe streams recordings of any length")


def _open_soundfile(path: Path, data: bytes | None = None) -> sf.SoundFile | None:
    """The file (or ``data``, the file's bytes) opened by libsndfile (WAV, FLAC, Ogg
    Vorbis/Opus, AIFF, ...), or None when libsndfile cannot open it (or should not read it).
    A file it opens but then fails to read is damaged and is not handed to FFmpeg, which
    would quietly skip the damage."""
    try:
        # As bytes: soundfile cannot encode a str holding a file name that is not UTF-8.
        sound_file = sf.SoundFile(os.fsencode(path) if data is None else io.BytesIO(data))
    except _SOUNDFILE_ERRORS:
        return None
    if sound_file.format == "MP3":
        # libsndfile 1.2's MPEG reader returns wrong samples after a block whose length is not
        # a multiple of its 1,152-sample frame, so streamed MP3 would be damaged: FFmpeg reads it.
        sound_file.close()
        return None
    try:
        _check_rate(path, sound_file.samplerate)
    except AudioError:
        sound_file.close()
        raise
    return sound_file


def _soundfile_blocks(path: Path, sound_file: sf.SoundFile, read_seconds: float, start: int = 0,
                      count: int | None = None) -> Iterator[np.ndarray]:
    """(N, C) float32 blocks of ``read_seconds`` at the file's own rate: ``count`` frames
    (None: all) from frame ``start``."""
    block = max(1, int(read_seconds * sound_file.samplerate))
    left = math.inf if count is None else count  # a whole file: read to its end, whatever its header says
    try:
        with sound_file:
            if start:
                sound_file.seek(start)
            while left > 0:
                wanted = int(min(block, left))
                samples = sound_file.read(wanted, dtype="float32", always_2d=True)  # (N, C)
                if len(samples):
                    yield samples
                if len(samples) < wanted:
                    return
                left -= len(samples)
    except _SOUNDFILE_ERRORS as err:
        raise AudioError(path, f"cannot decode audio ({_one_line(err)})") from None


def _ffmpeg_blocks(path: Path, read_seconds: float, data: bytes | None = None) -> tuple[int, Iterator[np.ndarray]]:
    """The sample rate and (N, C) float32 blocks of about ``read_seconds`` of the file's (or
    ``data``'s) first audio stream, decoded by FFmpeg's libraries inside PyAV: m4a/AAC, mp4
    and other video containers, webm/Opus, wma, and anything else libsndfile cannot open."""
    try:
        import av
    except ImportError:
        raise AudioError(path, "cannot decode audio (libsndfile does not know this format, and PyAV, which "
                               "reads the others, is not installed: pip install av)") from None
    try:
        container = av.open(str(path) if data is None else io.BytesIO(data), metadata_errors="ignore")
    except (av.error.FFmpegError, OSError, UnicodeDecodeError, ValueError) as err:
        raise AudioError(path, f"cannot decode audio ({_ffmpeg_message(err)})") from None
    if not container.streams.audio:
        container.close()
        raise AudioError(path, "no audio stream in this file")
    stream = container.streams.audio[0]
    rate = stream.codec_context.sample_rate or stream.rate
    try:
        if not rate:
            raise AudioError(path, "cannot decode audio (its audio stream has no sample rate)")
        _check_rate(path, rate)
    except AudioError:
        container.close()
        raise
    return rate, _ffmpeg_decode(path, container, stream, rate, max(1, int(read_seconds * rate)))


def _ffmpeg_decode(path: Path, container, stream, rate: int, block: int) -> Iterator[np.ndarray]:
    import av

    # Packed float32 at the stream's first rate and layout, whatever the codec's own sample format.
    resampler = av.AudioResampler(format="flt", layout=stream.codec_context.layout, rate=rate)
    channels = stream.codec_context.channels
    pending, held = [], 0
    try:
        with container:
            for frame in container.decode(stream):
                for converted in resampler.resample(frame):
                    pending.append(converted.to_ndarray().reshape(-1, channels))  # (1, N * C) -> (N, C)
                    held += len(pending[-1])
                if held >= block:
                    yield np.concatenate(pending)
                    pending, held = [], 0
            for converted in resampler.resample(None):  # flush
                pending.append(converted.to_ndarray().reshape(-1, channels))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise AudioError(path, f"cannot decode audio ({_ffmpeg_message(err)})") from None
    if pending:
        yield np.concatenate(pending)


def _ffmpeg_message(err: BaseException) -> str:
    # PyAV's messages end in the file name, which the caller's message already starts with.
    message = getattr(err, "strerror", None) or str(err)
    return f"FFmpeg: {_one_line(message)}"


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
    """Duration in seconds: from the header where libsndfile reads the format, else by
    decoding the file (compressed containers' headers only estimate it)."""
    return _duration(check_audio_file(path), None)


def audio_bytes_duration(data: bytes, name: str) -> float:
    """:func:`audio_duration` of a file held in memory; ``name`` stands for it in errors."""
    if not data:
        raise AudioError(name, "file is empty (0 bytes)")
    return _duration(Path(name), data)


def _duration(path: Path, data: bytes | None) -> float:
    sound_file = _open_soundfile(path, data)
    if sound_file is not None:
        with sound_file:
            return sound_file.frames / sound_file.samplerate
    rate, blocks = _ffmpeg_blocks(path, READ_SECONDS, data)
    return sum(len(b) for b in blocks) / rate


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def estimated_duration(path: str | Path) -> float:
    """Seconds of audio in a file, cheaply: from the header where libsndfile reads the format,
    else guessed from its size (``COMPRESSED_BYTES_PER_SECOND``); 0 for a file that cannot be
    opened. To share work out by length, never to measure it."""
    try:
        sound_file = _open_soundfile(check_audio_file(path))
    except AudioError:
        return 0.0
    if sound_file is None:
        return Path(path).stat().st_size / COMPRESSED_BYTES_PER_SECOND
    with sound_file:
        return sound_file.frames / sound_file.samplerate


def decoded_seconds(path: str | Path) -> float:
    """Seconds of 16 kHz audio the whole file decodes to, read in blocks so that memory stays
    bounded: a good header can front a truncated body, which only decoding finds. Raises
    :class:`AudioError` as :func:`stream_audio` does."""
    return sum(len(block) for block in stream_audio(path)) / SAMPLE_RATE
