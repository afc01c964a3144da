"""Training-loop overhead: the real loop's audio-seconds/second next to the bare model's.

    python scripts/bench_train.py --manifest train.jsonl [--config CONF.toml] [--steps 30]

Both runs use the same batches (the loop's own sampler order). "bare" times only
features + forward + CTC loss + backward + optimizer step on batches already in memory;
"loop" times ``asr.train.train`` itself (data loading, SpecAugment, clipping, schedule,
logging, progress bar) over the same number of steps, excluding dev scoring and
checkpoints. Overhead = 1 - loop / bare.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from asr.config import load_config
from asr.data import BucketBatchSampler, SpeechDataset, collate, read_manifest
from asr.features import log_mel, spec_augment
from asr.model import AcousticModel
from asr.text import Vocabulary
from asr.train import train


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--config", default="recipes/synthetic/conf/demo.toml")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()

    cfg = load_config(args.config)
    utterances = read_manifest(args.manifest)
    sampler = BucketBatchSampler([u.duration for u in utterances], cfg.train.max_batch_seconds, seed=cfg.train.seed)
    subset_ids = [i for batch in list(sampler)[: args.steps] for i in batch]
    subset = [utterances[i] for i in sorted(subset_ids)]

    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "subset.jsonl"
        manifest.write_text("".join(json.dumps(dataclasses.asdict(u)) + "\n" for u in subset))
        loop_cfg = dataclasses.replace(
            cfg,
            data=dataclasses.replace(cfg.data, train_manifests=(str(manifest),), dev_manifest=""),
            train=dataclasses.replace(cfg.train, epochs=1, stats_utterances=50, log_every=10**9),
        )
        # Bare: the same model computation on the same batches, pre-loaded.
        vocab = Vocabulary()
        model_cfg = dataclasses.replace(cfg.model, vocab_size=len(vocab))
        loader = DataLoader(
            SpeechDataset(subset, vocab),
            batch_sampler=BucketBatchSampler([u.duration for u in subset], cfg.train.max_batch_seconds, seed=cfg.train.seed),
            collate_fn=collate,
        )
        batches = list(loader)
        model = AcousticModel(model_cfg)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr)
        audio = sum(b.audio_seconds for b in batches)
        start = time.perf_counter()
        for batch in batches:
            feats, lengths = log_mel(batch.waves, batch.wave_lengths, cfg.features)
            feats = spec_augment(model.normalize(feats), lengths, cfg.spec_augment)
            lp, out_lengths = model(feats, lengths, normalized=True)
            loss = F.ctc_loss(lp.transpose(0, 1), batch.targets, out_lengths, batch.target_lengths, zero_infinity=True)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        bare = audio / (time.perf_counter() - start)

        state = train(loop_cfg, Path(tmp) / "exp", device="cpu", progress=True)
        loop = state.audio_seconds / state.train_seconds

    print(f"{len(batches)} batches, {audio:.0f} s of audio, {torch.get_num_threads()} thread(s)")
    print(f"{'run':40s} {'audio-s/s':>10s}")
    print(f"{'bare forward/backward/step':40s} {bare:10.1f}")
    print(f"{'asr.train loop':40s} {loop:10.1f}")
    print(f"loop overhead: {100 * (1 - loop / bare):.1f}%")


if __name__ == "__main__":
    main()
