#!/usr/bin/env python3
"""Live captions measured: latency, partial updates, WER and CPU of `asr listen`'s Listener.

    OMP_NUM_THREADS=1 python scripts/bench_listen.py --model exp/synthetic/best.pt --minutes 3 --out listen.json

The stream: the general-English test set's utterances (``--manifest``), in order, joined
``--gap`` seconds apart under one pink noise 25 dB below the speech
(:func:`asr.corpora.synthetic.recordings.continuous_recording`), until it is ``--minutes`` long.

The harness knows where each utterance's sound ends (its last frame within 40 dB of its
loudest), and times every other word by ``asr transcribe``'s alignment of the same stream
(the anchor, also for WER). It reports:

- latency: from the end of a spoken word to the update that makes it final, for every final
  word matched to the anchor's words (same text, in order), and, against the exact sound end,
  for the last word of each utterance;
- partial updates: the longest and 95th-percentile wait between two updates while an
  utterance is being spoken (from its first sound to its last; pauses inside count);
- WER of the finals, and of ``asr transcribe``, against the references;
- CPU: process CPU seconds per second of audio (below 1: less than one core at real time).

The first row feeds the stream at real-time pace (sleeping between 0.1 s blocks) and times
updates by the wall clock. The trade-off rows replay it with a simulated clock, to try many
settings in little time: a block arrives when its audio ends; the listener starts on it
when it is free and takes the CPU time it measures, so latency counts the waiting behind
slow updates. One thread (as the real-time row), on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.data import read_manifest
from asr.decode import GreedyDecoder
from asr.inference import load_recognizer
from asr.listen import Listener, ListenOptions
from asr.metrics import word_errors
from asr.corpora.synthetic.recordings import continuous_recording, sound_span
from asr.transcribe import transcribe_files

BLOCK_SECONDS = 0.1
GOALS = {"p50": 1.0, "p95": 2.0, "update_gap": 0.5, "wer_points": 1.0, "cpu": 1.0}
# (name, update s, right context s, pause s, longest segment s)
SETTINGS = [
    ("default", 0.25, 0.6, 0.25, 12.0),
    ("right context 0.15", 0.25, 0.15, 0.25, 12.0),
    ("right context 0.3", 0.25, 0.3, 0.25, 12.0),
    ("right context 0.45", 0.25, 0.45, 0.25, 12.0),
    ("right context 0.8", 0.25, 0.8, 0.25, 12.0),
    ("right context 1.2", 0.25, 1.2, 0.25, 12.0),
    ("right context 2.0", 0.25, 2.0, 0.25, 12.0),
    ("pauses only (no right-context finals)", 0.25, 5.9, 0.25, 12.0),
    ("pause 0.4", 0.25, 0.6, 0.4, 12.0),
    ("pause 0.7", 0.25, 0.6, 0.7, 12.0),
    ("update 0.1", 0.1, 0.6, 0.25, 12.0),
    ("update 0.5", 0.5, 0.6, 0.25, 12.0),
    ("longest segment 4 s", 0.25, 0.6, 0.25, 4.0),
    ("longest segment 30 s", 0.25, 0.6, 0.25, 30.0),
]


@dataclass
class Row:
    setting: str
    clock: str
    finals: int
    latency_p50: float
    latency_p95: float
    latency_max: float
    end_latency_p50: float  # last word of each utterance, against its true sound end
    end_latency_p95: float
    update_gap_p95: float
    update_gap_max: float
    wer: float
    cpu_per_audio_second: float


def match(finals: list[tuple[str, float]], anchor: list[tuple[str, float]]) -> list[tuple[int, int]]:
    """Index pairs of equal words in the two sequences, along a least-edits alignment."""
    n, m = len(finals), len(anchor)
    cost = np.zeros((n + 1, m + 1), np.int32)
    cost[:, 0], cost[0, :] = np.arange(n + 1), np.arange(m + 1)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            same = finals[i - 1][0] == anchor[j - 1][0]
            cost[i, j] = min(cost[i - 1, j] + 1, cost[i, j - 1] + 1, cost[i - 1, j - 1] + (0 if same else 1))
    pairs, i, j = [], n, m
    while i and j:
        same = finals[i - 1][0] == anchor[j - 1][0]
        if cost[i, j] == cost[i - 1, j - 1] + (0 if same else 1):
            if same:
                pairs.append((i - 1, j - 1))
            i, j = i - 1, j - 1
        elif cost[i, j] == cost[i - 1, j] + 1:
            i -= 1
        else:
            j -= 1
    return pairs[::-1]


def run(listener: Listener, audio: np.ndarray, realtime: bool) -> tuple[list[tuple[float, object]], float]:
    """Feed ``audio`` in blocks; (emission time s, update) for every update, and CPU seconds."""
    block = round(BLOCK_SECONDS * SAMPLE_RATE)
    emitted, free_at = [], 0.0
    cpu_start, wall_start = time.process_time(), time.monotonic()
    for at in range(0, len(audio) + block, block):
        chunk = audio[at : at + block]
        arrival = min(at + block, len(audio)) / SAMPLE_RATE
        if realtime:
            time.sleep(max(0.0, wall_start + arrival - time.monotonic()))
        started = time.process_time()
        updates = listener.feed(chunk) if len(chunk) else listener.finish()
        if realtime:
            done = time.monotonic() - wall_start
        else:
            free_at = max(arrival, free_at) + time.process_time() - started
            done = free_at
        emitted += [(done, u) for u in updates]
    return emitted, time.process_time() - cpu_start


def measure(name: str, clock: str, emitted, cpu: float, spans, sounds, anchor, reference: str, seconds: float) -> Row:
    finals = [(w.text, when, w.end) for when, u in emitted if u.final for w in u.words]
    pairs = match([(t, e) for t, _, e in finals], [(w.text, w.end) for w in anchor])
    latency = np.array([finals[i][1] - anchor[j].end for i, j in pairs])
    # The last final word inside each utterance, against the utterance's true sound end.
    end_latency = []
    for (start, end), (_, true_end) in zip(spans, sounds):
        inside = [when for _, when, e in finals if start <= e <= end + 0.3]
        if inside:
            end_latency.append(max(inside) - true_end)
    # The waits between updates while an utterance's sound goes on (from its start to its end).
    gaps = []
    times = [when for when, _ in emitted]
    for start, end in sounds:
        during = [t for t in times if start <= t <= end]
        points = [start] + during + ([end] if during else [])
        gaps += list(np.diff(points)) if len(points) > 1 else [end - start]
    wer = word_errors(reference, " ".join(t for t, _, _ in finals)).rate * 100
    q = lambda values, p: round(float(np.percentile(values, p)), 3) if len(values) else float("nan")  # noqa: E731
    return Row(name, clock, len(finals), q(latency, 50), q(latency, 95), q(latency, 100), q(end_latency, 50),
               q(end_latency, 95), q(gaps, 95), q(gaps, 100), round(wer, 2), round(cpu / seconds, 3))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="exp/synthetic/best.pt")
    parser.add_argument("--manifest", default="data/synthetic/manifests/test.jsonl")
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--gap", type=float, default=0.8, help="seconds between utterances")
    parser.add_argument("--snr", type=float, default=25.0, help="dB of speech over the stream's pink noise")
    parser.add_argument("--settings", default="all", help="comma-separated setting names, or all, or none")
    parser.add_argument("--no-realtime", action="store_true", help="skip the real-time run")
    parser.add_argument("--out")
    args = parser.parse_args()
    torch.set_num_threads(1)

    recognizer = load_recognizer(args.model, "cpu")
    decoder = GreedyDecoder(recognizer.vocab)
    utterances = read_manifest(args.manifest)
    recording = continuous_recording([(u.audio_filepath, u.text) for u in utterances], args.minutes * 60, args.gap,
                                     snr_db=args.snr)
    audio, spans = recording.audio, recording.spans
    seconds = len(audio) / SAMPLE_RATE
    # Where each utterance's sound starts and ends, measured on the clean file.
    sounds = [tuple(start + t / SAMPLE_RATE for t in sound_span(load_audio(u.audio_filepath)))
              for u, (start, _) in zip(utterances, spans)]
    reference = " ".join(recording.texts)
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "stream.flac"
        sf.write(path, audio, SAMPLE_RATE)
        started = time.process_time()
        (transcript,) = transcribe_files(recognizer, [path], decoder)
        offline_cpu = time.process_time() - started
    anchor = list(transcript.words)
    offline_wer = word_errors(reference, transcript.text).rate * 100
    print(f"stream: {len(spans)} utterances, {seconds / 60:.1f} min; asr transcribe WER {offline_wer:.2f}% "
          f"({offline_cpu / seconds:.4f} CPU s per audio s)", flush=True)

    rows: list[Row] = []
    if not args.no_realtime:
        default = SETTINGS[0]
        listener = Listener(recognizer, decoder, ListenOptions(*default[1:]))
        emitted, cpu = run(listener, audio, realtime=True)
        rows.append(measure(default[0], "real time", emitted, cpu, spans, sounds, anchor, reference, seconds))
        print(rows[-1], flush=True)
    chosen = [s for s in SETTINGS if args.settings == "all" or s[0] in args.settings.split(",")]
    for name, *values in chosen if args.settings != "none" else []:
        emitted, cpu = run(Listener(recognizer, decoder, ListenOptions(*values)), audio, realtime=False)
        rows.append(measure(name, "simulated", emitted, cpu, spans, sounds, anchor, reference, seconds))
        print(rows[-1], flush=True)

    print(f"\n| setting | clock | latency p50 / p95 / max s | last word of utterance p50 / p95 s | "
          f"update gap p95 / max s | WER finals % (transcribe {offline_wer:.2f}) | CPU s per audio s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.setting} | {r.clock} | {r.latency_p50:.2f} / {r.latency_p95:.2f} / {r.latency_max:.2f} | "
              f"{r.end_latency_p50:.2f} / {r.end_latency_p95:.2f} | {r.update_gap_p95:.2f} / {r.update_gap_max:.2f} | "
              f"{r.wer:.2f} ({r.wer - offline_wer:+.2f}) | {r.cpu_per_audio_second:.3f} |")
    print(f"goals: latency p50 <= {GOALS['p50']} s, p95 <= {GOALS['p95']} s; an update at least every "
          f"{GOALS['update_gap']} s in speech; WER within {GOALS['wer_points']} point of transcribe; CPU < 1 core")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.out:
        Path(args.out).write_text(json.dumps({"audio_seconds": round(seconds, 1), "utterances": len(spans),
                                              "transcribe_wer": round(offline_wer, 2),
                                              "rows": [asdict(r) for r in rows]}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
