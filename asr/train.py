"""Training: CTC on log-mel features, AdamW with warm-up and cosine decay, AMP on CUDA.

Read top to bottom: set-up (data, model, normalisation statistics, optimizer), the epoch
loop (steps, logging, dev scoring, checkpoints), then the curves. Runs on one device or,
under ``torchrun``, data-parallel on several (rank 0 logs, scores and saves).
"""

from __future__ import annotations

import json
import math
import random
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader

from asr.audio import AudioError, check_audio_file
from asr.checkpoint import read_checkpoint, remove_partial_checkpoints, save_checkpoint
from asr.config import ExperimentConfig
from asr.data import BucketBatchSampler, SpeechDataset, Utterance, collate, read_manifest
from asr.distributed import init_distributed, rank_seed, world_schedule
from asr.decode import GreedyDecoder
from asr.errors import UserError
from asr.evaluate import decode_utterances, score
from asr.features import feature_stats, log_mel, num_frames, spec_augment
from asr.inference import resolve_device
from asr.model import AcousticModel
from asr.progress import progress as progress_bar
from asr.text import Vocabulary


class TrainingError(UserError, ValueError):
    """Training cannot start (no data, bad manifest, nothing to resume)."""


@dataclass
class TrainingState:
    """Mutable progress, kept apart from the (frozen) configuration."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    epoch_batches: int = 0  # batches of epoch ``epoch + 1`` done when a mid-epoch checkpoint was saved
    best_wer: float = math.inf
    best_epoch: int = 0
    audio_seconds: float = 0.0  # training audio processed so far
    train_seconds: float = 0.0  # wall time spent in the training loop


def ctc_frames_needed(text: str) -> int:
    """Fewest output frames CTC needs for ``text``: one per character, plus a blank between
    each pair of equal neighbours ("LL" needs three)."""
    return len(text) + sum(a == b for a, b in zip(text, text[1:]))


def _encodable(utterances: list[Utterance], vocab: Vocabulary, cfg: ExperimentConfig) -> tuple[list[Utterance], dict[str, int]]:
    dropped = {"too long": 0, "characters outside the vocabulary": 0, "empty transcript": 0,
               "transcript longer than its audio's frames can carry": 0}
    kept = []
    sample_rate = cfg.features.sample_rate
    for u in utterances:
        if u.duration > cfg.data.max_duration:
            dropped["too long"] += 1
        elif not u.text:
            dropped["empty transcript"] += 1
        elif vocab.unknown_characters(u.text):
            dropped["characters outside the vocabulary"] += 1
        elif ctc_frames_needed(u.text) > math.ceil(
            num_frames(round(u.duration * sample_rate), cfg.features) / cfg.model.stack
        ):
            # CTC cannot align it: its loss would be infinite (zeroed), a wasted slot in the batch.
            dropped["transcript longer than its audio's frames can carry"] += 1
        else:
            kept.append(u)
    return kept, {k: v for k, v in dropped.items() if v}


def _amp_dtype(setting: str, device: torch.device) -> torch.dtype | None:
    # Mixed precision only pays on GPUs; on CPU it would slow the LSTM down.
    if device.type != "cuda" or setting == "off":
        return None
    if setting == "auto":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[setting]


def _needs_loss_scaling(amp_dtype: torch.dtype | None) -> bool:
    """Whether gradients need loss scaling: whenever autocast is on, not only under fp16.

    PyTorch's autocast runs cuDNN RNNs in float16 even under bfloat16 autocast (the cast is
    written into its cuDNN RNN wrapper), so the LSTMs of a bf16 run compute in fp16, where the
    small gradients of a mean-reduced CTC loss flush to zero without scaling.
    """
    return amp_dtype is not None


def _lr_factor(step: int, warmup: int, total: int, final_ratio: float) -> float:
    # Linear warm-up keeps early LSTM updates stable; cosine decay then anneals to a floor.
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return final_ratio + (1 - final_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def _normalization_stats(utterances: list[Utterance], cfg: ExperimentConfig, vocab: Vocabulary, device: torch.device):
    """Global per-bin mean and std of log-mel features over a seeded sample of training audio."""
    sample = random.Random(cfg.train.seed).sample(utterances, min(len(utterances), cfg.train.stats_utterances))
    loader = DataLoader(
        SpeechDataset(sample, vocab),
        batch_sampler=BucketBatchSampler([u.duration for u in sample], 300.0, shuffle=False),
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
    )
    total = total_sq = None
    frames = 0
    failures: dict[int, str] = {}
    for batch in loader:
        failures.update(batch.failed)
        if not batch.indices:
            continue
        feats, lengths = log_mel(batch.waves.to(device), batch.wave_lengths.to(device), cfg.features)
        s, sq, n = feature_stats(feats, lengths)
        total = s if total is None else total + s
        total_sq = sq if total_sq is None else total_sq + sq
        frames += n
    if not frames:
        first = next(iter(failures.values()), "no audio")
        raise TrainingError(f"none of the {len(sample)} training utterances sampled for feature statistics could be "
                            f"read (first: {first}); check the training manifests with asr validate")
    mean = total / frames
    std = (total_sq / frames - mean.square()).clamp_min(0).sqrt()
    return mean.float(), std.float()


def _readable_dev(dev_utts: list[Utterance], manifest: str, main_process: bool) -> list[Utterance]:
    """The dev utterances whose audio file is there; the others are left out, and said so.

    None there is an error: a score over no utterance would read 0% and choose best.pt.
    """
    kept, missing = [], []
    for utterance in dev_utts:
        try:
            check_audio_file(utterance.audio_filepath)
            kept.append(utterance)
        except AudioError as err:
            missing.append(str(err))
    if dev_utts and not kept:
        raise TrainingError(f"{manifest}: none of its {len(dev_utts)} dev utterances can be read (first: {missing[0]}); "
                            "fix the dev manifest, or leave data.dev_manifest empty to train without one")
    if missing and main_process:
        print(f"asr: warning: {len(missing)} of {len(dev_utts)} dev utterances cannot be read and are left out "
              f"of dev scoring (first: {missing[0]})", file=sys.stderr, flush=True)
    return kept


def _check_resumable(raw: dict, cfg: ExperimentConfig, vocab: Vocabulary, last_path: Path) -> None:
    """Refuse to continue a run whose model or features differ from ``cfg``'s: its weights
    would be trained on other inputs, or not fit at all."""
    if tuple(raw.get("vocab", ())) != vocab.tokens:
        raise TrainingError(f"{last_path} was trained with another vocabulary ({len(raw.get('vocab', ()))} tokens, "
                            f"this asr has {len(vocab)}); train into a new --exp-dir")
    saved = ExperimentConfig.from_dict(raw["config"], source=str(last_path))
    changed = [f"{section}.{key}" for section in ("features", "model")
               for key, value in asdict(getattr(cfg, section)).items() if asdict(getattr(saved, section))[key] != value]
    if changed:
        raise TrainingError(f"{last_path} holds a model built with other settings ({', '.join(changed)}); "
                            "resume with the config it was trained with, or train into a new --exp-dir")


def _drop_metrics_after(metrics_path: Path, step: int) -> None:
    """Forget the rows a killed run logged after the checkpoint it resumes from (the resumed
    run logs those steps again), and a last row the kill cut short."""
    if not metrics_path.exists():
        return
    lines = metrics_path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            pass
    if len(kept) != len(lines):
        metrics_path.write_text("".join(line + "\n" for line in kept))


def _plot_curves(metrics_path: Path, out_png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if r["kind"] == "train"]
    dev = [r for r in rows if r["kind"] == "dev"]
    fig, (ax_loss, ax_wer) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot([r["step"] for r in train], [r["loss"] for r in train])
    ax_loss.set(xlabel="step", ylabel="CTC loss (per token)", title="training loss", yscale="log")
    ax_wer.plot([r["epoch"] for r in dev], [100 * r["wer"] for r in dev], marker="o", label="WER")
    ax_wer.plot([r["epoch"] for r in dev], [100 * r["cer"] for r in dev], marker="s", label="CER")
    ax_wer.set(xlabel="epoch", ylabel="%", title="dev error rate (greedy)")
    ax_wer.legend()
    fig.tight_layout()
    fig.savefig(out_png, dpi=100)
    plt.close(fig)


class _TensorBoard:
    """The metrics rows as TensorBoard scalars ("train/loss", "dev/wer", ...) against their
    step, in event files in the experiment folder, when the optional ``tensorboard`` package
    is installed (``pip install 'asr[tensorboard]'``); without it, nothing at all."""

    def __init__(self) -> None:
        self._writer = None

    def open(self, exp_dir: Path, start_step: int) -> None:
        """Start writing for a run that continues after optimizer step ``start_step``."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:
            return
        # TensorBoard hides what earlier event files hold from this step on: the rows a killed
        # run logged after the checkpoint it resumes from, which this run logs again.
        self._writer = SummaryWriter(str(exp_dir), purge_step=start_step + 1)

    def add(self, row: dict) -> None:
        if self._writer is not None:
            for name, value in row.items():
                if name not in ("kind", "epoch", "step"):
                    self._writer.add_scalar(f"{row['kind']}/{name}", value, row["step"])

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def train(
    cfg: ExperimentConfig, exp_dir: str | Path, *, resume: bool = False, overwrite: bool = False,
    device: str = "auto", progress: bool = True,
) -> TrainingState:
    """Train a model as ``cfg`` says, writing checkpoints and metrics into ``exp_dir``.

    ``exp_dir`` receives ``last.pt`` (everything needed to resume), ``best.pt`` (the
    weights with the lowest dev WER so far), ``metrics.jsonl`` (also as TensorBoard event
    files, ``events.out.tfevents.*``, when tensorboard is installed), ``config.json`` and,
    at the end, ``curves.png``. With ``resume`` training continues from ``last.pt``. An
    ``exp_dir`` that already holds a run is refused unless ``resume`` continues it or
    ``overwrite`` deletes it first.
    """
    board = _TensorBoard()
    try:
        return _train(cfg, Path(exp_dir), board, resume=resume, overwrite=overwrite, device=device, progress=progress)
    finally:
        board.close()  # also after a failure: what was logged reaches the file


