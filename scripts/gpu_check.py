"""The checks a session runs the moment it is lent a GPU: one command, a table and a JSON file.

    bash scripts/gpu_check.sh [--out DIR] [--corpus DIR]     # on the GPU, within 8 minutes
    bash scripts/gpu_check.sh --cpu-smoke                     # the same code, tiny sizes, on a CPU

Sections (each one is timed and fails on its own, so one broken part still leaves the rest):

1. amp       - the LSTM's output dtype under ``amp = "auto"``, and whether the gradients are
               finite and non-zero with loss scaling (and how many vanish without it);
2. speed     - training audio-seconds per second of the 100 h model (recipes/librispeech/conf/
               train_clean_100.toml) in fp32 and AMP, split and fused recurrent layouts;
3. memory    - peak GPU memory at two batch budgets, and the budget that fills 85% of the GPU;
4. loader    - the loader's audio-seconds per second (FLAC decoding and speed perturbation)
               with several workers, against what the GPU consumes;
5. converge  - a ~2-minute training run on synthetic speech (``--corpus``, made by
               scripts/gpu_prepare.sh) with the GPU defaults; dev CER after it, and the host
               syncs per step, with the code lines that made the most (the count includes
               each epoch's dev scoring and checkpoint saving, listed apart by their lines);
6. decode    - greedy and beam-search throughput with the model on the GPU.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from asr import trainer
from asr.beam import BeamSearchDecoder
from asr.config import load_config
from asr.units import TextConfig
from asr.corpora.librispeech import read_librispeech
from asr.data import BucketBatchSampler, SpeechDataset, Utterance, collate, speed_perturb, write_manifest
from asr.decode import GreedyDecoder
from asr.evaluate import decode_utterances, score
from asr.features import log_mel, num_frames
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.train import train

ROOT = Path(__file__).resolve().parent.parent
BIG_CONFIG = ROOT / "recipes/librispeech/conf/train_clean_100.toml"
DEMO_CONFIG = ROOT / "recipes/synthetic/conf/demo.toml"
MEMORY_FRACTION = 0.85  # of the GPU's memory a suggested batch budget may fill


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each check is: the GPU's sizes, or the CPU smoke test's tiny ones."""

    model: ModelConfig | None  # None: the 100 h config's model
    speed_budget: float  # s of padded audio per batch in the speed check
    speed_steps: int
    memory_budgets: tuple[float, float]
    loader_workers: tuple[int, ...]
    loader_seconds: float  # wall time each loader measurement may take
    loader_utterances: int | None  # None: the whole corpus (or 20 noise files)
    converge_seconds: float  # wall time the convergence run aims at, dev scoring and saving included
    converge_batch: float
    converge_model: ModelConfig | None  # None: the demo config's model
    converge_utterances: int | None
    decode_utterances: int


TINY = ModelConfig(hidden=32, layers=2, stack=4, frontend="conv", conv_channels=4, dropout=0.1)
GPU = Sizes(None, 1200.0, 4, (300.0, 1200.0), (4, 8, 15), 15.0, None, 100.0, 160.0, None, None, 400)
SMOKE = Sizes(TINY, 12.0, 1, (6.0, 12.0), (0, 1), 2.0, 20, 3.0, 12.0, TINY, 12, 8)


def suggest_batch_seconds(points: list[tuple[float, float]], capacity_bytes: float,
                          fraction: float = MEMORY_FRACTION) -> float:
    """The batch budget (s) whose peak memory is ``fraction`` of ``capacity_bytes``.

    points: (budget s, peak bytes) at two or more budgets; memory is fitted as a line in
    the budget (weights, optimizer state and workspace, plus activations per second).
    """
    budgets, peaks = (np.array(v, dtype=float) for v in zip(*points))
    slope, intercept = np.polyfit(budgets, peaks, 1)
    if slope <= 0 or np.ptp(peaks) == 0:  # polyfit leaves a rounding-error slope on flat points
        raise ValueError(f"peak memory does not grow with the batch ({points}); cannot size a budget")
    return max(0.0, (fraction * capacity_bytes - intercept) / slope)


