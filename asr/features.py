"""Log-mel features, global normalisation statistics and SpecAugment.

All functions are pure: tensors in, tensors out, on whatever device the input lives on.
Only the mel filterbank and the window are cached, because they never change.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

from asr.audio import SAMPLE_RATE
from asr.bounds import at_least, between, check, one_of

LOG_FLOOR = 1e-10  # power floor before the log; -23 in natural log, below any real signal


@dataclass(frozen=True)
class FeatureConfig:
    sample_rate: int = SAMPLE_RATE  # Hz
    n_fft: int = 512  # samples; 32 ms FFT, the power of two above the window
    win_length: int = 400  # samples; 25 ms window
    hop_length: int = 160  # samples; 10 ms hop
    n_mels: int = 80
    fmin: float = 0.0  # Hz
    fmax: float | None = None  # Hz; None = Nyquist

    def __post_init__(self) -> None:
        nyquist = self.sample_rate / 2
        check(self, {
            # Audio is always read at SAMPLE_RATE; features at another rate would misread it.
            "sample_rate": one_of(SAMPLE_RATE), "win_length": between(1, self.sample_rate),
            "n_fft": (lambda v: _finite(v) and self.win_length <= v <= self.sample_rate,
                      f"from win_length ({self.win_length}) to one second ({self.sample_rate})"),
            "hop_length": between(1, self.win_length), "n_mels": at_least(1), "fmin": between(0, nyquist),
        })
        if self.fmax is not None:
            check(self, {"fmax": (lambda v: _finite(v) and self.fmin < v <= nyquist,
                                  f"above fmin ({self.fmin:g}) and at most {nyquist:g} Hz")})


@dataclass(frozen=True)
class SpecAugmentConfig:
    freq_masks: int = 2
    freq_width: int = 15  # mel bins, upper bound of each mask's width
    time_masks: int = 2
    time_width: float = 0.05  # fraction of the utterance, upper bound of each mask's width

    def __post_init__(self) -> None:
        # Papers use 1-2 masks of each kind (up to 10-20 adaptive time masks); each mask is a
        # pass over the batch, so a million would stall training.
        check(self, {"freq_masks": between(0, 100), "freq_width": at_least(0), "time_masks": between(0, 100),
                     "time_width": between(0, 1)})


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


# The Slaney mel scale (Auditory Toolbox; librosa's default): linear below 1 kHz, 200/3 Hz a
# mel, logarithmic above, 27 mels per factor 6.4.
_MEL_HZ, _LOG_FROM_HZ, _LOG_STEP = 200.0 / 3, 1000.0, math.log(6.4) / 27.0


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    linear = hz / _MEL_HZ
    return np.where(hz >= _LOG_FROM_HZ, _LOG_FROM_HZ / _MEL_HZ + np.log(np.maximum(hz, 1e-10) / _LOG_FROM_HZ) / _LOG_STEP,
                    linear)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_from = _LOG_FROM_HZ / _MEL_HZ
    return np.where(mel >= log_from, _LOG_FROM_HZ * np.exp(_LOG_STEP * (mel - log_from)), _MEL_HZ * mel)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) float32 triangular filters on the Slaney mel scale, each scaled
    to unit area (Slaney normalisation): what ``librosa.filters.mel`` returns with its defaults,
    computed the same way (tests/test_features.py checks them equal), without importing librosa,
    whose import costs a command-line run about a second."""
    fmax = sample_rate / 2 if fmax is None else fmax
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.float64(fmin)), _hz_to_mel(np.float64(fmax)), n_mels + 2))
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, fft_hz)
    weights = np.zeros((n_mels, len(fft_hz)), dtype=np.float32)
    for i in range(n_mels):
        rising, falling = -ramps[i] / widths[i], ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0, np.minimum(rising, falling))
    weights *= (2.0 / (edges[2 : n_mels + 2] - edges[:n_mels]))[:, None]
    return weights


