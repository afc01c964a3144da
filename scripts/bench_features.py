"""Log-mel throughput: asr (torch.stft, batched) against librosa on the same audio.

    python scripts/bench_features.py [--manifest M.jsonl] [--seconds 600] [--batch-seconds 40] [--threads N]

Audio: the utterances of a manifest (default: the shared LibriSpeech sample), repeated
until ``--seconds`` of audio. asr computes features the way training and evaluation do: on
length-bucketed batches from ``BucketBatchSampler`` holding at most ``--batch-seconds`` of
padded audio (the demo config's 40 s); librosa one utterance at a time. Prints
audio-seconds processed per second for each, and asr's share of the machine's limit: the
floating-point operations log-mel needs per audio-second (a real FFT, the power spectrum, the
mel matrix product and the log; about 5.5 MFLOP at 100 frames a second) against what a large
float32 matrix product reaches on the same threads (the most this CPU computes per second).
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import librosa
import numpy as np
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.corpora.librispeech import read_librispeech
from asr.data import BucketBatchSampler, read_manifest
from asr.features import FeatureConfig, log_mel
from asr.inference import pad_waves

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "librispeech-sample"


def _audio(manifest: str | None, seconds: float) -> list[np.ndarray]:
    utterances = read_manifest(manifest) if manifest else read_librispeech(SAMPLE)[0]
    base = [load_audio(u.audio_filepath) for u in utterances]
    waves, total = [], 0.0
    while total < seconds:
        for wave in base:
            waves.append(wave)
            total += len(wave) / SAMPLE_RATE
    return waves


def _time(fn, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def flops_per_audio_second(cfg: FeatureConfig) -> float:
    """Floating-point operations of log-mel per second of audio: per frame, a real FFT of n_fft
    points (2.5 n log2 n), the window, the power spectrum, the mel matrix product and the log
    (counted as 20 operations)."""
    bins = cfg.n_fft // 2 + 1
    per_frame = (2.5 * cfg.n_fft * math.log2(cfg.n_fft) + cfg.win_length + 3 * bins + 2 * cfg.n_mels * bins
                 + 20 * cfg.n_mels)
    return per_frame * cfg.sample_rate / cfg.hop_length


def matmul_flops_per_second(size: int = 1024, repeats: int = 5) -> float:
    """float32 operations a second of the fastest of ``repeats`` size x size matrix products."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    return 2 * size**3 / _time(lambda: torch.mm(a, b), repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest")
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--batch-seconds", type=float, default=40.0, help="padded audio per batch")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = FeatureConfig()
    waves = _audio(args.manifest, args.seconds)
    audio_seconds = sum(len(w) for w in waves) / SAMPLE_RATE
    sampler = BucketBatchSampler([len(w) / SAMPLE_RATE for w in waves], args.batch_seconds, shuffle=False)
    batches = [pad_waves([torch.from_numpy(waves[i]) for i in batch]) for batch in sampler]

    def run_asr() -> None:
        with torch.inference_mode():
            for batch, lengths in batches:
                log_mel(batch, lengths, cfg)

    def run_librosa() -> None:
        for wave in waves:
            mel = librosa.feature.melspectrogram(
                y=wave, sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length,
                window="hann", center=True, pad_mode="constant", power=2.0, n_mels=cfg.n_mels,
            )
            np.log(np.maximum(mel, 1e-10))

    run_asr()  # warm-up: filterbank and window caches, allocator
    results = {"asr (torch.stft, bucketed batches)": _time(run_asr), "librosa.feature.melspectrogram": _time(run_librosa)}
    print(f"{len(waves)} utterances, {audio_seconds:.0f} s of audio, {args.threads} thread(s), "
          f"{len(batches)} length-bucketed batches of at most {args.batch_seconds:g} s")
    print(f"{'extractor':34s} {'seconds':>8s} {'audio-s/s':>10s}")
    for name, seconds in results.items():
        print(f"{name:34s} {seconds:8.2f} {audio_seconds / seconds:10.0f}")
    ratio = results["librosa.feature.melspectrogram"] / results["asr (torch.stft, bucketed batches)"]
    print(f"asr is {ratio:.1f}x librosa")
    need, peak = flops_per_audio_second(cfg), matmul_flops_per_second()
    limit = peak / need
    speed = audio_seconds / results["asr (torch.stft, bucketed batches)"]
    print(f"limit: {need / 1e6:.1f} MFLOP per audio-second at {peak / 1e9:.1f} GFLOP/s (float32 matrix product, "
          f"{args.threads} thread(s)) = {limit:.0f} audio-s/s; asr reaches {100 * speed / limit:.1f}% of it, "
          f"librosa {100 * audio_seconds / results['librosa.feature.melspectrogram'] / limit:.1f}%")


if __name__ == "__main__":
    main()
