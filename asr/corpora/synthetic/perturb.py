"""Perturbations that move a synthetic voice outside the range its synthesizer spans.

A synthesizer's voices differ in far fewer ways than people do, so a model trained on them
learns the synthesizer. These change what the engines' own settings cannot:

- :func:`reshape_voice`: vocal-tract length and pitch (``warp``), speaking rate (``tempo``);
- :func:`reverberate` with :func:`room_impulse_response`: a room.

Pure functions of their arguments; randomness comes from the generator passed in.
"""

from __future__ import annotations

import math

import numpy as np
import soxr

# WSOLA time stretching at 16 kHz: frames longer than two periods of an 80 Hz voice, and a
# search window of one such period, so each frame can be lined up with the waveform before it.
FRAME = 512  # samples (32 ms)
HOP = FRAME // 2  # samples between output frames; Hann windows at half overlap sum to a constant
TOLERANCE = 200  # samples (12.5 ms) a frame may move to continue the waveform it follows
_WINDOW = np.hanning(FRAME).astype(np.float32)
DECAY_DB = 60.0  # RT60: the time sound takes to fall by 60 dB


def stretch(audio: np.ndarray, speed: float) -> np.ndarray:
    """Play ``audio`` (N,) ``speed`` times faster with its pitch kept: (round(N / speed),) float32.

    WSOLA: each output frame is the input frame near its nominal place that best continues
    the previous one, so periods are repeated or skipped whole and the pitch does not move.
    """
    if speed <= 0:
        raise ValueError(f"speed must be positive, got {speed}")
    audio = np.asarray(audio, np.float32)
    length = round(audio.size / speed)
    if speed == 1.0:
        return audio.copy()
    frames = max(0, math.ceil((length - FRAME) / HOP)) + 1
    padded = np.concatenate([np.zeros(TOLERANCE, np.float32), audio,
                             np.zeros(FRAME + 2 * TOLERANCE + math.ceil(frames * HOP * speed), np.float32)])
    out = np.zeros((frames - 1) * HOP + FRAME, np.float32)
    weight = np.zeros_like(out)
    position = TOLERANCE
    for k in range(frames):
        nominal = TOLERANCE + round(k * HOP * speed)
        if k:
            follows = padded[position + HOP : position + HOP + FRAME]  # what would continue the last frame
            region = padded[nominal - TOLERANCE : nominal + TOLERANCE + FRAME]
            position = nominal - TOLERANCE + int(np.argmax(np.correlate(region, follows, "valid")))
        else:
            position = nominal
        out[k * HOP : k * HOP + FRAME] += _WINDOW * padded[position : position + FRAME]
        weight[k * HOP : k * HOP + FRAME] += _WINDOW
    return (out / np.maximum(weight, 1e-3))[:length]


def reshape_voice(audio: np.ndarray, warp: float = 1.0, tempo: float = 1.0) -> np.ndarray:
    """Scale the formants and pitch of ``audio`` (N,) by ``warp`` and its speed by ``tempo``.

    Resampling by ``warp`` scales every frequency, as a shorter (``warp > 1``) or longer
    vocal tract and a higher or lower voice would, and the duration with them; the stretch
    that follows restores the duration, then applies ``tempo``. Returns (≈ N / tempo,) float32.
    """
    audio = np.asarray(audio, np.float32)
    if warp == 1.0 and tempo == 1.0:
        return audio
    shifted = soxr.resample(audio, warp, 1.0, quality="HQ") if warp != 1.0 else audio
    return stretch(shifted, tempo / warp)


def room_impulse_response(rng: np.random.Generator, rt60: float, drr_db: float, sample_rate: int) -> np.ndarray:
    """A synthetic room: a direct path of 1, then Gaussian noise dying away by 60 dB in ``rt60`` s,
    scaled so the direct path carries ``drr_db`` dB more energy than the reverberation. (M,) float32."""
    if rt60 <= 0:
        raise ValueError(f"rt60 must be positive, got {rt60}")
    n = max(2, round(rt60 * sample_rate))
    t = np.arange(1, n) / sample_rate
    tail = rng.standard_normal(n - 1) * 10 ** (-DECAY_DB / 20 * t / rt60)
    tail *= math.sqrt(10 ** (-drr_db / 10) / np.sum(tail**2))
    return np.concatenate([[1.0], tail]).astype(np.float32)


def reverberate(audio: np.ndarray, impulse_response: np.ndarray) -> np.ndarray:
    """``audio`` (N,) as heard in the room of ``impulse_response`` (M,): (N + M - 1,) float32."""
    size = audio.size + impulse_response.size - 1
    fft_size = 1 << max(size - 1, 1).bit_length()  # a power of two: FFTs of odd lengths are ~10x slower
    spectrum = np.fft.rfft(audio, fft_size) * np.fft.rfft(impulse_response, fft_size)
    return np.fft.irfft(spectrum, fft_size)[:size].astype(np.float32)
