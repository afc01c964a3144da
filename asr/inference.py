"""Running a trained model: the :class:`Recognizer` interface, device choice, int8, and
:func:`load_recognizer`, which opens a checkpoint or an exported ONNX model."""

from __future__ import annotations

import copy
import os
import warnings
from pathlib import Path
from typing import Protocol

import torch
from torch import nn

from asr.checkpoint import load_model
from asr.config import ExperimentConfig
from asr.errors import UserError
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

    @property
    def device(self) -> torch.device:
        """Where the model runs: what its batches may cost in memory and gain from size."""
        ...

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


COMPUTE_TYPES = ("auto", "float32", "int8")
# The layers dynamic int8 quantisation replaces (torch.ao): their weights are stored as int8
# and each batch's activations are quantised on the fly. nn.RNN (the tanh cell), the
# convolutions, LayerNorms and attention's own matrix products stay float32.
INT8_LAYERS = {nn.Linear, nn.LSTM, nn.GRU}


def quantize_int8(model: AcousticModel) -> AcousticModel:
    """A copy of ``model`` (on the CPU, in eval mode) with dynamic int8 linear and LSTM/GRU layers."""
    model = copy.deepcopy(model).cpu().eval().set_layout("split")  # the caller's model stays as it was
    with warnings.catch_warnings():  # torch.ao's notice that its quantisation is moving to torchao
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, INT8_LAYERS, dtype=torch.qint8, inplace=True)


# oneDNN, which runs torch's LSTMs and convolutions on the CPU, keeps a compiled kernel for
# every input shape it meets, up to 1,024 of them. Batches of changing shape fill it: a
# server's, and live captions' growing segments. Under load at 16 clients `asr serve` grew
# from 298 to 990 MB in five minutes; with 16 kernels it held at 350 MB. (A bidirectional
# LSTM run at 320 shapes: 587 MB against 291.) Set the variable to choose otherwise.
ONEDNN_CACHE_VARIABLE, ONEDNN_CACHE = "ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16"


def load_recognizer(path: str | Path, device: str = "auto", compute_type: str = "auto") -> Recognizer:
    """A checkpoint (``.pt``) on ``device``, or a model from ``asr export`` (``.onnx``), which
    runs on the CPU. ``compute_type = "int8"`` runs a checkpoint's linear and recurrent layers
    in dynamic int8 on the CPU; an ONNX model runs as it was exported (``asr export
    --compute-type int8`` quantises one), and a compute type that names the other one is a
    :class:`DeviceError`. ``"auto"``: float32 for a checkpoint, as exported for ONNX."""
    if compute_type not in COMPUTE_TYPES:
        raise ValueError(f"compute type {compute_type!r}: choose one of {', '.join(COMPUTE_TYPES)}")
    os.environ.setdefault(ONEDNN_CACHE_VARIABLE, ONEDNN_CACHE)  # read when oneDNN first runs
    if Path(path).suffix == ".onnx":
        if device not in ("auto", "cpu"):
            raise DeviceError(f"ONNX models run on the CPU here; use the cpu device, or the .pt checkpoint for {device}")
        from asr.export import OnnxModel  # onnxruntime loads only for an ONNX model

        model = OnnxModel(path)
        if compute_type == "int8" and not model.int8:
            raise DeviceError(f"{path} holds float32 weights: make an int8 model with asr export --compute-type int8, "
                              "or run this one with --compute-type float32")
        if compute_type == "float32" and model.int8:
            raise DeviceError(f"{path} holds int8 weights: export the checkpoint again without --compute-type int8 "
                              "for float32, or run this one with --compute-type int8")
        return model
    if compute_type == "int8":
        if device not in ("auto", "cpu"):
            raise DeviceError(f"int8 runs on the CPU; use the cpu device, or --compute-type float32 on {device}")
        loaded = load_model(path, "cpu")
        loaded.model = quantize_int8(loaded.model)
        return loaded
    return load_model(path, resolve_device(device))
