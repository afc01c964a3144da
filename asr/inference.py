"""Running a trained model: device choice, audio batches to log-probabilities."""

from __future__ import annotations

import torch

from asr.errors import UserError
from asr.features import FeatureConfig, log_mel
from asr.model import AcousticModel


class DeviceError(UserError, ValueError):
    """A device the user asked for is not available."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but no CUDA GPU is available; use --device cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        device = None
    # Other torch device types (meta, mps, xla, ...) either hold no data or are not supported here.
    if device is None or device.type not in ("cpu", "cuda"):
        raise DeviceError(f"unknown device {name!r}; use auto, cpu or cuda (cuda:N for one GPU)")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise DeviceError(f"device {name!r}: there are only {torch.cuda.device_count()} CUDA GPUs")
    return device


def pad_waves(waves: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """List of (N_i,) signals -> zero-padded (B, max N) and lengths (B,)."""
    lengths = torch.tensor([len(w) for w in waves])
    return torch.nn.utils.rnn.pad_sequence(waves, batch_first=True), lengths


@torch.inference_mode()
def log_probs(
    model: AcousticModel, features: FeatureConfig, waves: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """waves (B, N), lengths (B,) -> CTC log-probabilities (B, T', V) and lengths (B,), on the model's device."""
    device = next(model.parameters()).device
    feats, feat_lengths = log_mel(waves.to(device), lengths.to(device), features)
    return model(feats, feat_lengths)
