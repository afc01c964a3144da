import librosa
import numpy as np
import pytest
import torch

from asr.audio import load_audio
from asr.features import FeatureConfig, SpecAugmentConfig, feature_stats, log_mel, mel_filterbank, spec_augment


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    wave = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / 16000) / k for k in range(1, 20))
    return (0.1 * wave * (1 + np.sin(2 * np.pi * 3 * t)) + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def _librosa_log_mel(wave: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    mel = librosa.feature.melspectrogram(
        y=wave, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
        window="hann", center=True, pad_mode="constant", power=2.0, n_mels=cfg.n_mels, fmin=cfg.fmin, fmax=cfg.fmax,
    )
    return np.log(np.maximum(mel, 1e-10)).T  # (T, n_mels)


def test_parity_with_librosa_on_a_padded_batch():
    cfg = FeatureConfig()
    waves = [_speechlike(1.3, 0), _speechlike(0.7, 1)]
    lengths = torch.tensor([len(w) for w in waves])
    batch = torch.nn.utils.rnn.pad_sequence([torch.from_numpy(w) for w in waves], batch_first=True)
    feats, frames = log_mel(batch, lengths, cfg)
    assert feats.shape == (2, int(frames.max()), 80)
    for i, wave in enumerate(waves):
        ref = _librosa_log_mel(wave, cfg)
        assert int(frames[i]) == ref.shape[0]
        assert np.abs(feats[i, : frames[i]].numpy() - ref).max() <= 1e-3


def test_parity_on_real_speech(sample_dir):
    wave = load_audio(sample_dir / "1089" / "134686" / "1089-134686-0001.flac")
    feats, _ = log_mel(torch.from_numpy(wave)[None], torch.tensor([len(wave)]))
    assert np.abs(feats[0].numpy() - _librosa_log_mel(wave, FeatureConfig())).max() <= 1e-3


def test_feature_stats_ignore_padding():
    feats = torch.tensor([[[1.0], [3.0], [100.0]], [[5.0], [100.0], [100.0]]])
    total, total_sq, n = feature_stats(feats, torch.tensor([2, 1]))
    assert n == 3 and total.item() == 9.0 and total_sq.item() == 35.0


def test_spec_augment_masks_and_keeps_input():
    feats = torch.ones(4, 200, 80)
    cfg = SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2, time_width=0.1)
    out = spec_augment(feats, torch.tensor([200, 150, 100, 50]), cfg, torch.Generator().manual_seed(0))
    assert torch.equal(feats, torch.ones(4, 200, 80))
    zeroed = (out == 0).float().mean().item()
    assert 0.0 < zeroed < 0.5
    # A frequency mask zeroes whole bins across all frames of an utterance.
    assert ((out == 0).all(dim=1)).any()


@pytest.mark.parametrize(("n_fft", "n_mels", "fmin", "fmax"), [(512, 80, 0.0, None), (400, 64, 20.0, 7600.0),
                                                               (1024, 128, 0.0, 4000.0)])
def test_mel_filterbank_is_librosas_to_the_bit(n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> None:
    """asr computes the filterbank itself (importing librosa costs start-up time); it must
    stay librosa's, or every model trained before would see other features."""
    ours = mel_filterbank(16000, n_fft, n_mels, fmin, fmax)
    assert np.array_equal(ours, librosa.filters.mel(sr=16000, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))
