"""Checkpoint averaging: the mean of the weights of several epochs, as one checkpoint.

Averaging the last few epochs' weights (icefall's ``--avg``, ESPnet's ``average_nbest``)
smooths out the noise of the final updates and usually lowers WER a little at no cost.
The result is an ordinary checkpoint: ``asr evaluate`` and ``load_model`` read it as any other.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from asr.checkpoint import load_model, save_checkpoint
from asr.errors import UserError

_EPOCH_FILE = re.compile(r"^epoch-(\d+)\.pt$")


class AverageError(UserError, ValueError):
    """Checkpoints that cannot be averaged: too few, or of different models."""


def epoch_checkpoints(exp_dir: str | Path) -> list[Path]:
    """The ``epoch-N.pt`` files of an experiment, oldest first (by N, not by name)."""
    exp_dir = Path(exp_dir)
    if not exp_dir.is_dir():
        raise AverageError(f"{exp_dir}: no such experiment folder")
    found = [(int(m.group(1)), p) for p in exp_dir.iterdir() if (m := _EPOCH_FILE.match(p.name))]
    return [p for _, p in sorted(found)]


def last_epochs(exp_dir: str | Path, n: int) -> list[Path]:
    """The last ``n`` epoch checkpoints of ``exp_dir``; an error says how to get them."""
    if n < 1:
        raise AverageError(f"cannot average the last {n} checkpoints; give a number of at least 1")
    found = epoch_checkpoints(exp_dir)
    if len(found) < n:
        raise AverageError(
            f"{exp_dir}: {len(found)} epoch-N.pt checkpoint(s), {n} needed; train with train.keep_epochs >= {n} "
            "(and at least that many epochs)"
        )
    return found[-n:]


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write the element-wise mean of the weights in ``paths`` to ``out``; return ``out``.

    Floating-point tensors are averaged (in float64, then cast back); other tensors (counts)
    are taken from the last checkpoint, as are the configuration, vocabulary and training
    state. ``out`` also lists the files it was averaged from.
    """
    if not paths:
        raise AverageError("no checkpoints to average")
    paths = [Path(p) for p in paths]
    last = load_model(paths[-1])
    total: dict[str, torch.Tensor] = {}
    for path in paths:
        loaded = last if path == paths[-1] else load_model(path)
        if loaded.config.model != last.config.model or loaded.vocab != last.vocab:
            raise AverageError(
                f"{path} and {paths[-1]} hold different models (configuration or vocabulary); "
                "average checkpoints of one training run only"
            )
        for name, tensor in loaded.model.state_dict().items():
            if tensor.is_floating_point():
                total[name] = total.get(name, 0) + tensor.double()
    averaged = {
        name: (total[name] / len(paths)).to(tensor.dtype) if name in total else tensor
        for name, tensor in last.model.state_dict().items()
    }
    last.model.load_state_dict(averaged)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(
        out, last.model, last.config, last.vocab,
        state=last.raw.get("state", {}), averaged_from=[p.name for p in paths],
    )
    return out
