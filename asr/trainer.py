"""The model and what updates it: AdamW with warm-up and cosine decay (over the run's steps,
or over its time budget), a gradient scaler, autocast (on CUDA, and in bf16 on CPUs with
native bf16); one micro-batch's forward and backward pass, and the optimizer step.

:mod:`asr.train` builds a :class:`Trainer` once per run and drives it batch by batch.
"""

from __future__ import annotations

import functools
import math
import sys
from contextlib import nullcontext
from dataclasses import dataclass

import torch
import torch.distributed as dist
import torch.nn.functional as F

from asr.config import ExperimentConfig
from asr.data import Batch
from asr.distributed import WorldSchedule
from asr.features import log_mel, num_frames, spec_augment
from asr.model import AcousticModel


@dataclass
class Trainer:
    """The model and what updates it, and where: which rank, which device, what precision."""

    model: AcousticModel
    ddp_model: torch.nn.Module  # what the steps run: ``model`` itself, or its DDP wrapper on several ranks
    optimizer: torch.optim.AdamW
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    device: torch.device
    amp_dtype: torch.dtype | None  # autocast's, or None for full precision
    rank: int
    budget: TimeBudget | None = None  # the clock the lr follows under ``train.max_train_seconds``


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX), as torch reports it."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype that ``train.amp`` (auto, bf16, fp16, off) means on ``device``, or None.

    On a CPU only bf16 counts, and only where the CPU has it natively: oneDNN's bf16 LSTM
    then takes ~0.57x the fp32 time (docs/benchmarks.md); emulated, it is slower than fp32.
    """
    if setting == "off":
        return None
    if device.type == "cpu":
        return torch.bfloat16 if setting in ("auto", "bf16") and cpu_has_native_bf16() and _cpu_bf16_runs() else None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


@functools.cache
def _cpu_bf16_runs() -> bool:
    """Some CPU and torch builds have no oneDNN primitive for a bf16 LSTM ("could not create a
    primitive descriptor"): try a tiny one once, and fall back to fp32 with one line if it fails."""
    try:
        lstm = torch.nn.LSTM(4, 4, batch_first=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lstm(torch.zeros(1, 2, 4, requires_grad=True))[0].float().sum().backward()
        return True
    except RuntimeError as err:
        print(f"asr: bf16 training is not available on this CPU's torch build ({' '.join(str(err).split())[:120]}); "
              "training in fp32", file=sys.stderr, flush=True)
        return False


def needs_loss_scaling(dtype: torch.dtype | None, device: torch.device) -> bool:
    """Whether gradients need loss scaling: on CUDA whenever autocast is on, not only under fp16.

    PyTorch's autocast runs cuDNN RNNs in float16 even under bfloat16 autocast (the cast is
    written into its cuDNN RNN wrapper), so the LSTMs of a bf16 run compute in fp16, where the
    small gradients of a mean-reduced CTC loss flush to zero without scaling. On a CPU the
    LSTMs run in true bf16, whose exponent range is fp32's: no scaling.
    """
    return dtype is not None and device.type == "cuda"


def _lr_factor(step: int, warmup: int, total: int, final_ratio: float) -> float:
    # Linear warm-up keeps early LSTM updates stable; cosine decay then anneals to a floor.
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


@dataclass
class TimeBudget:
    """A run trained for ``seconds`` of training-loop time (``train.max_train_seconds``): the
    clock its learning rate follows. The loop sets ``elapsed`` before every optimizer step and
    ``warmup_end`` once warm-up is over, both rank 0's on every rank."""

    seconds: float  # the budget
    warmup_steps: int
    final_ratio: float
    elapsed: float = 0.0  # training-loop seconds so far, resumed runs included
    warmup_end: float = 0.0  # training-loop seconds when warm-up ended

    def lr_factor(self, step: int) -> float:
        """The lr factor after ``step`` optimizer steps: the linear warm-up over steps, as without
        a budget, then cosine decay over the time left after warm-up, ``(elapsed - warmup_end) /
        (seconds - warmup_end)`` of the way from 1 to ``final_ratio`` (held there if the run
        overruns). The decay starts where warm-up ended, so the lr does not jump there."""
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        progress = (self.elapsed - self.warmup_end) / max(self.seconds - self.warmup_end, 1e-9)
        progress = min(1.0, max(0.0, progress))
        return self.final_ratio + (1 - self.final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def rank0_seconds(seconds: float, device: torch.device, world: int) -> float:
    """Rank 0's ``seconds`` on every rank, so that a time budget changes the lr and stops the
    run at the same step everywhere; free on one process, a broadcast (which waits for the
    device) on several."""
    if world == 1:
        return seconds
    clock = torch.tensor([seconds], dtype=torch.float64, device=device)  # NCCL broadcasts only GPU tensors
    dist.broadcast(clock, src=0)
    return clock.item()


def build_trainer(model: AcousticModel, cfg: ExperimentConfig, run: WorldSchedule, device: torch.device, rank: int, *,
                  total_steps: int) -> Trainer:
    """``model`` (on ``device``) with a new optimizer, learning rate schedule and gradient
    scaler; ``total_steps`` fixes the cosine schedule's length, unless ``train.max_train_seconds``
    sets a time budget, whose :class:`TimeBudget` then drives the decay."""
    # The fused AdamW takes the gradient scaler's inf check on the GPU, without a host sync.
    fused = device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=cfg.train.weight_decay, fused=fused)
    budget = None
    if cfg.train.max_train_seconds:
        budget = TimeBudget(cfg.train.max_train_seconds, run.warmup_steps, cfg.train.final_lr_ratio)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: budget.lr_factor(s))
    else:
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: _lr_factor(s, run.warmup_steps, total_steps, cfg.train.final_lr_ratio)
        )
    dtype = amp_dtype(cfg.train.amp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=needs_loss_scaling(dtype, device))
    return Trainer(model, model, optimizer, scheduler, scaler, device, dtype, rank, budget)


