"""Training throughput of the real loop (``asr.train.train``) in each precision and recurrent
layout, against the anchor: fp32 in the split layout (the demo's setting before bf16).

    python scripts/bench_train.py --manifest train.jsonl [--config CONF.toml] [--steps 60] [--repeats 2]

Every setting trains a new model on the same batches (the loop's own sampler order over the
first ``--steps`` batches of the manifest): data loading, features, forward, CTC, backward,
clipping and the optimizer step, without dev scoring or checkpoints. "default" is what the
config asks for (train.amp = "auto": bf16 on a CPU with native bf16; train.recurrent_layout =
"auto"). Each setting runs ``--repeats`` times, alternating, and the best is kept.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import tempfile
from pathlib import Path

import torch

from asr.config import load_config
from asr.data import BucketBatchSampler, read_manifest
from asr.train import train
from asr.trainer import amp_dtype

SETTINGS = {  # name: (train.amp, train.recurrent_layout)
    "fp32, split (anchor)": ("off", "split"),
    "fp32, padded": ("off", "padded"),
    "bf16, split": ("bf16", "split"),
    "bf16, padded": ("bf16", "padded"),
    "default (amp auto, layout auto)": ("auto", "auto"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--config", default="recipes/synthetic/conf/demo.toml")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=JSON",
                        help="config override, e.g. text.units=\"phones\" (repeatable)")
    args = parser.parse_args()

    overrides = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = load_config(args.config, overrides)
    utterances = read_manifest(args.manifest)
    sampler = BucketBatchSampler([u.duration for u in utterances], cfg.train.max_batch_seconds, seed=cfg.train.seed)
    subset = [utterances[i] for batch in list(sampler)[: args.steps] for i in batch]
    best: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = Path(tmp) / "subset.jsonl"
        manifest.write_text("".join(u.to_json() + "\n" for u in subset))
        for repeat in range(args.repeats):
            for name, (amp, layout) in SETTINGS.items():
                run_cfg = dataclasses.replace(
                    cfg,
                    data=dataclasses.replace(cfg.data, train_manifests=(str(manifest),), dev_manifest=""),
                    train=dataclasses.replace(cfg.train, epochs=1, stats_utterances=50, log_every=10**9, amp=amp,
                                              recurrent_layout=layout, sortagrad=False),
                )
                state = train(run_cfg, Path(tmp) / f"exp-{repeat}-{len(best)}", device="cpu", progress=False,
                              overwrite=True)
                rate = (state.audio_seconds / state.train_seconds, state.step / state.train_seconds)
                best[name] = max(best.get(name, (0.0, 0.0)), rate)
    anchor = best["fp32, split (anchor)"][0]
    native = amp_dtype("auto", torch.device("cpu"))
    print(f"{len(subset)} utterances, {args.steps} batches, {torch.get_num_threads()} thread(s); "
          f"train.amp auto here: {'bf16' if native is not None else 'fp32'}")
    print("| setting | audio-s/s | steps/s | vs anchor |\n|---|---|---|---|")
    for name, (audio_rate, step_rate) in best.items():
        print(f"| {name} | {audio_rate:.1f} | {step_rate:.2f} | {audio_rate / anchor:.2f}x |")


if __name__ == "__main__":
    main()
