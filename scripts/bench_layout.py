"""Training speed of the recurrent layouts on this machine, in fp32 and under autocast (the
demo model, a 40 s batch).

    python scripts/bench_layout.py [--config recipes/synthetic/conf/demo.toml] [--steps 8]

split runs one module per direction on padded tensors; fused one bidirectional module per
layer on packed sequences (cuDNN's layout on a GPU); padded that bidirectional module on the
padded tensor. Autocast is train.amp = "auto" on this device (bf16 on a CPU with native
bf16; a row says "fp32" where it is off). Each setting is timed twice, alternating; the
table gives the better of the two and the speed-up over split fp32, the anchor.
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
    settings = [(layout, amp) for amp in (False, True) for layout in ("split", "fused", "padded")]
    rates: dict[tuple[str, bool], float] = {}
    dtypes: dict[bool, str] = {}
    for layout, amp in settings * 2:
        model, optimizer, scaler, amp_dtype = check._setup(model_cfg, layout, amp, device)
        dtypes[amp] = "fp32" if amp_dtype is None else str(amp_dtype).removeprefix("torch.")
        check._train_step(model, optimizer, scaler, batch, amp_dtype, cfg.features)  # warm-up
        check._sync(device)
        start = time.perf_counter()
        for _ in range(args.steps):
            check._train_step(model, optimizer, scaler, batch, amp_dtype, cfg.features)
        check._sync(device)
        rate = audio * args.steps / (time.perf_counter() - start)
        rates[layout, amp] = max(rate, rates.get((layout, amp), 0.0))
    anchor = rates["split", False]
    print("| layout | precision | audio-s/s | vs split fp32 |\n|---|---|---|---|")
    for layout, amp in settings:
        print(f"| {layout} | {dtypes[amp]} | {rates[layout, amp]:.1f} | {rates[layout, amp] / anchor:.2f}x |")


if __name__ == "__main__":
    main()
