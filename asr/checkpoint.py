"""Self-describing checkpoints.

One file holds the experiment configuration, the vocabulary, the model weights (with the
feature normalisation statistics as buffers) and, for resuming, the optimizer, scheduler
and training state. Everything is plain tensors, numbers, strings, lists and dicts, so it
loads with ``torch.load(..., weights_only=True)``: a checkpoint cannot run code.
:func:`load_model` rebuilds the model, and :func:`log_probs` runs it on audio.
"""

from __future__ import annotations

import itertools
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from asr.config import ExperimentConfig
from asr.errors import ConfigError, UserError
from asr.features import FeatureConfig, log_mel
from asr.io import WriteError, atomic_write
from asr.model import AcousticModel
from asr.text import Vocabulary

FORMAT = "asr-checkpoint"
FORMAT_VERSION = 1
PARTIAL_PREFIX = "."  # a checkpoint being written is a hidden file beside its final name


class CheckpointError(UserError, ValueError):
    """A checkpoint that cannot be loaded; the message names the file and the reason."""


def model_device(model: torch.nn.Module) -> torch.device:
    """Where ``model`` runs."""
    # int8 layers hold their weights outside parameters(); the normalisation buffers stay.
    return next(itertools.chain(model.parameters(), model.buffers())).device


@torch.inference_mode()
def log_probs(
    model: AcousticModel, features: FeatureConfig, waves: torch.Tensor, lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """waves (B, N), lengths (B,) -> CTC log-probabilities (B, T', V) and lengths (B,), on the model's device."""
    device = model_device(model)
    feats, feat_lengths = log_mel(waves.to(device), lengths.to(device), features)
    return model(feats, feat_lengths)


@dataclass
class LoadedModel:
    model: AcousticModel
    vocab: Vocabulary
    config: ExperimentConfig
    raw: dict[str, Any]  # everything else in the file (training state, optimizer, ...)

    @property
    def device(self) -> torch.device:
        return model_device(self.model)

    def log_probs(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """waves (B, N), lengths (B,) -> CTC log-probabilities (B, T', V) and lengths (B,), on the
        model's device; in eval mode (no dropout), whatever mode the model is in outside."""
        was_training = self.model.training
        self.model.eval()
        try:
            return log_probs(self.model, self.config.features, waves, lengths)
        finally:
            self.model.train(was_training)


def save_checkpoint(path: str | Path, model: AcousticModel, config: ExperimentConfig, vocab: Vocabulary, **extra: Any) -> None:
    """Write atomically: a crash mid-write leaves the previous file at ``path`` intact.

    A write that fails (disk full, read-only folder) raises :class:`CheckpointError` and
    leaves no partial file behind.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": config.to_dict(),
        "vocab": list(vocab.tokens),
        **units_entry(vocab),
        "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        **extra,
    }
    try:
        with atomic_write(path, "wb", PARTIAL_PREFIX, what="checkpoint") as f:
            torch.save(payload, f)
    except WriteError as err:
        raise CheckpointError(str(err)) from None
    except RuntimeError as err:  # the payload is plain data: torch.save fails only in writing
        kept = "; the previous checkpoint there is intact" if path.exists() else ""
        raise CheckpointError(f"{path}: cannot write checkpoint ({_one_line(err)}){kept}") from None


def remove_partial_checkpoints(folder: str | Path) -> list[Path]:
    """Delete the temporary files of checkpoint writes that were killed; return them."""
    stale = sorted(Path(folder).glob(f"{PARTIAL_PREFIX}*.pt.tmp*"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw dict, refusing anything but plain data."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a readable checkpoint (torch.save archives are zip files; this is not one)")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise CheckpointError(
            f"{path}: refused: the file holds Python objects that could run code, not plain weights ({first[:120]})"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({' '.join(str(err).split())[:160]})") from None
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an asr checkpoint (no '{FORMAT}' header)")
    version = raw.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{path}: checkpoint format version {version} is not supported by this asr (expects {FORMAT_VERSION}); "
            "re-export it with the asr version that wrote it"
        )
    return raw


def load_model(path: str | Path, device: str | torch.device = "cpu") -> LoadedModel:
    """Rebuild the model described by a checkpoint, in eval mode on ``device``."""
    raw = read_checkpoint(path)
    # Everything below reads what the file says; a file edited by hand (or damaged) may say
    # anything, and each way it can fail is the same fault: a damaged checkpoint.
    try:
        config = ExperimentConfig.from_dict(raw["config"], source=f"{path} config")
        vocab = vocabulary_from(raw["vocab"], raw.get("units"))
    except (ConfigError, KeyError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise CheckpointError(f"{path}: checkpoint header is damaged ({_one_line(err)})") from None
    if config.model.vocab_size != len(vocab):
        raise CheckpointError(f"{path}: model emits {config.model.vocab_size} tokens but the vocabulary has {len(vocab)}")
    try:
        model = AcousticModel(config.model)
        model.load_state_dict(raw["model"])
    except (RuntimeError, KeyError, TypeError, AttributeError, ValueError, MemoryError) as err:
        raise CheckpointError(f"{path}: weights do not fit the model configuration ({_one_line(err)})") from None
    model.to(device).eval()
    if torch.device(device).type == "cuda":
        model.set_layout("fused")  # cuDNN runs both directions at once on packed sequences
    return LoadedModel(model, vocab, config, raw)


def units_entry(vocab: Vocabulary) -> dict[str, Any]:
    """What a checkpoint holds of a vocabulary beyond its tokens: nothing for characters (so
    files from before word pieces and phones read as they always did), else the units, and
    the sentencepiece model or the lexicon."""
    if vocab.units == "chars":
        return {}
    if vocab.units == "bpe":
        return {"units": {"kind": "bpe", "pieces_model": vocab.pieces_model}}
    # No empty pieces_model: torch pickles b"" as a call of bytes(), which weights_only refuses.
    return {"units": {"kind": vocab.units, "lexicon": list(vocab.lexicon)}}


def vocabulary_from(tokens: list[str], units: dict[str, Any] | None) -> Vocabulary:
    """The vocabulary :func:`units_entry` and the token list describe."""
    if units is None:
        return Vocabulary(tuple(tokens))
    return Vocabulary(tuple(tokens), units["kind"], pieces_model=units.get("pieces_model", b""),
                      lexicon=tuple(units.get("lexicon", ())))


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return " ".join(text[0].split())[:200] if text else type(err).__name__
