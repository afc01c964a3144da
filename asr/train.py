"""Training: CTC on log-mel features, AdamW with warm-up and cosine decay, mixed precision.

Read top to bottom: :func:`train` sets up (data, model, normalisation statistics,
optimizer) and runs the epochs; :func:`train_one_epoch` takes the steps and logs them,
:func:`end_of_epoch` scores the dev set and saves the checkpoints. Runs on one device or,
under ``torchrun``, data-parallel on several (rank 0 logs, scores and saves). With a time
budget (``train.max_train_seconds``) the run stops at the first optimizer step by which its
training-loop seconds reach the budget, and the last epoch's end-of-epoch work is done there.

What a run reads is set up by :mod:`asr.training_data`, the optimizer and the step itself
live in :mod:`asr.trainer`, and :mod:`asr.training_log` keeps the metrics.
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist

from asr.checkpoint import LoadedModel, read_checkpoint, remove_partial_checkpoints, save_checkpoint
from asr.config import ExperimentConfig
from asr.data import Utterance
from asr.decode import GreedyDecoder
from asr.distributed import WorldSchedule, init_distributed, rank_seed, world_schedule
from asr.evaluate import decode_utterances, score
from asr.inference import resolve_device
from asr.io import write_text_atomic
from asr.model import AcousticModel
from asr.progress import progress as progress_bar
from asr.text import Vocabulary
from asr.units import lexicon_table, target_units, vocabulary_for
from asr.trainer import Trainer, build_trainer, forward_backward, optimizer_step, rank0_seconds
from asr.training_data import TrainingData, TrainingError, load_data, normalization_stats
from asr.training_log import LogWindow, TrainingLog


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
    warmup_seconds: float = 0.0  # train_seconds when lr warm-up ended: a time budget's decay starts there

    @property
    def latest_epoch(self) -> int:
        """The epoch (from 1) of the latest step: one a time budget stopped within, or the last completed."""
        return self.epoch + (self.epoch_batches > 0)


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
    exp_dir = Path(exp_dir)
    rank, local_rank, world, started_group = init_distributed()
    main_process = rank == 0
    compute_device = _rank_device(resolve_device(device), local_rank, world)
    _claim_exp_dir(exp_dir, resume=resume, overwrite=overwrite, main_process=main_process)
    # Nothing draws from the global generator between this seed and the model's weights.
    torch.manual_seed(cfg.train.seed)
    # The config is written for one device; on several, this says what each rank uses instead.
    run = world_schedule(cfg.train, world)
    if main_process and world > 1:
        print(run.describe(), flush=True)
    vocab = vocabulary_for(cfg.text)
    cfg = replace(cfg, model=replace(cfg.model, vocab_size=len(vocab)))
    data = load_data(cfg, vocab, run, rank, compute_device)
    steps_per_epoch = math.ceil(len(data.sampler) / run.grad_accum)

    with TrainingLog(exp_dir, enabled=main_process) as log:
        model = _new_model(cfg, compute_device)
        trainer = build_trainer(model, cfg, run, compute_device, rank, total_steps=steps_per_epoch * cfg.train.epochs)
        if resume:
            state = restore(trainer, cfg, vocab, exp_dir / "last.pt", log)
        else:
            state = start_fresh(trainer, cfg, vocab, data.train_utterances, log)
        if rank:  # dropout and SpecAugment draw their own masks on each rank
            torch.manual_seed(rank_seed(cfg.train.seed, rank, state.step))
        if main_process:
            write_text_atomic(exp_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")
            log.open_board(state.step)
        if world > 1:  # DDP starts every rank from rank 0's weights and buffers: wrap them once they are final
            trainer.ddp_model = torch.nn.parallel.DistributedDataParallel(
                trainer.model, device_ids=[compute_device.index] if compute_device.type == "cuda" else None
            )

        job = TrainingJob(trainer, data, cfg, run, vocab, log, exp_dir / "last.pt", steps_per_epoch, progress)
        # Every rank resumed from the same last.pt, so all agree whether its budget is used up.
        out_of_time = bool(cfg.train.max_train_seconds) and state.train_seconds >= cfg.train.max_train_seconds
        for epoch in range(state.epoch, cfg.train.epochs):
            if out_of_time:
                break
            out_of_time = train_one_epoch(epoch, state, job)
            # Dev scoring and checkpoints happen on rank 0; other ranks wait at the barrier.
            if main_process:
                end_of_epoch(trainer, state, data.dev_utterances, cfg, vocab, log, exp_dir)
            if world > 1:
                dist.barrier()

        _log_end(log, state, cfg, "time budget" if out_of_time else "epochs", main_process)
        log.plot_curves(exp_dir / "curves.png")
        if started_group:
            dist.destroy_process_group()
    return state


def _log_end(log: TrainingLog, state: TrainingState, cfg: ExperimentConfig, reason: str, main_process: bool) -> None:
    """The last row of metrics.jsonl: why the run stopped ("epochs" or "time budget") and where."""
    log.write({"kind": "end", "reason": reason, "epoch": state.latest_epoch, "step": state.step,
               "train_seconds": state.train_seconds, "audio_seconds": state.audio_seconds})
    if main_process and reason == "time budget":
        print(f"time budget used: {state.train_seconds:.1f} s of training (train.max_train_seconds = "
              f"{cfg.train.max_train_seconds:g}); stopped at step {state.step}, epoch {state.latest_epoch}",
              flush=True)


def _rank_device(device: torch.device, local_rank: int, world: int) -> torch.device:
    """``device``, or on several GPUs the one of this process's local rank (made current)."""
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    return device


