"""Running a trained model: device choice, the :class:`Recognizer` interface, audio batches
to log-probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch

from asr.config import ExperimentConfig
from asr.errors import UserError
from asr.features import FeatureConfig, log_mel
from asr.model import AcousticModel
from asr.text import Vocabulary


class Recognizer(Protocol):
    """A trained model that turns audio into CTC log-probabilities, whatever runs it.

    Implemented by :class:`asr.checkpoint.LoadedModel` (PyTorch) and
    :class:`asr.export.OnnxModel` (ONNX Runtime); evaluation, LM tuning, dev scoring and
    transcription take either.
    """

    vocab: Vocabulary  # the tokens the log-probabilities' last axis indexes
    config: ExperimentConfig  # features and model settings (frame rate: model.stack feature hops)

    def log_probs(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, N) at 16 kHz, lengths (B,) -> log-probabilities (B, T', V), lengths (B,)."""
        ...


class DeviceError(UserError, ValueError):
    """A device the user asked for is not available."""


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present; ``cuda`` without a GPU is a user error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"device {name!r} requested but no CUDA GPU is available; use the cpu device")
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


def load_recognizer(path: str | Path, device: str = "auto") -> Recognizer:
    """A checkpoint (``.pt``) on ``device``, or a model from ``asr export`` (``.onnx``), which
    runs on the CPU."""
    if Path(path).suffix == ".onnx":
        if device not in ("auto", "cpu"):
            raise DeviceError(f"ONNX models run on the CPU here; use the cpu device, or the .pt checkpoint for {device}")
        from asr.export import OnnxModel  # onnxruntime loads only for an ONNX model

        return OnnxModel(path)
    from asr.checkpoint import load_model  # the checkpoint module builds on this one

    return load_model(path, resolve_device(device))


@torch.inference_mode()
def log_probs(
    model: AcousticModel, features: FeatureConfig, waves: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """waves (B, N), lengths (B,) -> CTC log-probabilities (B, T', V) and lengths (B,), on the model's device."""
    device = next(model.parameters()).device
    feats, feat_lengths = log_mel(waves.to(device), lengths.to(device), features)
    return model(feats, feat_lengths)