def _big_model_config(sizes: Sizes) -> ModelConfig:
    cfg = load_config(BIG_CONFIG).model if sizes.model is None else sizes.model
    return dataclasses.replace(cfg, vocab_size=len(Vocabulary()))


def _random_batch(budget: float, device: torch.device, seed: int = 0):
    """Noise utterances of 10-16 s (2-4 s on tiny budgets) filling ``budget`` s of padded audio.

    Returns waves (B, N), wave lengths (B,), targets (B, L) and target lengths (B,), with
    about 15 characters a second (read speech), so CTC can align them.
    """
    rng = np.random.default_rng(seed)
    low, high = (10.0, 16.0) if budget >= 100 else (2.0, 4.0)
    count = max(1, int(budget // high))
    seconds = rng.uniform(low, high, count)
    samples = (seconds * 16_000).astype(int)
    waves = torch.zeros(count, samples.max())
    for i, n in enumerate(samples):
        waves[i, :n] = torch.from_numpy(rng.standard_normal(n).astype(np.float32) * 0.1)
    lengths = torch.from_numpy(samples)
    target_lengths = torch.from_numpy((seconds * 15).astype(int))
    targets = torch.from_numpy(rng.integers(1, len(Vocabulary()), (count, int(target_lengths.max()))))
    return waves.to(device), lengths, targets.to(device), target_lengths


def _train_step(model: AcousticModel, optimizer, scaler, batch, amp_dtype, features) -> torch.Tensor:
    waves, lengths, targets, target_lengths = batch
    with torch.no_grad():
        feats, _ = log_mel(waves, lengths.to(waves.device), features)
        feats = model.normalize(feats)
    frames = num_frames(lengths, features)  # on the host, as the training loop keeps them
    with _autocast(waves.device, amp_dtype):
        lp, out_lengths = model(feats, frames, normalized=True)
    loss = F.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True)
    scaler.scale(loss).backward()
    scaler.unscale_(optimizer)
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    scaler.step(optimizer)
    scaler.update()
    optimizer.zero_grad(set_to_none=True)
    return loss.detach()


def _autocast(device: torch.device, dtype: torch.dtype | None) -> torch.autocast:
    """Autocast to ``dtype``, or off when it is None (the training loop's rule)."""
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _setup(model_cfg: ModelConfig, layout: str, amp: bool, device: torch.device):
    torch.manual_seed(0)
    model = AcousticModel(model_cfg).to(device).set_layout(layout).train()
    amp_dtype = trainer.amp_dtype("auto", device) if amp else None
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, fused=device.type == "cuda")
    scaler = torch.amp.GradScaler(device.type, enabled=trainer.needs_loss_scaling(amp_dtype, device))
    return model, optimizer, scaler, amp_dtype


def check_amp(sizes: Sizes, device: torch.device) -> dict:
    """The recurrent output's dtype under amp = "auto" and the gradients with and without scaling."""
    features = load_config(BIG_CONFIG).features
    out = {"amp_dtype": str(trainer.amp_dtype("auto", device))}
    for layout in ("split", "fused"):
        model, optimizer, scaler, amp_dtype = _setup(_big_model_config(sizes), layout, True, device)
        seen: list[torch.dtype] = []
        layer = model.layers[0]
        module = layer.rnn if layout == "fused" else layer.forward_rnn
        module.register_forward_hook(lambda m, i, o, seen=seen: seen.append((o[0].data if hasattr(o[0], "data") else o[0]).dtype))
        batch = _random_batch(sizes.memory_budgets[0], device)
        waves, lengths, targets, target_lengths = batch
        frames = num_frames(lengths, features)
        with torch.no_grad():
            feats = model.normalize(log_mel(waves, lengths.to(device), features)[0])
        grads = {}
        for scaled in (True, False):
            optimizer.zero_grad(set_to_none=True)
            with _autocast(device, amp_dtype):
                lp, out_lengths = model(feats, frames, normalized=True)
            loss = F.ctc_loss(lp.transpose(0, 1), targets, out_lengths, target_lengths, zero_infinity=True)
            (scaler.scale(loss) if scaled else loss).backward()
            if scaled:
                scaler.unscale_(optimizer)
            params = [p for p in model.parameters() if p.grad is not None]
            grads[scaled] = {
                "finite": all(bool(torch.isfinite(p.grad).all()) for p in params),
                "zero_share": sum(int((p.grad == 0).sum()) for p in params) / sum(p.numel() for p in params),
                "norm": float(torch.linalg.vector_norm(torch.stack([p.grad.float().norm() for p in params]))),
            }
            if scaled and scaler.is_enabled():
                scaler.update()
        out[layout] = {"lstm_output_dtype": str(seen[0]), "scaled": grads[True], "unscaled": grads[False]}
        out[layout]["ok"] = grads[True]["finite"] and grads[True]["zero_share"] < 0.5 and grads[True]["norm"] > 0
    return out


