"""Training speed of the two recurrent layouts on this machine (the demo model, a 40 s batch).

    python scripts/bench_layout.py [--config recipes/synthetic/conf/demo.toml] [--steps 8]

split runs one module per direction on padded tensors; fused one bidirectional module per
layer on packed sequences (cuDNN's layout on a GPU). Each is timed twice, alternating.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import time
from pathlib import Path

import torch

from asr.config import load_config
from asr.text import Vocabulary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="recipes/synthetic/conf/demo.toml")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    # The GPU check's own step, so that both scripts time the same work.
    spec = importlib.util.spec_from_file_location("gpu_check", Path(__file__).with_name("gpu_check.py"))
    check = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = check
    spec.loader.exec_module(check)
    cfg = load_config(args.config)
    model_cfg = dataclasses.replace(cfg.model, vocab_size=len(Vocabulary()))
    device = torch.device(args.device)
    batch = check._random_batch(cfg.train.max_batch_seconds, device)
    audio = float(batch[1].sum()) / 16_000
    print("| layout | audio-s/s |\n|---|---|")
    for layout in ("split", "fused", "split", "fused"):
        model, optimizer, scaler, amp_dtype = check._setup(model_cfg, layout, False, device)
        check._train_step(model, optimizer, scaler, batch, amp_dtype, cfg.features)  # warm-up
        check._sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            check._train_step(model, optimizer, scaler, batch, amp_dtype, cfg.features)
        check._sync(device)
        print(f"| {layout} | {audio * args.steps / (time.perf_counter() - start):.1f} |")


if __name__ == "__main__":
    main()
