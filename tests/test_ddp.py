"""Data-parallel training: two CPU processes (gloo) split the batches and stay in step."""

import os
import socket
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

import asr.train
from asr.config import DataConfig, ExperimentConfig, TrainConfig
from asr.data import Batch, Utterance, write_manifest
from asr.model import AcousticModel, ModelConfig

WORLD = 2
UTTERANCES = 8  # of 1 s each. The config's 2 s batches are kept across both ranks (keep-batch):
# 1 s, one utterance, per rank and step, so 4 batches per rank an epoch and no padding
EPOCHS = 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, port: int, cfg: ExperimentConfig, exp_dir: str, out_dir: str) -> None:
    """One rank, as torchrun would start it; records its batches and its final weights."""
    os.environ.update(WORLD_SIZE=str(WORLD), RANK=str(rank), LOCAL_RANK=str(rank),
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    seen: list[list[int]] = []
    models: list[AcousticModel] = []
    initial: list[dict[str, torch.Tensor]] = []
    to_device = Batch.to

    def recording_to(batch: Batch, device: torch.device) -> Batch:
        seen.append(list(batch.indices))  # the training loop moves every batch it trains on
        return to_device(batch, device)

    class RecordingModel(AcousticModel):
        def __init__(self, config: ModelConfig) -> None:
            super().__init__(config)
            models.append(self)
            initial.append({k: v.clone() for k, v in self.state_dict().items()})

    Batch.to = recording_to
    asr.train.AcousticModel = RecordingModel
    try:
        asr.train.train(cfg, exp_dir, device="cpu", progress=False)
        torch.save({"batches": seen, "weights": models[-1].state_dict(), "initial": initial[-1]}, Path(out_dir) / f"rank{rank}.pt")
    finally:
        if dist.is_initialized():  # train() closes the group it started; an exception may skip that
            dist.destroy_process_group()


@pytest.fixture
def tiny_manifest(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    utterances = []
    for i in range(UTTERANCES):
        path = tmp_path / f"s-c-{i}.wav"
        tone = np.sin(2 * np.pi * (200 + 50 * i) * np.arange(16_000) / 16_000)
        soundfile.write(path, (0.3 * tone + 0.01 * rng.standard_normal(16_000)).astype(np.float32), 16_000)
        utterances.append(Utterance(f"s-c-{i}", str(path), 1.0, "AB"[i % 2] + " C", "s"))
    write_manifest(utterances, tmp_path / "train.jsonl")
    return tmp_path / "train.jsonl"


@pytest.mark.slow
def test_two_ranks_see_disjoint_batches_and_end_with_the_same_weights(tmp_path: Path, tiny_manifest: Path) -> None:
    cfg = ExperimentConfig(
        data=DataConfig(train_manifests=(str(tiny_manifest),)),
        model=ModelConfig(hidden=16, layers=1, stack=3, dropout=0.0),
        train=TrainConfig(epochs=EPOCHS, max_batch_seconds=2.0, lr=1e-2, warmup_steps=1, num_workers=0,
                          stats_utterances=UTTERANCES, spec_augment=False, log_every=1),
    )
    out = tmp_path / "out"
    out.mkdir()
    mp.spawn(_worker, args=(_free_port(), cfg, str(tmp_path / "exp"), str(out)), nprocs=WORLD, join=True)

    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    per_epoch = UTTERANCES // WORLD
    for epoch in range(EPOCHS):
        taken = [r["batches"][epoch * per_epoch : (epoch + 1) * per_epoch] for r in ranks]
        assert all(len(t) == per_epoch for t in taken)
        rank0, rank1 = ({i for batch in t for i in batch} for t in taken)
        assert not rank0 & rank1, f"epoch {epoch + 1}: both ranks trained on {sorted(rank0 & rank1)}"
        assert rank0 | rank1 == set(range(UTTERANCES))
    assert all(len(r["batches"]) == EPOCHS * per_epoch for r in ranks)

    # Gradients were averaged across ranks: different data, yet the same weights at the end.
    first, second = (r["weights"] for r in ranks)
    for name in first:
        torch.testing.assert_close(first[name], second[name], rtol=0, atol=1e-6, msg=name)
    saved = torch.load(tmp_path / "exp" / "last.pt", weights_only=True)["model"]
    for name in first:
        torch.testing.assert_close(saved[name], first[name], msg=name)  # rank 0 saved what it trained
    assert not torch.equal(first["output.weight"], ranks[0]["initial"]["output.weight"]), "no training happened"