def check_speed(sizes: Sizes, device: torch.device) -> dict:
    """Training audio-s/s of the big model: fp32 and AMP, split and fused layouts."""
    features = load_config(BIG_CONFIG).features
    batch = _random_batch(sizes.speed_budget, device)
    audio = float(batch[1].sum()) / 16_000
    out = {"budget_s": sizes.speed_budget, "batch_audio_s": round(audio, 1)}
    for amp in (False, True):
        for layout in ("split", "fused"):
            model, optimizer, scaler, amp_dtype = _setup(_big_model_config(sizes), layout, amp, device)
            _train_step(model, optimizer, scaler, batch, amp_dtype, features)  # warm-up: cuDNN plans, allocator
            _sync(device)
            start = time.perf_counter()
            for _ in range(sizes.speed_steps):
                _train_step(model, optimizer, scaler, batch, amp_dtype, features)
            _sync(device)
            elapsed = time.perf_counter() - start
            out[f"{'amp' if amp else 'fp32'}_{layout}"] = round(audio * sizes.speed_steps / elapsed, 1)
            del model, optimizer
    return out


def check_memory(sizes: Sizes, device: torch.device) -> dict:
    """Peak memory of an AMP, fused training step at two budgets; the budget for 85% of the GPU."""
    if device.type != "cuda":
        return {"skipped": "peak memory is measured on CUDA only"}
    features = load_config(BIG_CONFIG).features
    points = []
    for budget in sizes.memory_budgets:
        model, optimizer, scaler, amp_dtype = _setup(_big_model_config(sizes), "fused", True, device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
        for _ in range(2):  # the second step holds the optimizer state as well
            _train_step(model, optimizer, scaler, _random_batch(budget, device), amp_dtype, features)
        _sync(device)
        points.append((budget, torch.cuda.max_memory_allocated(device)))
        del model, optimizer
    capacity = torch.cuda.get_device_properties(device).total_memory
    return {
        "peak_gib": {f"{b:g}s": round(p / 2**30, 2) for b, p in points},
        "capacity_gib": round(capacity / 2**30, 1),
        "suggested_max_batch_seconds": round(suggest_batch_seconds(points, capacity), -1),
    }


def _corpus(corpus: Path, split: str, tmp: Path, count: int | None) -> list[Utterance]:
    """At most ``count`` (None: all) of the split's utterances from a gpu_prepare.sh corpus,
    or ``count`` noise FLAC files (20 without a count) when there is none."""
    if (corpus / split).is_dir():
        return read_librispeech(corpus / split)[0][:count]
    count = 20 if count is None else count
    rng = np.random.default_rng(0)
    folder = tmp / "noise" / split
    folder.mkdir(parents=True, exist_ok=True)
    utterances = []
    for i in range(count):
        path = folder / f"1-1-{i:04d}.flac"
        seconds = float(rng.uniform(2, 15))
        soundfile.write(path, (rng.standard_normal(int(seconds * 16_000)) * 0.1).astype(np.float32), 16_000)
        utterances.append(Utterance(f"1-1-{i:04d}", str(path), seconds, "NOISE", "1"))
    return utterances


def check_loader(sizes: Sizes, device: torch.device, corpus: Path, consumed: float | None) -> dict:
    """Audio-s/s the data loader delivers (FLAC decoding, speed perturbation 0.9/1.0/1.1) per worker count."""
    with tempfile.TemporaryDirectory() as tmp:
        utterances = speed_perturb(_corpus(corpus, "train", Path(tmp), sizes.loader_utterances), (0.9, 1.0, 1.1))
        vocab = Vocabulary()
        out = {"utterances": len(utterances), "gpu_consumes_audio_s_per_s": consumed}
        for workers in sizes.loader_workers:
            loader = DataLoader(SpeechDataset(utterances, vocab), collate_fn=collate, num_workers=workers,
                                batch_sampler=BucketBatchSampler([u.duration for u in utterances], 200.0, seed=0))
            audio, start = 0.0, time.perf_counter()
            for batch in loader:
                audio += batch.audio_seconds
                if time.perf_counter() - start > sizes.loader_seconds:
                    break
            out[f"workers_{workers}"] = round(audio / (time.perf_counter() - start), 1)
    return out


def check_convergence(sizes: Sizes, device: torch.device, corpus: Path, work: Path) -> dict:
    """Train the demo model on the synthetic corpus for about ``converge_seconds``; dev CER after."""
    with tempfile.TemporaryDirectory() as tmp:
        train_utts = _corpus(corpus, "train", Path(tmp), sizes.converge_utterances)
        dev_utts = _corpus(corpus, "dev", Path(tmp), sizes.converge_utterances and max(2, sizes.converge_utterances // 6))
        write_manifest(train_utts, work / "train.jsonl")
        write_manifest(dev_utts, work / "dev.jsonl")
        # In characters: the GPU check times and converges a model; the demo's phones need a
        # lexicon its generator corpus has no use for.
        cfg = dataclasses.replace(load_config(DEMO_CONFIG), text=TextConfig())
        if sizes.converge_model is not None:
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(sizes.converge_model, n_mels=cfg.features.n_mels))
        cfg = dataclasses.replace(
            cfg,
            data=dataclasses.replace(cfg.data, train_manifests=(str(work / "train.jsonl"),),
                                     dev_manifest=str(work / "dev.jsonl"), dev_max_utterances=0),
            train=dataclasses.replace(cfg.train, epochs=1, max_batch_seconds=sizes.converge_batch, num_workers=4 if device.type == "cuda" else 0,
                                      log_every=10, stats_utterances=min(200, len(train_utts))),
        )
        # One timed epoch (dev scoring and saving included) sizes the run: as many as fit the budget.
        start = time.perf_counter()
        train(cfg, work / "probe", overwrite=True, device=str(device), progress=False)
        epochs = max(1, min(200, math.floor(sizes.converge_seconds / (time.perf_counter() - start))))
        cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, epochs=epochs))
        syncs: collections.Counter[str] = collections.Counter()
        if device.type == "cuda":
            torch.cuda.set_sync_debug_mode("warn")
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                state = train(cfg, work / "run", overwrite=True, device=str(device), progress=False)
                wall = time.perf_counter() - start
            # A warning is attributed to the Python line that called the synchronising op.
            syncs.update(f"{Path(w.filename).name}:{w.lineno}" for w in caught if "synchroniz" in str(w.message).lower())
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode("default")
        rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
        dev = [r for r in rows if r["kind"] == "dev"][-1]
        return {
            "train_utterances": len(train_utts), "epochs": epochs, "steps": state.step,
            "train_seconds": round(state.train_seconds, 1), "wall_seconds": round(wall, 1),
            "audio_s_per_s": round(state.audio_seconds / max(state.train_seconds, 1e-9), 1),
            "dev_cer": round(100 * dev["cer"], 2), "dev_wer": round(100 * dev["wer"], 2),
            "host_syncs_per_step": round(sum(syncs.values()) / max(state.step, 1), 2),
            "host_syncs_by_line": dict(syncs.most_common(10)),
        }


