"""Data-parallel training on several devices: starting the process group, the rule that
keeps a recipe's meaning at any world size, and per-rank seeds.

The rule. A config is written for one device: ``max_batch_seconds`` of padded audio per
batch, ``grad_accum`` batches per optimizer step, ``lr`` and ``warmup_steps``. On N devices:

1. Gradient accumulation absorbs the devices first: ``grad_accum`` becomes
   ``ceil(grad_accum / N)``.
2. Whatever it cannot absorb (the ratio ``r = N x new grad_accum / grad_accum``, at least 1)
   is settled by ``train.multi_gpu``:

   - ``"keep-batch"`` (the default): each device's batch budget is divided by ``r``. The
     effective batch, steps per epoch, lr and warm-up are the config's: the run optimises
     as on one device, only faster.
   - ``"scale-lr"``: each device keeps the full budget, so the effective batch grows
     ``r``-fold and an epoch has ``r`` times fewer steps. The peak lr grows by ``sqrt(r)``,
     the square-root rule for Adam-type optimizers (Malladi et al., 2022, "On the SDEs and
     Scaling Rules for Adaptive Gradient Algorithms"), and warm-up shrinks to
     ``warmup_steps / r`` steps: the same audio as on one device, the same share of the run.

The result is printed when training starts.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

if TYPE_CHECKING:
    from asr.config import TrainConfig

_RANK_SEED_STRIDE = 1_000_003  # a prime: rank seeds never collide with another run's seed + small offsets


@dataclass(frozen=True)
class WorldSchedule:
    """What one rank of an N-device run uses in place of the config's training settings."""

    config: TrainConfig  # the one-device settings these replace
    world_size: int
    grad_accum: int
    max_batch_seconds: float  # per rank and batch
    lr: float
    warmup_steps: int
    batch_ratio: float  # effective batch (audio per optimizer step) over the config's on one device

    def describe(self) -> str:
        """One line for the log: what the world size changed and why."""
        if self.world_size == 1:
            return "1 device: the config's batch, lr and warm-up"
        c = self.config
        effective = self.max_batch_seconds * self.grad_accum * self.world_size
        return (f"{self.world_size} devices ({c.multi_gpu}): grad_accum {c.grad_accum} -> {self.grad_accum}, "
                f"{c.max_batch_seconds:g} -> {self.max_batch_seconds:g} s per device and batch, effective batch "
                f"{effective:,.0f} s ({self.batch_ratio:g}x the config's), lr {c.lr:g} -> {self.lr:g}, "
                f"warm-up {c.warmup_steps} -> {self.warmup_steps} steps")


def world_schedule(config: TrainConfig, world_size: int) -> WorldSchedule:
    """The settings one rank uses on ``world_size`` devices (see the module docstring)."""
    if world_size < 1:
        raise ValueError(f"world size must be at least 1, got {world_size}")
    accum = math.ceil(config.grad_accum / world_size)
    ratio = world_size * accum / config.grad_accum  # >= 1
    if config.multi_gpu == "keep-batch":
        return WorldSchedule(config, world_size, accum, config.max_batch_seconds / ratio, config.lr,
                             config.warmup_steps, 1.0)
    warmup = max(1, round(config.warmup_steps / ratio)) if config.warmup_steps else 0
    return WorldSchedule(config, world_size, accum, config.max_batch_seconds, config.lr * math.sqrt(ratio), warmup, ratio)


def rank_seed(seed: int, rank: int, step: int = 0) -> int:
    """The seed of one rank's dropout and SpecAugment draws; rank 0 at step 0 keeps ``seed``.

    ``step`` reseeds a resumed run's other ranks, whose own generator states the checkpoint
    (saved by rank 0) does not hold.
    """
    return seed + rank * _RANK_SEED_STRIDE + step


def init_distributed() -> tuple[int, int, int, bool]:
    """(rank, local rank, world size, whether this call started the process group).

    Under torchrun the group is started here; a caller that started one itself keeps it.
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 0, 1, False
    started = not dist.is_initialized()
    if started:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), int(os.environ.get("LOCAL_RANK", "0")), world, started