def _claim_exp_dir(exp_dir: Path, *, resume: bool, overwrite: bool, main_process: bool) -> None:
    """Make ``exp_dir`` ready for this run: refuse an earlier run's results unless the run
    resumes it or overwrites it (then delete them), and clear a half-written checkpoint."""
    # A run's checkpoints are its results; metrics without any (a run killed in its first epoch) are not.
    checkpoints = (exp_dir / "last.pt", exp_dir / "best.pt", *sorted(exp_dir.glob("epoch-*.pt")))
    earlier = [p for p in checkpoints if p.exists()]
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


def _new_model(cfg: ExperimentConfig, device: torch.device) -> AcousticModel:
    """A model as ``cfg.model`` says, its weights drawn from the global generator, in the
    recurrent layout ``cfg.train`` asks for (``auto``: the faster one on ``device``)."""
    try:
        model = AcousticModel(cfg.model).to(device)
    except (RuntimeError, MemoryError) as err:  # sizes that no memory holds
        raise TrainingError(f"cannot build the model ({' '.join(str(err).split())[:160]}): model.hidden = {cfg.model.hidden}, "
                            f"model.layers = {cfg.model.layers}; choose a smaller model") from None
    layout = cfg.train.recurrent_layout
    return model.set_layout(("fused" if device.type == "cuda" else "split") if layout == "auto" else layout)


def start_fresh(trainer: Trainer, cfg: ExperimentConfig, vocab: Vocabulary, train_utts: list[Utterance],
                log: TrainingLog) -> TrainingState:
    """The state of a new run, whose model normalises with statistics of ``train_utts``."""
    # Statistics are computed once, before any update, and then travel in every checkpoint.
    mean, std = normalization_stats(train_utts, cfg, vocab, trainer.device)
    trainer.model.set_normalization(mean, std)
    log.start_over()
    return TrainingState()


def restore(trainer: Trainer, cfg: ExperimentConfig, vocab: Vocabulary, last_path: Path,
            log: TrainingLog) -> TrainingState:
    """Load ``last_path`` into ``trainer`` and the random generators; the state it saved."""
    if not last_path.exists():
        raise TrainingError(f"--resume given but {last_path} does not exist; start without --resume")
    raw = read_checkpoint(last_path)
    _check_resumable(raw, cfg, vocab, last_path)
    trainer.model.load_state_dict(raw["model"])
    trainer.optimizer.load_state_dict(raw["optimizer"])
    for group in trainer.optimizer.param_groups:  # a run resumed on another kind of device
        group["fused"] = trainer.device.type == "cuda"
    trainer.scheduler.load_state_dict(raw["scheduler"])
    trainer.scaler.load_state_dict(raw["scaler"])
    state = TrainingState(**raw["state"])
    torch.set_rng_state(raw["rng"])
    if "cuda_rng" in raw and trainer.device.type == "cuda":
        torch.cuda.set_rng_state(raw["cuda_rng"], trainer.device)
    if trainer.rank == 0:
        log.drop_after(state.step)  # rows a killed run logged after its last save
        within = f" (+{state.epoch_batches} batches of the next)" if state.epoch_batches else ""
        print(f"resumed from {last_path}: epoch {state.epoch}{within}, step {state.step}", flush=True)
    return state


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