def forward_backward(trainer: Trainer, batch: Batch, cfg: ExperimentConfig, blank: int, grad_accum: int, *,
                     sync: bool) -> torch.Tensor:
    """Add one micro-batch's share of the gradient (all-reduced under DDP only if ``sync``);
    its mean CTC loss, a () tensor left on the device."""
    # Lengths are read on the host, before the copy, so that neither packing nor CTC (which
    # wants host lengths) waits for the device.
    host_lengths = num_frames(batch.wave_lengths, cfg.features)  # (B,)
    host_target_lengths = batch.target_lengths  # (B,)
    batch = batch.to(trainer.device)
    empty = not batch.indices
    feats, host_lengths = _features(trainer, batch, host_lengths, cfg)
    with nullcontext() if sync else trainer.ddp_model.no_sync():
        with torch.autocast(trainer.device.type, dtype=trainer.amp_dtype) if trainer.amp_dtype else nullcontext():
            lp, out_lengths = trainer.ddp_model(feats, host_lengths, normalized=True)  # (B, T, V), (B,)
        if empty:
            loss = lp.sum() * 0.0
        else:
            # zero_infinity: an utterance too short for its label yields inf; it is skipped, not fatal.
            loss = F.ctc_loss(
                lp.transpose(0, 1), batch.targets, out_lengths, host_target_lengths,
                blank=blank, reduction="mean", zero_infinity=True,
            )
        trainer.scaler.scale(loss / grad_accum).backward()
    return loss


@torch.no_grad()
def _features(trainer: Trainer, batch: Batch, host_lengths: torch.Tensor,
              cfg: ExperimentConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised (and, if configured, SpecAugmented) features (B, T, F) of a batch on the
    device, and their frame counts (B,) on the host."""
    if not batch.indices:
        # Every file of the batch failed. A zero loss on one silent frame keeps the
        # step, the gradient scaler and the other ranks of a DDP run in step.
        feats = torch.zeros(1, cfg.model.stack, cfg.model.n_mels, device=trainer.device)
        return feats, torch.full((1,), cfg.model.stack)
    feats, feat_lengths = log_mel(batch.waves, batch.wave_lengths, cfg.features)
    feats = trainer.model.normalize(feats)
    if cfg.train.spec_augment:
        feats = spec_augment(feats, feat_lengths, cfg.spec_augment)
    return feats, host_lengths


def optimizer_step(trainer: Trainer, grad_clip: float) -> None:
    """Apply the accumulated gradients and advance the learning rate schedule."""
    # Clipping bounds the occasional huge CTC gradient of a badly aligned batch.
    trainer.scaler.unscale_(trainer.optimizer)
    torch.nn.utils.clip_grad_norm_(trainer.model.parameters(), grad_clip)
    trainer.scaler.step(trainer.optimizer)
    trainer.scaler.update()
    trainer.scheduler.step()
    trainer.optimizer.zero_grad(set_to_none=True)
