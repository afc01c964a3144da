#!/usr/bin/env python3
"""Load test of `asr serve` on loopback, against `asr transcribe` over the same files.

    python scripts/bench_serve.py [--model exp/synthetic/best.pt] [--clients 1,4,16,64] [--out bench_serve.json]

The anchor runs first, with no server up, so the two never share the cores: the manifest's
files go through one ``asr transcribe --decoder greedy`` process (throughput with start-up,
and less the wall time of the same command on the shortest file), and through
``transcribe_files`` in a fresh process that loads the model, warms up, and times only the
transcription loop (the steady state: the headline anchor, and the harder one to match).
Each runs ``--repeats`` times (default 3) and its median is used.

Then one ``asr serve`` process is started, warmed with a few requests, and loaded by
``--clients`` concurrent clients in turn (asyncio and httpx in this process, so the client
side costs little CPU), each level for ``--seconds``: every client loops over the files
from its own offset, sending the next as soon as the last is answered (a 503 waits for its
Retry-After). Requests started before the deadline are awaited; a level's wall time ends
with the last answer, and only 200s count toward its throughput (audio seconds per second).
The server's resident memory (VmRSS) is sampled every 0.5 s, and the CPU time of the server,
of the clients and of everything else on the machine (other work competing for the cores) is
given in cores busy. A last run of ``--soak-seconds`` at 16 clients, after ``--soak-warmup``
seconds of the same load (glibc's heaps grow for the first minutes of load, as batches of
changing shape leave holes, then hold: 293 -> 761 MB over 2 minutes, then 761 MB for 2 more),
compares the mean RSS of its first and last 10% (flat: growth under 5%).

Goals: at 16 clients, throughput at least 80% of the CLI's (reported against the command as
run, start-up included, and against its in-process steady state); no errors at or
below capacity (clients <= --max-queue); RSS flat over the soak. ``--threads`` sets
OMP_NUM_THREADS for the server and the CLI alike; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from asr.data import read_manifest

RSS_INTERVAL = 0.5  # seconds between samples of the server's VmRSS
SOAK_CLIENTS = 16
GOAL_CLIENTS = 16
GOAL_FRACTION = 0.80  # of the CLI's steady-state throughput, at GOAL_CLIENTS
FLAT_GROWTH = 0.05  # RSS growth over the soak below this fraction counts as flat
SOAK_WINDOW = 0.10  # the first and last tenth of the soak are compared
WARM_REQUESTS = 8
START_TIMEOUT = 120.0  # seconds for the server to load its model and listen
REQUEST_TIMEOUT = 300.0

# Runs in a fresh process so that it has the CLI's thread count and none of this process's state.
STEADY_STATE = """
import json, sys, time
from asr.decode import GreedyDecoder
from asr.inference import load_recognizer
from asr.transcribe import transcribe_files

model, paths = sys.argv[1], sys.argv[2:]
recognizer = load_recognizer(model, "cpu")
decoder = GreedyDecoder(recognizer.vocab)
for _ in transcribe_files(recognizer, paths[:8], decoder):  # warm-up: first forward passes, allocator
    pass