@functools.lru_cache(maxsize=8)
def _mel_filterbank(cfg: FeatureConfig, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    fb = mel_filterbank(cfg.sample_rate, cfg.n_fft, cfg.n_mels, cfg.fmin, cfg.fmax)  # (n_mels, n_fft // 2 + 1)
    return torch.from_numpy(fb).to(device=device, dtype=dtype)


@functools.lru_cache(maxsize=8)
def _window(win_length: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    return torch.hann_window(win_length, periodic=True, device=device, dtype=dtype)


def num_frames(num_samples: torch.Tensor | int, cfg: FeatureConfig) -> torch.Tensor | int:
    """Frames produced for a signal of ``num_samples`` (centred STFT)."""
    return num_samples // cfg.hop_length + 1


def log_mel(
    waves: torch.Tensor, lengths: torch.Tensor, cfg: FeatureConfig = FeatureConfig()
) -> tuple[torch.Tensor, torch.Tensor]:
    """Natural-log mel power spectrogram of a padded batch.

    waves: (B, N) float samples, zero-padded after each signal's length.
    lengths: (B,) number of valid samples per signal.
    Returns features (B, T, n_mels) and their valid frame counts (B,). Frames past a
    signal's length hold the padding value of the log floor.
    """
    waves = waves.float()
    spec = torch.stft(
        waves,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=_window(cfg.win_length, waves.device, waves.dtype),
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (B, n_fft // 2 + 1, T)
    power = spec.real.square() + spec.imag.square()
    mel = torch.matmul(_mel_filterbank(cfg, waves.device, waves.dtype), power)  # (B, n_mels, T)
    feats = mel.clamp_min(LOG_FLOOR).log().transpose(1, 2)  # (B, T, n_mels)
    frame_lengths = num_frames(lengths.to(waves.device), cfg)
    valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < frame_lengths[:, None]
    feats = feats.masked_fill(~valid[:, :, None], float(torch.log(torch.tensor(LOG_FLOOR))))
    return feats, frame_lengths


def feature_stats(feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Per-bin sum and sum of squares over the valid frames of a batch, and the frame count.

    feats: (B, T, F); lengths: (B,). Returns (F,), (F,) float64 tensors and an int, so that
    statistics can be accumulated batch by batch without holding the corpus in memory.
    """
    valid = torch.arange(feats.shape[1], device=feats.device)[None, :] < lengths[:, None]
    frames = feats[valid].double()  # (frames, F)
    return frames.sum(0), frames.square().sum(0), frames.shape[0]


def spec_augment(
    feats: torch.Tensor, lengths: torch.Tensor, cfg: SpecAugmentConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """SpecAugment (Park et al., 2019) frequency and time masks, filled with zeros.

    Applied to normalised features, where zero is the mean. feats: (B, T, F); lengths: (B,).
    Returns a new tensor; the input is left untouched.
    """
    batch, frames, bins = feats.shape
    device = feats.device
    keep = torch.ones(batch, frames, bins, dtype=torch.bool, device=device)
    bin_index = torch.arange(bins, device=device)[None, :]
    frame_index = torch.arange(frames, device=device)[None, :]

    def rand(*shape: int) -> torch.Tensor:
        # Drawn where the generator lives (the device's own by default): no host-to-device copy.
        return torch.rand(*shape, generator=generator, device=generator.device if generator else device).to(device)

    for _ in range(cfg.freq_masks):
        width = (rand(batch) * (cfg.freq_width + 1)).long()
        start = (rand(batch) * (bins - width + 1).clamp_min(1)).long()
        mask = (bin_index >= start[:, None]) & (bin_index < (start + width)[:, None])  # (B, F)
        keep &= ~mask[:, None, :]
    lengths = lengths.to(device)
    for _ in range(cfg.time_masks):
        width = (rand(batch) * (cfg.time_width * lengths + 1)).long()
        start = (rand(batch) * (lengths - width + 1).clamp_min(1)).long()
        mask = (frame_index >= start[:, None]) & (frame_index < (start + width)[:, None])  # (B, T)
        keep &= ~mask[:, :, None]
    return feats * keep
