"""ONNX export of the acoustic model, and inference with ONNX Runtime.

The graph maps log-mel features to CTC log-probabilities:

    inputs   features    (B, T, n_mels) float32  natural-log mel power, as asr.features.log_mel
                                                  computes it (not normalised: the model's
                                                  normalisation statistics are in the graph)
             lengths     (B,) int64               valid frames of each row
    outputs  log_probs   (B, T', V) float32       T' = ceil(T / stack); rows past out_lengths are padding
             out_lengths (B,) int64

Batch and time are dynamic. The STFT stays outside the graph. The file's metadata
(``asr_vocab``, ``asr_config``, both JSON) carries the vocabulary and the experiment
configuration, so :class:`OnnxModel` needs nothing else. ``onnx`` and ``onnxruntime`` are
an optional extra: ``pip install 'asr[onnx]'``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from asr.checkpoint import LoadedModel, units_entry, vocabulary_from
from asr.config import ExperimentConfig
from asr.errors import UserError
from asr.io import atomic_path
from asr.features import log_mel
from asr.model import AcousticModel
from asr.text import Vocabulary

OPSET = 17
MIN_OPSET, MAX_OPSET = 7, 20  # what torch's TorchScript exporter writes
INPUTS = ("features", "lengths")
OUTPUTS = ("log_probs", "out_lengths")
INSTALL_HINT = "pip install 'asr[onnx]' (or: pip install onnx onnxruntime)"


class OnnxDependencyError(UserError, ImportError):
    """onnx or onnxruntime is not installed."""

    def __init__(self, package: str) -> None:
        super().__init__(f"{package} is not installed; ONNX export and inference need it: {INSTALL_HINT}")


class OnnxModelError(UserError, ValueError):
    """An ONNX file that is not an exported asr model."""


def _require(package: str):
    try:
        return __import__(package)
    except ImportError:
        raise OnnxDependencyError(package) from None


class _Exportable(nn.Module):
    """The acoustic model with its input padded to a whole number of stacked frames.

    The TorchScript exporter records Python control flow as it runs once; the model pads
    a ragged last stacked frame behind an ``if``, so the graph would keep whatever the
    example input needed. Padding here (by a computed slice, which the graph records) makes
    the model's own padding zero for every input length. Padding frames lie past
    ``lengths``, so the model masks them and the outputs are unchanged.
    """

    def __init__(self, model: AcousticModel) -> None:
        super().__init__()
        self.model = copy.deepcopy(model).cpu().eval().set_layout("split")
        for layer in self.model.layers:
            layer.packed = False  # same outputs; PackedSequence does not export

    def forward(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        stack = self.model.cfg.stack
        frames = features.shape[1]
        padded = nn.functional.pad(features, (0, 0, 0, stack - 1))[:, : (frames + stack - 1) // stack * stack]
        return self.model(padded, lengths)


class ExportError(UserError, ValueError):
    """An export that cannot be made as asked (an opset torch does not write) or came out wrong."""


@dataclass(frozen=True)
class Exported:
    """What :func:`export_onnx` wrote and how closely ONNX Runtime matches PyTorch on it."""

    path: Path
    float32_difference: float | None  # max |log-prob| difference of the float32 graph; None: not checked
    int8_difference: float | None = None  # the same for the int8 graph, when one was asked for


def export_onnx(loaded: LoadedModel, out_path: str | Path, opset: int = OPSET, int8: bool = False) -> Exported:
    """Write ``loaded``'s acoustic model as an ONNX file with dynamic batch and time axes,
    whole or not at all: the graph is exported, checked against PyTorch (when onnxruntime is
    installed) and, with ``int8``, quantised, all in a temporary file beside ``out_path``
    that replaces it only at the end. A model already at ``out_path`` stays as it was when
    anything fails. Raises :class:`ExportError` for an opset out of range or a graph that
    does not match PyTorch."""
    onnx = _require("onnx")
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(f"opset {opset}: torch's exporter writes opsets {MIN_OPSET} to {MAX_OPSET}")
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path, what="ONNX model") as partial:
        _export_graph(loaded, partial, opset)
        _set_metadata(onnx, partial, {"asr_vocab": list(loaded.vocab.tokens), "asr_config": loaded.config.to_dict(),
                                      **_units_metadata(loaded.vocab)})
        try:
            difference = _checked_difference(loaded, partial, out_path, "")
        except OnnxDependencyError:
            if int8:
                raise
            return Exported(out_path, None)
        if not int8:
            return Exported(out_path, difference)
        quantize_onnx_int8(partial, partial)
        return Exported(out_path, difference, _checked_difference(loaded, partial, out_path, "int8 ", limit=math.inf))


def _export_graph(loaded: LoadedModel, path: Path, opset: int) -> None:
    wrapper = _Exportable(loaded.model)
    example = (torch.randn(2, 50, loaded.config.model.n_mels), torch.tensor([50, 31]))
    with warnings.catch_warnings(), torch.no_grad():
        # The torch.export-based exporter (the default since torch 2.9) fails on the
        # model's length arithmetic and its graphs break at batch sizes other than the
        # example's; the TorchScript exporter gives exact results at every shape.
        warnings.simplefilter("ignore", (DeprecationWarning, torch.jit.TracerWarning, UserWarning))
        torch.onnx.export(
            wrapper, example, str(path), dynamo=False, opset_version=opset,
            input_names=list(INPUTS), output_names=list(OUTPUTS),
            dynamic_axes={"features": {0: "batch", 1: "time"}, "lengths": {0: "batch"},
                          "log_probs": {0: "batch", 1: "frames"}, "out_lengths": {0: "batch"}},
        )


def _checked_difference(loaded: LoadedModel, path: Path, out_path: Path, kind: str, limit: float = 1e-3) -> float:
    """ONNX Runtime's largest log-probability difference from PyTorch on the graph at ``path``;
    an :class:`ExportError` past ``limit`` (a wrong export is never left at ``out_path``)."""
    difference = max_difference(loaded, OnnxModel(path))
    if difference > limit:
        raise ExportError(f"{out_path}: the {kind}ONNX graph differs from PyTorch by {difference:.2g} in "
                          "log-probability; the export is wrong, please report it (nothing was written)")
    return difference


def _units_metadata(vocab: Vocabulary) -> dict:
    """A word-piece or phone vocabulary's model or lexicon, as JSON metadata (the model's
    bytes in base64); nothing for characters."""
    entry = units_entry(vocab).get("units")
    if entry is None:
        return {}
    return {"asr_units": {**entry, "pieces_model": base64.b64encode(entry.get("pieces_model", b"")).decode()}}


def _set_metadata(onnx, path: Path, values: dict) -> None:
    graph = onnx.load(str(path))
    kept = [(p.key, p.value) for p in graph.metadata_props if p.key not in values]
    del graph.metadata_props[:]
    for key, value in [*kept, *((k, json.dumps(v)) for k, v in values.items())]:
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))


@contextlib.contextmanager
def _quiet_root_logger():
    """ONNX Runtime's quantiser reports on the root logger (``WARNING:root:...`` lines about
    its own pre-processing); they say nothing a user can act on."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def quantize_onnx_int8(float_path: str | Path, out_path: str | Path) -> Path:
    """Write an int8 copy of an exported model: ONNX Runtime's dynamic quantisation (int8
    weights of its MatMul, Gemm and LSTM/GRU nodes, activations quantised per run), with the
    asr metadata and ``asr_compute_type = "int8"``."""
    onnx = _require("onnx")
    _require("onnxruntime")
    from onnxruntime.quantization import QuantType, quantize_dynamic

    float_path, out_path = Path(float_path), Path(out_path)
    metadata = {p.key: json.loads(p.value) for p in onnx.load(str(float_path)).metadata_props
                if p.key in ("asr_vocab", "asr_config", "asr_units")}
    with warnings.catch_warnings(), _quiet_root_logger():
        warnings.simplefilter("ignore")
        quantize_dynamic(str(float_path), str(out_path), weight_type=QuantType.QInt8)
    _set_metadata(onnx, out_path, {**metadata, "asr_compute_type": "int8"})
    return out_path