start = time.perf_counter()
failed = sum(t.error is not None for t in transcribe_files(recognizer, paths, decoder))
print(json.dumps({"seconds": time.perf_counter() - start, "failed": failed}))
"""


@dataclass
class Clip:
    path: Path
    seconds: float
    data: bytes


@dataclass
class Level:
    clients: int
    wall_seconds: float
    requests: int
    ok: int
    errors: dict  # status code (or "connection", "timeout") -> count
    audio_seconds: float  # of the 200s
    throughput: float  # audio seconds per wall second, 200s only
    p50: float
    p95: float
    p99: float
    rss_mb: dict  # start, max, end
    server_cpu: float  # server CPU seconds per wall second (cores busy)
    client_cpu: float  # this process's CPU seconds per wall second
    other_cpu: float  # everything else on the machine, per wall second: other work competing for the cores
    rss_samples: list = field(default_factory=list, repr=False)  # (seconds from start, MB)


def _fail(message: str) -> None:
    print(f"bench_serve: error: {message}", file=sys.stderr)
    sys.exit(2)


def read_clips(path: Path) -> list[Clip]:
    """The manifest's files (asr's own reader: relative paths, checked rows), each read once."""
    clips = []
    for utterance in read_manifest(path):
        audio = Path(utterance.audio_filepath)
        if not audio.is_file():
            _fail(f"{audio}: listed in {path} but missing")
        clips.append(Clip(audio, utterance.duration, audio.read_bytes()))
    return clips


def busy_cpu_seconds() -> float:
    """CPU seconds the whole machine has spent busy (user, nice, system, irq, softirq, steal)."""
    ticks = [int(t) for t in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(ticks[:3]) + sum(ticks[5:8])) / os.sysconf("SC_CLK_TCK")


def thread_env(threads: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": str(threads)}


# --- the anchor -----------------------------------------------------------------------------


def cli_wall(model: Path, paths: list[Path], threads: int) -> float:
    command = [sys.executable, "-m", "asr", "transcribe", "--model", str(model), "--device", "cpu",
               "--decoder", "greedy", *map(str, paths)]
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                          env=thread_env(threads))
    wall = time.perf_counter() - start
    if done.returncode != 0:
        _fail(f"asr transcribe exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    return wall


def steady_state_seconds(model: Path, paths: list[Path], threads: int) -> float:
    done = subprocess.run([sys.executable, "-c", STEADY_STATE, str(model), *map(str, paths)],
                          capture_output=True, text=True, env=thread_env(threads))
    if done.returncode != 0:
        _fail(f"in-process transcription exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["failed"]:
        _fail(f"in-process transcription failed on {result['failed']} files")
    return result["seconds"]


def run_anchor(model: Path, clips: list[Clip], threads: int, repeats: int) -> dict:
    """Each measurement ``repeats`` times, alternating, and its median: on a small shared VM
    one run of a few seconds can take twice as long as the next."""
    audio = sum(c.seconds for c in clips)
    paths = [c.path for c in clips]
    shortest = min(clips, key=lambda c: c.seconds).path
    cli_wall(model, paths[:2], threads)  # untimed: the OS file cache
    runs: dict[str, list[float]] = {"cli": [], "startup": [], "steady": []}
    for _ in range(repeats):
        runs["cli"].append(cli_wall(model, paths, threads))
        runs["startup"].append(cli_wall(model, [shortest], threads))
        runs["steady"].append(steady_state_seconds(model, paths, threads))
    whole, startup, steady = (statistics.median(runs[k]) for k in ("cli", "startup", "steady"))
    return {"audio_seconds": round(audio, 2), "cli_wall_seconds": round(whole, 3),
            "cli_startup_seconds": round(startup, 3), "steady_seconds": round(steady, 3),
            "cli_throughput": audio / whole, "cli_less_startup_throughput": audio / max(whole - startup, 1e-9),
            "steady_throughput": audio / steady, "runs": {k: [round(v, 3) for v in vs] for k, vs in runs.items()}}


# --- the server -----------------------------------------------------------------------------


class Server:
    """One ``asr serve`` process on a free loopback port; its stderr is drained in a thread."""

    def __init__(self, model: Path, max_queue: int, threads: int) -> None:
        command = [sys.executable, "-m", "asr", "serve", "--model", str(model), "--device", "cpu", "--host",
                   "127.0.0.1", "--port", "0", "--log-level", "warning", "--max-queue", str(max_queue)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                        env=thread_env(threads))
        self.log: list[str] = []
        ready = threading.Event()
        self.url = ""

        def drain() -> None:
            for line in self.process.stderr:  # type: ignore[union-attr]
                if not self.url and " at http://" in line:
                    self.url = line.split(" at ")[1].split("/ ")[0]
                    ready.set()
                else:
                    self.log.append(line.rstrip())
            ready.set()

        threading.Thread(target=drain, daemon=True).start()
        if not ready.wait(START_TIMEOUT) or not self.url:
            self.process.kill()
            _fail(f"asr serve did not start: {' | '.join(self.log[-5:]) or 'no output'}")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return float("nan")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.process.wait()


# --- the clients ----------------------------------------------------------------------------


async def transcribe(client, url: str, clip: Clip) -> tuple[float, str, float]:
    """(latency s, status as text, Retry-After s) of one request."""
    import httpx

    start = time.perf_counter()
    try:
        response = await client.post(f"{url}/v1/audio/transcriptions",
                                     files={"file": (clip.path.name, clip.data, "audio/flac")},
                                     data={"model": "asr", "response_format": "json"})
        status, retry = str(response.status_code), float(response.headers.get("retry-after", 0) or 0)
        if response.status_code == 200 and "text" not in response.json():
            status = "200 without text"
    except httpx.TimeoutException:
        status, retry = "timeout", 0.0
    except httpx.TransportError:
        status, retry = "connection", 0.0
    return time.perf_counter() - start, status, retry


async def run_level(server: Server, clips: list[Clip], clients: int, seconds: float) -> Level:
    import httpx

    results: list[tuple[float, str, float]] = []  # (latency, status, audio seconds)
    rss: list[tuple[float, float]] = []
    start = time.perf_counter()
    deadline = start + seconds

    async def client_loop(http, index: int) -> None:
        position = index * len(clips) // clients  # each client starts at its own offset
        while time.perf_counter() < deadline:
            clip = clips[position % len(clips)]
            position += 1
            latency, status, retry = await transcribe(http, server.url, clip)
            results.append((latency, status, clip.seconds))
            if retry:
                await asyncio.sleep(min(retry, max(0.0, deadline - time.perf_counter())))

    async def sample_rss() -> None:
        while True:
            rss.append((time.perf_counter() - start, server.rss_mb()))
            await asyncio.sleep(RSS_INTERVAL)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT) as http:
        sampler = asyncio.create_task(sample_rss())
        server_cpu, client_cpu, machine_cpu = server.cpu_seconds(), time.process_time(), busy_cpu_seconds()
        await asyncio.gather(*(client_loop(http, i) for i in range(clients)))
        wall = time.perf_counter() - start
        server_cpu, client_cpu = server.cpu_seconds() - server_cpu, time.process_time() - client_cpu
        other_cpu = busy_cpu_seconds() - machine_cpu - server_cpu - client_cpu
        sampler.cancel()
    rss.append((wall, server.rss_mb()))
    ok = [(latency, audio) for latency, status, audio in results if status == "200"]
    latencies = np.array([latency for latency, _ in ok]) if ok else np.array([float("nan")])
    p50, p95, p99 = (float(np.percentile(latencies, q)) for q in (50, 95, 99))
    audio = sum(audio for _, audio in ok)
    errors = Counter(status for _, status, _ in results if status != "200")
    return Level(clients, round(wall, 3), len(results), len(ok), dict(sorted(errors.items())), round(audio, 2),
                 audio / wall, p50, p95, p99,
                 {"start": rss[0][1], "max": max(mb for _, mb in rss), "end": rss[-1][1]},
                 server_cpu / wall, client_cpu / wall, max(0.0, other_cpu / wall), rss)


async def warm_up(server: Server, clips: list[Clip]) -> None:
    import httpx

    async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
        for clip in clips[:2]:
            await transcribe(http, server.url, clip)
        answers = await asyncio.gather(*(transcribe(http, server.url, c) for c in clips[2:WARM_REQUESTS]))
        failed = [status for _, status, _ in answers if status != "200"]
        if failed:
            _fail(f"warm-up requests failed: {', '.join(failed)}; server log: {' | '.join(server.log[-5:])}")


def soak_rss(level: Level) -> dict:
    """Mean RSS (MB) of the samples in the first and last SOAK_WINDOW of the soak."""
    window = SOAK_WINDOW * level.wall_seconds
    first = [mb for t, mb in level.rss_samples if t <= window]
    last = [mb for t, mb in level.rss_samples if t >= level.wall_seconds - window]
    head, tail = float(np.mean(first)), float(np.mean(last))
    growth = (tail - head) / head
    return {"first_mb": round(head, 1), "last_mb": round(tail, 1), "growth_mb": round(tail - head, 1),
            "growth": round(growth, 4), "flat": growth < FLAT_GROWTH}


# --- the report -----------------------------------------------------------------------------


def print_report(anchor: dict, levels: list[Level], soak: Level | None, rss: dict | None, max_queue: int,
                 threads: int, loadavg: str) -> dict:
    steady, cli = anchor["steady_throughput"], anchor["cli_throughput"]
    print(f"\nanchor: {anchor['audio_seconds'] / 60:.1f} min of audio, OMP_NUM_THREADS={threads}, no server running, "
          f"median of {len(anchor['runs']['cli'])} runs each")
    print("| anchor | wall s | audio s/s |")
    print("|---|---|---|")
    print(f"| asr transcribe, one process, with start-up | {anchor['cli_wall_seconds']:.2f} | {cli:.1f} |")
    print(f"| same, less start-up ({anchor['cli_startup_seconds']:.2f} s: the command on the shortest file) | "
          f"{anchor['cli_wall_seconds'] - anchor['cli_startup_seconds']:.2f} | "
          f"{anchor['cli_less_startup_throughput']:.1f} |")
    print(f"| transcribe_files in-process, loop only (steady state; headline) | {anchor['steady_seconds']:.2f} | "
          f"{steady:.1f} |")
    print(f"\nasr serve, --max-queue {max_queue}, load average before: {loadavg}")
    print("| clients | wall s | requests | errors | audio s/s | × CLI steady | × CLI w/ start-up | p50 s | p95 s | "
          "p99 s | RSS MB start/max/end | server cores | client cores | other cores |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = [(str(level.clients), level) for level in levels]
    if soak is not None:
        rows.append((f"{soak.clients} (soak)", soak))
    for name, level in rows:
        errors = ", ".join(f"{k}: {v}" for k, v in level.errors.items()) or "0"
        print(f"| {name} | {level.wall_seconds:.1f} | {level.requests} | {errors} | {level.throughput:.1f} | "
              f"{level.throughput / steady:.0%} | {level.throughput / cli:.0%} | {level.p50:.3f} | {level.p95:.3f} | "
              f"{level.p99:.3f} | {level.rss_mb['start']:.0f}/{level.rss_mb['max']:.0f}/{level.rss_mb['end']:.0f} | "
              f"{level.server_cpu:.2f} | {level.client_cpu:.2f} | {level.other_cpu:.2f} |")

    goals = {}
    at_goal = next((level for level in levels if level.clients == GOAL_CLIENTS), None)
    if at_goal is None:
        print(f"\ngoal: at {GOAL_CLIENTS} clients, throughput ≥ {GOAL_FRACTION:.0%} of the CLI's: not measured")
    else:
        fraction, of_cli = at_goal.throughput / steady, at_goal.throughput / cli
        goals["throughput_at_16"] = {"fraction_of_steady": round(fraction, 4), "fraction_of_cli": round(of_cli, 4),
                                     "met_against_cli": of_cli >= GOAL_FRACTION,
                                     "met_against_steady": fraction >= GOAL_FRACTION}
        verdict = lambda f: "met" if f >= GOAL_FRACTION else "MISSED"  # noqa: E731
        print(f"\ngoal: at {GOAL_CLIENTS} clients, throughput ≥ {GOAL_FRACTION:.0%} of the CLI's: "
              f"{of_cli:.0%} of `asr transcribe` as run, start-up included ({verdict(of_cli)}); "
              f"{fraction:.0%} of its in-process steady state ({verdict(fraction)})")
    below = [level for level in levels + ([soak] if soak else []) if level.clients <= max_queue]
    failed = [f"{level.clients} clients: {sum(level.errors.values())}" for level in below if level.errors]
    goals["zero_errors_below_capacity"] = not failed
    print(f"goal: zero errors below capacity (clients ≤ {max_queue}): "
          f"{'met' if not failed else 'MISSED (' + '; '.join(failed) + ')'}")
    if rss is not None:
        goals["rss_flat"] = rss["flat"]
        print(f"goal: RSS flat over the {soak.wall_seconds:.0f} s soak (mean of the 0.5 s samples in its first and "
              f"last {SOAK_WINDOW:.0%}; flat if growth < {FLAT_GROWTH:.0%}): {rss['first_mb']:.1f} -> "
              f"{rss['last_mb']:.1f} MB, {rss['growth_mb']:+.1f} MB ({rss['growth']:+.1%}) "
              f"({'met' if rss['flat'] else 'MISSED'})")
    return goals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, default=Path("exp/synthetic/best.pt"), help="asr checkpoint (.pt)")
    parser.add_argument("--manifest", type=Path, default=Path("data/synthetic/manifests/test.jsonl"),
                        help="JSON lines with audio_filepath and duration (default: the demo's test set)")
    parser.add_argument("--clients", default="1,4,16,64", help="concurrency levels, comma-separated")
    parser.add_argument("--seconds", type=float, default=20.0, help="wall time of each level (default 20)")
    parser.add_argument("--soak-warmup", type=float, default=120.0,
                        help="seconds of load at 16 clients before the soak, for the heap's working set to form "
                             "(its RSS is printed; default 120)")
    parser.add_argument("--soak-seconds", type=float, default=120.0,
                        help=f"a last run at {SOAK_CLIENTS} clients for RSS flatness (default 120; 0: skip)")
    parser.add_argument("--max-queue", type=int, default=64, help="the server's --max-queue (default 64)")
    parser.add_argument("--threads", type=int, default=2, help="OMP_NUM_THREADS for server and CLI (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each anchor measurement; the median is used")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: clients 1,4; 5 s per level; 10 s soak; one anchor run")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    args = parser.parse_args()
    if args.quick:
        args.clients, args.seconds, args.soak_seconds, args.soak_warmup, args.repeats = "1,4", 5.0, 10.0, 0.0, 1
    try:
        client_levels = [int(c) for c in args.clients.split(",")]
    except ValueError:
        _fail(f"--clients {args.clients!r}: give whole numbers separated by commas, e.g. 1,4,16,64")
    if min(client_levels) < 1 or min(args.threads, args.repeats, args.max_queue) < 1:
        _fail("--clients, --threads, --repeats and --max-queue must be at least 1")
    if args.seconds <= 0 or args.soak_seconds < 0:
        _fail("--seconds must be positive and --soak-seconds not negative")
    if not args.model.is_file():
        _fail(f"{args.model}: no such checkpoint; train one with 'bash scripts/demo.sh' or pass --model")
    if not args.manifest.is_file():
        _fail(f"{args.manifest}: no such manifest; make it with 'bash scripts/demo.sh' or pass --manifest")
    try:
        import httpx  # noqa: F401
    except ImportError:
        _fail("the clients need httpx: pip install httpx")

    clips = read_clips(args.manifest)
    if not clips:
        _fail(f"{args.manifest}: no files listed")
    loadavg = Path("/proc/loadavg").read_text().split()[0]
    print(f"audio: {len(clips)} files, {sum(c.seconds for c in clips) / 60:.1f} min ({args.manifest}); "
          f"load average {loadavg}")

    anchor = run_anchor(args.model, clips, args.threads, args.repeats)
    print("anchor runs (s): " + "; ".join(f"{name} {', '.join(f'{v:.2f}' for v in values)}"
                                          for name, values in anchor["runs"].items()))

    server = Server(args.model, args.max_queue, args.threads)
    try:
        asyncio.run(warm_up(server, clips))
        levels = []
        for clients in client_levels:
            level = asyncio.run(run_level(server, clips, clients, args.seconds))
            print(f"{clients} clients: {level.requests} requests, {level.throughput:.1f} audio s/s")
            levels.append(level)
        soak = rss = None
        if args.soak_seconds > 0:
            if args.soak_warmup > 0:  # the heap's working set forms under load, then holds
                warm = asyncio.run(run_level(server, clips, SOAK_CLIENTS, args.soak_warmup))
                print(f"soak warm-up, {SOAK_CLIENTS} clients for {warm.wall_seconds:.0f} s: RSS "
                      f"{warm.rss_mb['start']:.0f} -> {warm.rss_mb['end']:.0f} MB, every 10 s: "
                      f"{[round(mb) for _, mb in warm.rss_samples[::20]]}", flush=True)
            soak = asyncio.run(run_level(server, clips, SOAK_CLIENTS, args.soak_seconds))
            rss = soak_rss(soak)
    finally:
        code = server.stop()
    if code != 0:
        print(f"warning: asr serve exited with {code} on SIGTERM", file=sys.stderr)
    if server.log:
        print(f"server log ({len(server.log)} lines), last: {' | '.join(server.log[-3:])}", file=sys.stderr)

    goals = print_report(anchor, levels, soak, rss, args.max_queue, args.threads, loadavg)
    if args.out:
        def level_json(level: Level) -> dict:
            return {k: v for k, v in asdict(level).items() if k != "rss_samples"}

        summary = {"model": str(args.model), "manifest": str(args.manifest), "omp_num_threads": args.threads,
                   "max_queue": args.max_queue, "seconds_per_level": args.seconds, "load_average_before": loadavg,
                   "anchor": anchor, "levels": [level_json(level) for level in levels],
                   "soak": ({**level_json(soak), "rss": rss, "rss_samples": soak.rss_samples} if soak else None),
                   "server_exit_code": code, "goals": goals}
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