def check_decode(sizes: Sizes, device: torch.device, corpus: Path, work: Path) -> dict:
    """Greedy and beam (16, no LM) decoding speed with the converge check's model on ``device``."""
    from asr.checkpoint import load_model

    checkpoint = work / "run" / "best.pt"
    if not checkpoint.exists():
        return {"skipped": "the converge check left no model"}
    loaded = load_model(checkpoint, device)
    with tempfile.TemporaryDirectory() as tmp:
        utterances = (_corpus(corpus, "train", Path(tmp), sizes.decode_utterances))[: sizes.decode_utterances]
        audio = sum(u.duration for u in utterances)
        out = {"utterances": len(utterances), "layout": loaded.model.layout}
        for name, decoder in (("greedy", GreedyDecoder(loaded.vocab)), ("beam16", BeamSearchDecoder(loaded.vocab, beam_width=16))):
            start = time.perf_counter()
            decoded = decode_utterances(loaded, utterances, decoder,
                                        num_workers=4 if device.type == "cuda" else 0)
            elapsed = time.perf_counter() - start
            out[f"{name}_audio_s_per_s"] = round(audio / elapsed, 1)
            out[f"{name}_cer_on_train"] = round(100 * score(decoded.decoded(utterances), decoded.texts).cer, 2)
    return out