def _train(
    cfg: ExperimentConfig, exp_dir: Path, board: _TensorBoard, *, resume: bool, overwrite: bool, device: str,
    progress: bool,
) -> TrainingState:
    """:func:`train`, logging to ``board`` too."""
    rank, local_rank, world, started_group = init_distributed()
    main_process = rank == 0
    dev_device = resolve_device(device)
    if dev_device.type == "cuda" and world > 1:
        dev_device = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev_device)
    last_path, best_path, metrics_path = exp_dir / "last.pt", exp_dir / "best.pt", exp_dir / "metrics.jsonl"
    # A run's checkpoints are its results; metrics without any (a run killed in its first epoch) are not.
    earlier = [p for p in (last_path, best_path, *sorted(exp_dir.glob("epoch-*.pt"))) if p.exists()]
    if earlier and not resume:
        if not overwrite:
            raise TrainingError(f"{exp_dir} already holds a training run ({', '.join(p.name for p in earlier)}); "
                                "continue it with --resume, or start over with --overwrite")
        if main_process:  # no file of the old run may be mistaken for one of the new
            for path in earlier:
                path.unlink()
    exp_dir.mkdir(parents=True, exist_ok=True)
    if main_process:
        remove_partial_checkpoints(exp_dir)  # a run killed while saving leaves its temporary file
    torch.manual_seed(cfg.train.seed)
    # The config is written for one device; on several, this says what each rank uses instead.
    run = world_schedule(cfg.train, world)
    if main_process and world > 1:
        print(run.describe(), flush=True)

    # Data. Utterances the vocabulary cannot spell or that are too long are left out, and said so.
    vocab = Vocabulary()
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=len(vocab)))
    if not cfg.data.train_manifests:
        raise TrainingError("no training manifests: set data.train_manifests in the config")
    train_utts = [u for m in cfg.data.train_manifests for u in read_manifest(m)]
    train_utts, dropped = _encodable(train_utts, vocab, cfg)
    left_out = ", ".join(f"{n} {why}" for why, n in dropped.items())
    if not train_utts:
        raise TrainingError(f"no usable training utterances in {list(cfg.data.train_manifests)} (left out: {left_out})")
    dev_utts = read_manifest(cfg.data.dev_manifest) if cfg.data.dev_manifest else []
    if cfg.data.dev_max_utterances and len(dev_utts) > cfg.data.dev_max_utterances:
        dev_utts = random.Random(0).sample(dev_utts, cfg.data.dev_max_utterances)
    dev_utts = _readable_dev(dev_utts, cfg.data.dev_manifest, main_process)
    if main_process and dropped:
        print(f"left out of training: {left_out}", flush=True)

    sampler = BucketBatchSampler(
        [u.duration for u in train_utts], run.max_batch_seconds, seed=cfg.train.seed,
        num_replicas=world, rank=rank, sortagrad=cfg.train.sortagrad,
    )
    loader = DataLoader(
        SpeechDataset(train_utts, vocab),
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=cfg.train.num_workers,
        pin_memory=dev_device.type == "cuda",
        persistent_workers=cfg.train.num_workers > 0,
        # Its own generator: starting an epoch's iterator must not draw from the global one,
        # whose state a checkpoint restores for dropout and SpecAugment (exact resume).
        generator=torch.Generator().manual_seed(cfg.train.seed),
    )

    # Model, optimizer, schedule. The total step count fixes the cosine schedule's length.
    try:
        model = AcousticModel(cfg.model).to(dev_device)
    except (RuntimeError, MemoryError) as err:  # sizes that no memory holds
        raise TrainingError(f"cannot build the model ({' '.join(str(err).split())[:160]}): model.hidden = {cfg.model.hidden}, "
                            f"model.layers = {cfg.model.layers}; choose a smaller model") from None
    layout = cfg.train.recurrent_layout
    model.set_layout(("fused" if dev_device.type == "cuda" else "split") if layout == "auto" else layout)
    # The fused AdamW takes the gradient scaler's inf check on the GPU, without a host sync.
    fused = dev_device.type == "cuda"
    optimizer = torch.optim.AdamW(model.parameters(), lr=run.lr, weight_decay=cfg.train.weight_decay, fused=fused)
    steps_per_epoch = math.ceil(len(sampler) / run.grad_accum)
    total_steps = steps_per_epoch * cfg.train.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: _lr_factor(s, run.warmup_steps, total_steps, cfg.train.final_lr_ratio)
    )
    amp_dtype = _amp_dtype(cfg.train.amp, dev_device)
    scaler = torch.amp.GradScaler("cuda", enabled=_needs_loss_scaling(amp_dtype))
    state = TrainingState()

    if resume and last_path.exists():
        raw = read_checkpoint(last_path)
        _check_resumable(raw, cfg, vocab, last_path)
        model.load_state_dict(raw["model"])
        optimizer.load_state_dict(raw["optimizer"])
        for group in optimizer.param_groups:  # a run resumed on another kind of device
            group["fused"] = fused
        scheduler.load_state_dict(raw["scheduler"])
        scaler.load_state_dict(raw["scaler"])
        state = TrainingState(**raw["state"])
        torch.set_rng_state(raw["rng"])
        if "cuda_rng" in raw and dev_device.type == "cuda":
            torch.cuda.set_rng_state(raw["cuda_rng"], dev_device)
        if main_process:
            _drop_metrics_after(metrics_path, state.step)  # rows a killed run logged after its last save
            within = f" (+{state.epoch_batches} batches of the next)" if state.epoch_batches else ""
            print(f"resumed from {last_path}: epoch {state.epoch}{within}, step {state.step}", flush=True)
    elif resume:
        raise TrainingError(f"--resume given but {last_path} does not exist; start without --resume")
    else:
        # Statistics are computed once, before any update, and then travel in every checkpoint.
        mean, std = _normalization_stats(train_utts, cfg, vocab, dev_device)
        model.set_normalization(mean, std)
        metrics_path.unlink(missing_ok=True)
        if main_process:  # TensorBoard would show an earlier run's event files along with this run's
            for events in exp_dir.glob("events.out.tfevents.*"):
                events.unlink()
    if rank:  # dropout and SpecAugment draw their own masks on each rank
        torch.manual_seed(rank_seed(cfg.train.seed, rank, state.step))
    if main_process:
        (exp_dir / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2) + "\n")
        board.open(exp_dir, state.step)

    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dev_device.index] if dev_device.type == "cuda" else None
        )
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if amp_dtype else nullcontext

    def log(row: dict) -> None:
        if main_process:
            with metrics_path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            board.add(row)

    def save_last() -> None:
        cuda_rng = {"cuda_rng": torch.cuda.get_rng_state(dev_device)} if dev_device.type == "cuda" else {}
        save_checkpoint(
            last_path, model, cfg, vocab, state=asdict(state), optimizer=optimizer.state_dict(),
            scheduler=scheduler.state_dict(), scaler=scaler.state_dict(), rng=torch.get_rng_state(), **cuda_rng,
        )

    decoder = GreedyDecoder(vocab)
    unreadable: dict[int, str] = {}  # training utterances whose audio could not be read
    for epoch in range(state.epoch, cfg.train.epochs):
        sampler.set_epoch(epoch)
        skip = state.epoch_batches  # batches this epoch already did before a resume
        sampler.start_at(skip)
        model.train()
        bar = progress_bar(
            total=steps_per_epoch, initial=skip // run.grad_accum, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
            unit="step", disable=not (progress and main_process),
        )
        started = time.perf_counter()
        # The loss is summed on the device and read at log time only: a .item() per step would
        # make the host wait for the GPU at every step.
        window_loss, window_batches, window_audio, window_start = torch.zeros((), device=dev_device), 0, 0.0, started
        optimizer.zero_grad(set_to_none=True)
        batches = readable = 0
        for index, batch in enumerate(loader, start=skip):
            for utterance, error in batch.failed:
                if utterance not in unreadable and main_process:
                    print(f"asr: warning: {error}; utterance left out of training", file=sys.stderr, flush=True)
                unreadable[utterance] = error
            # Lengths and audio seconds are read on the host, before the copy, so that neither
            # packing, CTC (which wants host lengths) nor the log waits for the device.
            audio = batch.audio_seconds * world
            host_lengths = num_frames(batch.wave_lengths, cfg.features)  # (B,)
            host_target_lengths = batch.target_lengths  # (B,)
            batch = batch.to(dev_device)
            empty = not batch.indices
            batches, readable = batches + 1, readable + (not empty)
            with torch.no_grad():
                if empty:
                    # Every file of the batch failed. A zero loss on one silent frame keeps the
                    # step, the gradient scaler and the other ranks of a DDP run in step.
                    feats = torch.zeros(1, cfg.model.stack, cfg.model.n_mels, device=dev_device)
                    host_lengths = torch.full((1,), cfg.model.stack)
                else:
                    feats, feat_lengths = log_mel(batch.waves, batch.wave_lengths, cfg.features)
                    feats = model.normalize(feats)
                if cfg.train.spec_augment and not empty:
                    feats = spec_augment(feats, feat_lengths, cfg.spec_augment)
            last_micro_batch = (index + 1) % run.grad_accum == 0 or index + 1 == len(sampler)
            # Under DDP, gradients are all-reduced only on the micro-batch that steps the optimizer.
            sync = nullcontext() if last_micro_batch or world == 1 else ddp_model.no_sync()
            with sync:
                with autocast():
                    lp, out_lengths = ddp_model(feats, host_lengths, normalized=True)
                if empty:
                    loss = lp.sum() * 0.0
                else:
                    # zero_infinity: an utterance too short for its label yields inf; it is skipped, not fatal.
                    loss = F.ctc_loss(
                        lp.transpose(0, 1), batch.targets, out_lengths, host_target_lengths,
                        blank=vocab.blank, reduction="mean", zero_infinity=True,
                    )
                scaler.scale(loss / run.grad_accum).backward()
            window_loss += loss.detach()
            window_batches += 1
            window_audio += audio
            state.audio_seconds += audio
            if not last_micro_batch:
                continue
            # Clipping bounds the occasional huge CTC gradient of a badly aligned batch.
            scaler.unscale_(optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            state.step += 1
            bar.update(1)
            if cfg.train.checkpoint_every and state.step % cfg.train.checkpoint_every == 0 and index + 1 < len(sampler):
                # Mid-epoch: a killed run resumes here, losing at most checkpoint_every steps.
                state.epoch_batches = index + 1
                state.train_seconds += time.perf_counter() - started
                started = time.perf_counter()
                if main_process:
                    save_last()
                if world > 1:
                    dist.barrier()
            if state.step % cfg.train.log_every == 0 or index + 1 == len(sampler):
                now = time.perf_counter()
                row = {
                    "kind": "train", "epoch": epoch + 1, "step": state.step,
                    "loss": window_loss.item() / window_batches, "lr": scheduler.get_last_lr()[0],
                    "audio_seconds_per_second": window_audio / (now - window_start),
                }
                if dev_device.type == "cuda":
                    row["gpu_peak_memory_gb"] = torch.cuda.max_memory_allocated(dev_device) / 2**30
                log(row)
                bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}", speed=f"{row['audio_seconds_per_second']:.0f}x")
                window_loss, window_batches, window_audio, window_start = torch.zeros((), device=dev_device), 0, 0.0, now
        bar.close()
        if batches:
            counts = torch.tensor([readable], device=dev_device)  # NCCL reduces only GPU tensors
            if world > 1:
                dist.all_reduce(counts)
            if not counts.item():
                raise TrainingError(f"no training utterance could be read in epoch {epoch + 1} ({len(unreadable)} "
                                    "failed, listed above); check the training manifests with asr validate")
        state.train_seconds += time.perf_counter() - started
        state.epoch, state.epoch_batches = epoch + 1, 0
        if unreadable and main_process:
            print(f"asr: warning: {len(unreadable)} training utterance(s) could not be read and were left out",
                  file=sys.stderr, flush=True)

        # Dev scoring and checkpoints happen on rank 0; other ranks wait at the barrier.
        if main_process:
            wer = cer = math.nan
            scored = []
            if dev_utts:
                decoded = decode_utterances(model, cfg.features, vocab, dev_utts, decoder,
                                            num_workers=cfg.train.num_workers)
                scored = decoded.decoded(dev_utts)
                if decoded.failures:
                    print(f"asr: warning: {len(decoded.failures)} of {len(dev_utts)} dev utterances could not be "
                          f"read and are left out of this epoch's score (first: {next(iter(decoded.failures.values()))})",
                          file=sys.stderr, flush=True)
                if scored:  # a score of nothing must not choose best.pt
                    result = score(scored, decoded.texts)
                    wer, cer = result.wer, result.cer
            log({"kind": "dev", "epoch": state.epoch, "step": state.step, "wer": wer, "cer": cer,
                 "utterances": len(scored)})
            improved = not dev_utts or (bool(scored) and wer < state.best_wer)
            if improved:
                state.best_wer, state.best_epoch = (wer if dev_utts else math.inf), state.epoch
                save_checkpoint(best_path, model, cfg, vocab, state=asdict(state))
            if cfg.train.keep_epochs:
                save_checkpoint(exp_dir / f"epoch-{state.epoch}.pt", model, cfg, vocab, state=asdict(state))
                stale = exp_dir / f"epoch-{state.epoch - cfg.train.keep_epochs}.pt"
                stale.unlink(missing_ok=True)
            save_last()
            if not dev_utts:
                scores = "no dev set"
            elif not scored:
                scores = "no dev utterance could be read: not scored, best.pt not updated"
            else:
                partial = f" on {len(scored)} of {len(dev_utts)} utterances" if len(scored) < len(dev_utts) else ""
                scores = (f"dev WER {100 * wer:.2f}% CER {100 * cer:.2f}%{partial} (best {100 * state.best_wer:.2f}% "
                          f"at epoch {state.best_epoch})")
            print(f"epoch {state.epoch}: {scores}; {state.audio_seconds / max(state.train_seconds, 1e-9):.0f} audio-s/s",
                  flush=True)
        if world > 1:
            dist.barrier()

    if main_process and metrics_path.exists():
        _plot_curves(metrics_path, exp_dir / "curves.png")
    if started_group:
        dist.destroy_process_group()
    return state