def save_last(path: Path, trainer: Trainer, cfg: ExperimentConfig, vocab: Vocabulary, state: TrainingState) -> None:
    """Everything a stopped run needs to go on as if it had not stopped, the generators' states included."""
    cuda_rng = {"cuda_rng": torch.cuda.get_rng_state(trainer.device)} if trainer.device.type == "cuda" else {}
    save_checkpoint(
        path, trainer.model, cfg, vocab, state=asdict(state), optimizer=trainer.optimizer.state_dict(),
        scheduler=trainer.scheduler.state_dict(), scaler=trainer.scaler.state_dict(), rng=torch.get_rng_state(),
        **cuda_rng,
    )


@dataclass(frozen=True)
class TrainingJob:
    """What every epoch of one training run works with; :func:`train` builds it once."""

    trainer: Trainer
    data: TrainingData
    cfg: ExperimentConfig
    run: WorldSchedule  # what this rank uses in place of the config's one-device settings
    vocab: Vocabulary
    log: TrainingLog
    last_path: Path  # the resumable checkpoint, written mid-epoch every train.checkpoint_every steps
    steps_per_epoch: int
    show_progress: bool


def train_one_epoch(epoch: int, state: TrainingState, job: TrainingJob) -> bool:
    """Epoch ``epoch`` (from 0), or what a resumed run has left of it: this rank's batches, an
    optimizer step every ``job.run.grad_accum`` of them, train rows and mid-epoch checkpoints.
    Whether the run's time budget is used up (then the epoch may have stopped early)."""
    trainer, data, cfg, run, vocab, log = job.trainer, job.data, job.cfg, job.run, job.vocab, job.log
    main_process = trainer.rank == 0
    data.sampler.set_epoch(epoch)
    skip = state.epoch_batches  # batches this epoch already did before a resume
    data.sampler.start_at(skip)
    epoch_length = len(data.sampler)  # batches, the skipped ones included
    trainer.model.train()
    bar = progress_bar(
        total=job.steps_per_epoch, initial=skip // run.grad_accum, desc=f"epoch {epoch + 1}/{cfg.train.epochs}",
        unit="step", disable=not (job.show_progress and main_process),
    )
    started = time.perf_counter()
    window = LogWindow.open(trainer.device, started)
    trainer.optimizer.zero_grad(set_to_none=True)
    batches = 0
    readable = 0
    out_of_time = stopped_within = False
    for index, batch in enumerate(data.loader, start=skip):
        data.note_unreadable(batch.failed, main_process)
        # Audio seconds are read on the host, before the batch is copied, so the log never waits for the device.
        audio = batch.audio_seconds * run.world_size
        batches += 1
        readable += bool(batch.indices)
        last_micro_batch = (index + 1) % run.grad_accum == 0 or index + 1 == epoch_length
        # Under DDP, gradients are all-reduced only on the micro-batch that steps the optimizer.
        loss = forward_backward(trainer, batch, cfg, vocab.blank, run.grad_accum,
                                sync=last_micro_batch or run.world_size == 1)
        window.add(loss, audio)
        state.audio_seconds += audio
        if not last_micro_batch:
            continue
        if trainer.budget is not None:  # before the step, which sets the next lr from this time
            out_of_time = _budget_used(trainer, state, started, run.world_size)
        optimizer_step(trainer, cfg.train.grad_clip)
        state.step += 1
        bar.update(1)
        if (cfg.train.checkpoint_every and state.step % cfg.train.checkpoint_every == 0 and index + 1 < epoch_length
                and not out_of_time):  # a budget's stop saves last.pt anyway
            # Mid-epoch: a killed run resumes here, losing at most checkpoint_every steps.
            state.epoch_batches = index + 1
            state.train_seconds += time.perf_counter() - started
            started = time.perf_counter()
            if main_process:
                save_last(job.last_path, trainer, cfg, vocab, state)
            if run.world_size > 1:
                dist.barrier()
        if state.step % cfg.train.log_every == 0 or index + 1 == epoch_length or out_of_time:
            now = time.perf_counter()
            row = window.row(epoch, state.step, trainer.scheduler.get_last_lr()[0], trainer.device, now)
            log.write(row)
            bar.set_postfix(loss=f"{row['loss']:.3f}", lr=f"{row['lr']:.2e}",
                            speed=f"{row['audio_seconds_per_second']:.0f}x")
            window = LogWindow.open(trainer.device, now)
        if out_of_time:
            stopped_within = index + 1 < epoch_length
            state.epoch_batches = index + 1
            break
    bar.close()
    if batches:
        data.check_some_readable(readable, epoch, trainer.device, run.world_size)
    state.train_seconds += time.perf_counter() - started
    if not stopped_within:  # else last.pt resumes within the epoch, as from a mid-epoch save
        state.epoch = epoch + 1
        state.epoch_batches = 0
    if data.unreadable and main_process:
        print(f"asr: warning: {len(data.unreadable)} training utterance(s) could not be read and were left out",
              file=sys.stderr, flush=True)
    return out_of_time


