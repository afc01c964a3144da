"""A wall-clock training budget (``train.max_train_seconds``): the run stops at the step that
uses it up, its lr decays over the time, and a resumed run knows how much time it has left."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import socket
import time
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import soundfile as sf
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import asr.train
from asr.config import DataConfig, ExperimentConfig, TrainConfig
from asr.errors import ConfigError
from asr.model import ModelConfig
from asr.train import train
from asr.trainer import TimeBudget

BUDGET = 2.0  # training-loop seconds: some 100 steps of the tiny model below, and a few epochs


def _rows(exp: Path) -> list[dict]:
    return [json.loads(line) for line in (exp / "metrics.jsonl").read_text().splitlines()]


def test_lr_warms_up_over_steps_then_decays_over_the_time_left():
    budget = TimeBudget(seconds=100.0, warmup_steps=4, final_ratio=0.1, elapsed=0.0)
    assert [budget.lr_factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    budget.warmup_end = budget.elapsed = 20.0  # warm-up took 20 s: the decay spans the 80 s left
    assert budget.lr_factor(4) == pytest.approx(1.0)
    budget.elapsed = 60.0
    assert budget.lr_factor(50) == pytest.approx(0.1 + 0.9 * 0.5)
    budget.elapsed = 100.0
    assert budget.lr_factor(90) == pytest.approx(0.1)
    budget.elapsed = 130.0  # the step that overran the budget: held at the floor
    assert budget.lr_factor(91) == pytest.approx(0.1)


def test_a_negative_budget_is_a_config_error():
    with pytest.raises(ConfigError, match=r"\[train\].*max_train_seconds = -5.0: must be a number >= 0"):
        ExperimentConfig.from_dict({"train": {"max_train_seconds": -5}})
    assert ExperimentConfig.from_dict({"train": {"max_train_seconds": 470}}).train.max_train_seconds == 470.0


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


def _config(data: Path, max_train_seconds: float, dev: bool = True) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(train_manifests=(str(data / "train.jsonl"),), dev_manifest=str(data / "dev.jsonl") * dev),
        model=ModelConfig(hidden=16, layers=1, dropout=0.0),
        train=TrainConfig(epochs=1000, max_batch_seconds=4.0, lr=3e-3, warmup_steps=3, final_lr_ratio=0.1,
                          spec_augment=False, num_workers=0, stats_utterances=4, log_every=5,
                          max_train_seconds=max_train_seconds),
    )


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Four utterances, 20 times over for training (40 steps an epoch), and two for dev."""
    root = tmp_path_factory.mktemp("budget")
    rows = []
    for i in range(4):
        sf.write(root / f"u{i}.wav", _speechlike(1.5, i), 16_000)
        rows.append({"id": f"s-c-{i}", "audio_filepath": str(root / f"u{i}.wav"), "duration": 1.5,
                     "text": "HELLO THERE", "speaker": "s"})
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows * 20))
    (root / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    return root


@pytest.fixture(scope="module")
def budget_run(corpus: Path) -> tuple[Path, ExperimentConfig, asr.train.TrainingState]:
    """A run with an epochs cap far beyond its budget, trained until the budget stops it."""
    cfg = _config(corpus, BUDGET)
    state = train(cfg, corpus / "exp", progress=False)
    return corpus / "exp", cfg, state


def test_a_budget_stops_training_at_the_step_that_uses_it_up(budget_run):
    exp, cfg, state = budget_run
    assert BUDGET <= state.train_seconds < BUDGET + 30  # one step's overrun; loose for a busy machine
    assert state.epoch < cfg.train.epochs
    rows = _rows(exp)
    end = rows[-1]
    assert end["kind"] == "end" and end["reason"] == "time budget" and [r["kind"] for r in rows].count("end") == 1
    assert end["step"] == state.step and end["train_seconds"] == pytest.approx(state.train_seconds)
    assert end["epoch"] == state.latest_epoch and end["audio_seconds"] == pytest.approx(state.audio_seconds)
    # The stopping step was logged and scored, and its checkpoints say the budget is spent.
    train_rows = [r for r in rows if r["kind"] == "train"]
    assert train_rows[-1]["step"] == state.step and rows[-2]["kind"] == "dev" and rows[-2]["step"] == state.step
    saved = torch.load(exp / "last.pt", weights_only=True)["state"]
    assert saved["step"] == state.step and saved["train_seconds"] >= BUDGET
    assert (exp / "best.pt").is_file() and (exp / "curves.png").is_file()
    # The lr decayed with time, to the floor at the step that used the budget up.
    lrs = [r["lr"] for r in train_rows if r["step"] > cfg.train.warmup_steps]
    assert lrs == sorted(lrs, reverse=True)
    assert lrs[-1] == pytest.approx(cfg.train.lr * cfg.train.final_lr_ratio)
    assert 0 < saved["warmup_seconds"] < BUDGET


def test_resuming_a_spent_budget_trains_no_more_and_a_larger_one_goes_on(budget_run, tmp_path):
    exp, cfg, state = budget_run
    shutil.copytree(exp, tmp_path / "exp")
    exp = tmp_path / "exp"
    rows = _rows(exp)
    again = train(cfg, exp, resume=True, progress=False)
    assert (again.step, again.epoch, again.epoch_batches) == (state.step, state.epoch, state.epoch_batches)
    assert _rows(exp) == rows  # the end row written again, the same

    longer = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, max_train_seconds=state.train_seconds + 0.5))
    more = train(longer, exp, resume=True, progress=False)
    assert more.step > state.step and more.train_seconds >= longer.train.max_train_seconds
    kinds = [r["kind"] for r in _rows(exp)]
    assert kinds.count("end") == 1 and kinds[-1] == "end"
    assert math.isfinite(_rows(exp)[-2]["wer"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, cfg: ExperimentConfig, exp_dir: str, out_dir: str) -> None:
    """One of two ranks, as torchrun would start it; rank 1's clock runs 100 times too fast."""
    os.environ.update(WORLD_SIZE="2", RANK=str(rank), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1",
                      MASTER_PORT=str(port))
    torch.set_num_threads(1)
    # A short timeout: a rank left waiting for one that stopped alone fails the test instead of hanging it.
    dist.init_process_group("gloo", timeout=timedelta(seconds=60))
    if rank == 1:
        asr.train.time = SimpleNamespace(perf_counter=lambda: 100 * time.perf_counter())
    try:
        state = train(cfg, exp_dir, device="cpu", progress=False)
        torch.save({"step": state.step, "epoch": state.epoch}, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # rank 1, done first, must not tear its connections down under rank 0
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_every_rank_stops_at_the_step_rank_0s_clock_chooses(corpus: Path, tmp_path: Path) -> None:
    """Rank 1 alone would stop after a step or two; it follows rank 0, whose clock runs true."""
    cfg = _config(corpus, max_train_seconds=1.0, dev=False)
    mp.spawn(_rank, args=(_free_port(), cfg, str(tmp_path / "exp"), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0] == ranks[1] and ranks[0]["step"] > 5
    end = _rows(tmp_path / "exp")[-1]
    assert end["reason"] == "time budget" and end["step"] == ranks[0]["step"] and end["train_seconds"] >= 1.0


def test_the_last_line_says_a_budget_stopped_within_an_epoch_and_names_the_dev_score(tmp_path):
    from asr.cli.model import done_line

    stopped = asr.train.TrainingState(epoch=4, step=14735, epoch_batches=300, best_wer=0.07, best_epoch=5)
    assert done_line("phones", stopped, tmp_path / "best.pt") == (
        "done: 4 epochs and part of epoch 5, 14735 steps, best dev phone error rate 7.00% (epoch 5); "
        "no best.pt was written")
    (tmp_path / "best.pt").write_bytes(b"")
    whole_epochs = asr.train.TrainingState(epoch=4, step=3560, best_wer=0.3, best_epoch=4)
    assert done_line("chars", whole_epochs, tmp_path / "best.pt").startswith(
        "done: 4 epochs, 3560 steps, best dev WER 30.00% (epoch 4); model at ")