class OnnxModel:
    """An exported model run by ONNX Runtime on CPU: a :class:`~asr.inference.Recognizer`, as a
    checkpoint's :class:`~asr.checkpoint.LoadedModel` is."""

    def __init__(self, path: str | Path) -> None:
        ort = _require("onnxruntime")
        path = Path(path)
        if not path.is_file():
            raise OnnxModelError(f"{path}: no such ONNX file")
        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors for bad files
            raise OnnxModelError(f"{path}: not a readable ONNX model ({' '.join(str(err).split())[:160]})") from None
        meta = self.session.get_modelmeta().custom_metadata_map
        if "asr_vocab" not in meta or "asr_config" not in meta:
            raise OnnxModelError(f"{path}: not exported by 'asr export' (no asr_vocab/asr_config metadata)")
        names = ([i.name for i in self.session.get_inputs()], [o.name for o in self.session.get_outputs()])
        if names != (list(INPUTS), list(OUTPUTS)):
            raise OnnxModelError(f"{path}: inputs {names[0]} and outputs {names[1]} are not those 'asr export' "
                                 f"writes ({list(INPUTS)} -> {list(OUTPUTS)})")
        self.int8 = meta.get("asr_compute_type") == '"int8"'  # from quantize_onnx_int8
        try:
            units = json.loads(meta["asr_units"]) if "asr_units" in meta else None
            if units is not None:
                units["pieces_model"] = base64.b64decode(units["pieces_model"])
            self.vocab = vocabulary_from(json.loads(meta["asr_vocab"]), units)
            self.config = ExperimentConfig.from_dict(json.loads(meta["asr_config"]), source=f"{path} metadata")
        except (ValueError, TypeError, AttributeError) as err:  # ConfigError and JSON errors are ValueErrors
            raise OnnxModelError(f"{path}: damaged asr metadata ({' '.join(str(err).split())[:160]})") from None

    device = torch.device("cpu")  # ONNX Runtime's CPU provider

    def run(self, features: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """features (B, T, n_mels) log-mel, lengths (B,) -> log-probs (B, T', V), lengths (B,)."""
        try:
            out, out_lengths = self.session.run(
                list(OUTPUTS), {"features": features.float().cpu().numpy(), "lengths": lengths.long().cpu().numpy()}
            )
        except Exception as err:  # onnxruntime's own untyped errors: a graph that does not compute
            raise OnnxModelError(f"the ONNX model failed to run ({' '.join(str(err).split())[:160]})") from None
        return torch.from_numpy(out), torch.from_numpy(out_lengths)

    def log_probs(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, N), lengths (B,) -> CTC log-probabilities (B, T', V) and lengths (B,)."""
        with torch.inference_mode():
            features, feature_lengths = log_mel(waves.cpu(), lengths.cpu(), self.config.features)
        return self.run(features, feature_lengths)


def max_difference(loaded: LoadedModel, onnx_model: OnnxModel, batch: int = 3, frames: int = 200) -> float:
    """Largest |log-prob| difference between PyTorch and ONNX Runtime on random features."""
    generator = torch.Generator().manual_seed(0)
    n_mels = loaded.config.model.n_mels
    mean, std = loaded.model.feat_mean.cpu(), loaded.model.feat_std.cpu()
    features = torch.randn(batch, frames, n_mels, generator=generator) * std + mean  # (B, T, F) in the model's range
    lengths = torch.linspace(frames, frames // 3, batch).long()
    with torch.inference_mode():
        expected, expected_lengths = _Exportable(loaded.model).model(features, lengths)
    got, got_lengths = onnx_model.run(features, lengths)
    if not torch.equal(got_lengths, expected_lengths):
        return float("inf")
    valid = torch.arange(expected.shape[1])[None, :] < expected_lengths[:, None]  # (B, T')
    return float((got - expected).abs()[valid].max())