def _budget_used(trainer: Trainer, state: TrainingState, started: float, world: int) -> bool:
    """Before an optimizer step under a time budget: set the clock the lr follows to the training
    seconds so far (rank 0's, on every rank) and say whether they reach the budget, so that every
    rank stops after this step."""
    budget = trainer.budget
    budget.elapsed = rank0_seconds(state.train_seconds + time.perf_counter() - started, trainer.device, world)
    if state.step + 1 == budget.warmup_steps:  # this step ends warm-up: the decay's clock starts now
        state.warmup_seconds = budget.elapsed
    budget.warmup_end = state.warmup_seconds
    return budget.elapsed >= budget.seconds


def end_of_epoch(trainer: Trainer, state: TrainingState, dev_utts: list[Utterance], cfg: ExperimentConfig,
                 vocab: Vocabulary, log: TrainingLog, exp_dir: Path) -> None:
    """Rank 0's work after an epoch (or where a time budget stopped one): the dev score, then
    best.pt (if it improved), epoch-N.pt (if kept), last.pt and a line of progress."""
    epoch = state.latest_epoch
    wer, cer, scored = _score_dev(trainer.model, cfg, vocab, dev_utts)
    log.write({"kind": "dev", "epoch": epoch, "step": state.step, "wer": wer, "cer": cer,
               "utterances": len(scored)})
    improved = not dev_utts or (bool(scored) and wer < state.best_wer)
    if improved:
        state.best_wer = wer if dev_utts else math.inf
        state.best_epoch = epoch
        save_checkpoint(exp_dir / "best.pt", trainer.model, cfg, vocab, state=asdict(state))
    if cfg.train.keep_epochs:
        save_checkpoint(exp_dir / f"epoch-{epoch}.pt", trainer.model, cfg, vocab, state=asdict(state))
        stale = exp_dir / f"epoch-{epoch - cfg.train.keep_epochs}.pt"
        stale.unlink(missing_ok=True)
    save_last(exp_dir / "last.pt", trainer, cfg, vocab, state)
    if not dev_utts:
        scores = "no dev set"
    elif not scored:
        scores = "no dev utterance could be read: not scored, best.pt not updated"
    else:
        partial = f" on {len(scored)} of {len(dev_utts)} utterances" if len(scored) < len(dev_utts) else ""
        rate = "WER" if vocab.spells_words else "phone error rate"
        scores = (f"dev {rate} {100 * wer:.2f}% CER {100 * cer:.2f}%{partial} (best {100 * state.best_wer:.2f}% "
                  f"at epoch {state.best_epoch})")
    print(f"epoch {epoch}: {scores}; {state.audio_seconds / max(state.train_seconds, 1e-9):.0f} audio-s/s",
          flush=True)


def _score_dev(model: AcousticModel, cfg: ExperimentConfig, vocab: Vocabulary,
               dev_utts: list[Utterance]) -> tuple[float, float, list[Utterance]]:
    """Greedy WER and CER on the dev utterances that could be read (nan if none), and those utterances."""
    if not dev_utts:
        return math.nan, math.nan, []
    decoder = GreedyDecoder(vocab)
    decoded = decode_utterances(LoadedModel(model, vocab, cfg, {}), dev_utts, decoder, num_workers=cfg.train.num_workers)
    scored = decoded.decoded(dev_utts)
    if not vocab.spells_words:  # greedy output is phones: scored against the phones each row should get
        table = lexicon_table(vocab)
        scored = [replace(u, text=target_units(vocab, u.text, u.phones, table) or "") for u in scored]
    if decoded.failures:
        print(f"asr: warning: {len(decoded.failures)} of {len(dev_utts)} dev utterances could not be "
              f"read and are left out of this epoch's score (first: {next(iter(decoded.failures.values()))})",
              file=sys.stderr, flush=True)
    if not scored:  # a score of nothing must not choose best.pt
        return math.nan, math.nan, scored
    result = score(scored, decoded.texts)
    return result.wer, result.cer, scored