def _run(name: str, check: Callable[[], dict], results: dict) -> None:
    start = time.perf_counter()
    try:
        results[name] = check()
    except Exception as err:  # one broken check must not cost the others their GPU time
        results[name] = {"error": " ".join(f"{type(err).__name__}: {err}".split())[:300],
                         "where": traceback.format_exc(limit=-1).strip().splitlines()[-2].strip()}
    results[name]["seconds"] = round(time.perf_counter() - start, 1)
    print(f"[{name}] {json.dumps(results[name])}", flush=True)


def table(results: dict) -> str:
    """The results as a Markdown table: one row per measured value."""
    lines = ["| check | measure | value |", "|---|---|---|"]
    for section, values in results.items():
        if not isinstance(values, dict):
            lines.append(f"| {section} | | {values} |")
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    lines.append(f"| {section} | {key}.{sub} | {json.dumps(v) if isinstance(v, dict) else v} |")
            else:
                lines.append(f"| {section} | {key} | {value} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny sizes on the CPU: tests the script, measures nothing")
    parser.add_argument("--out", default=os.environ.get("OUT") or "exp/gpu_check", help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--corpus", default=str(ROOT / "data/gpu_check/corpus"),
                        help="synthetic corpus from scripts/gpu_prepare.sh (noise stands in without one)")
    args = parser.parse_args()
    if args.cpu_smoke:
        device, sizes = torch.device("cpu"), SMOKE
    elif torch.cuda.is_available():
        device, sizes = torch.device("cuda"), GPU
    else:
        print("gpu_check: no CUDA device here; run it on a GPU, or pass --cpu-smoke to test the script")
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    corpus = Path(args.corpus)
    results: dict = {"machine": {
        "date": time.strftime("%Y-%m-%d"), "torch": torch.__version__, "device": torch.cuda.get_device_name(device)
        if device.type == "cuda" else "cpu (smoke)", "cudnn": torch.backends.cudnn.version() if device.type == "cuda" else None,
        "corpus": str(corpus) if (corpus / "train").is_dir() else "none: noise utterances",
    }}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        _run("amp", lambda: check_amp(sizes, device), results)
        _run("speed", lambda: check_speed(sizes, device), results)
        _run("memory", lambda: check_memory(sizes, device), results)
        consumed = results["speed"].get("amp_fused")
        _run("loader", lambda: check_loader(sizes, device, corpus, consumed), results)
        _run("converge", lambda: check_convergence(sizes, device, corpus, Path(work)), results)
        _run("decode", lambda: check_decode(sizes, device, corpus, Path(work)), results)
    results["machine"]["total_seconds"] = round(time.perf_counter() - start, 1)
    (out / "gpu_check.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "gpu_check.md").write_text(table(results) + "\n")
    print(table(results))
    failed = [name for name, values in results.items() if isinstance(values, dict) and "error" in values]
    print(f"gpu_check: {len(results) - 1 - len(failed)} checks ran, {len(failed)} failed "
          f"({', '.join(failed) or 'none'}); {out / 'gpu_check.json'}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
