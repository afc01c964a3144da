#!/usr/bin/env python3
"""Cold start: how long `asr transcribe` takes to answer one short file, against a bare
`python -c "import torch"` on the same machine (the anchor: asr cannot start faster than
torch imports).

    python scripts/bench_coldstart.py --model exp/synthetic/best.pt [--audio FILE] [--runs 7]

Each command runs ``--runs`` times as a fresh process, alternating, after one untimed run of
each (which fills the OS file cache and numba's on-disk cache, as any second use would); the
table gives every command's median and fastest wall time and its ratio to the anchor's median
(goal: at most 1.5x for asr transcribe). ``--imports`` also lists the ten slowest imports of
`asr transcribe` beyond torch's (python -X importtime). Set OMP_NUM_THREADS to fix the
threads; the machine should be otherwise idle.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

GOAL = 1.5


def wall(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"bench_coldstart: {' '.join(command[:6])} ... exited {done.returncode}: {done.stderr.strip()[-300:]}")
    return seconds


def slowest_imports(command: list[str], count: int = 10) -> list[tuple[float, str]]:
    """The ``count`` largest cumulative import times (s) of modules outside torch, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", *command[1:]], capture_output=True, text=True, check=False)
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cumulative, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
            if cumulative.isdigit() and not name.startswith(("torch", "numpy")):
                rows.append((int(cumulative) / 1e6, name))
    return sorted(rows, reverse=True)[:count]


def default_audio() -> Path:
    files = sorted(Path("data/synthetic/corpus/test").glob("*/*/*.flac"))
    if not files:
        sys.exit("bench_coldstart: no --audio given and no data/synthetic/corpus/test (run bash scripts/demo.sh)")
    return files[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="checkpoint (.pt) or exported model (.onnx)")
    parser.add_argument("--audio", type=Path, help="a short file (default: the first synthetic test file)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each command (default 7)")
    parser.add_argument("--compute-types", default="float32,int8", help="asr --compute-type values to time")
    parser.add_argument("--imports", action="store_true", help="also list the slowest imports beyond torch")
    args = parser.parse_args()
    audio = args.audio or default_audio()
    import soundfile

    seconds = soundfile.info(str(audio)).duration
    commands = {"python -c 'import torch' (anchor)": [sys.executable, "-c", "import torch"]}
    for compute_type in args.compute_types.split(","):
        commands[f"asr transcribe, {compute_type}"] = [
            sys.executable, "-m", "asr", "transcribe", "--model", str(args.model), "--device", "cpu",
            "--compute-type", compute_type, str(audio)]
    for command in commands.values():
        wall(command)  # untimed: file cache, numba cache
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(max(1, args.runs)):
        for name, command in commands.items():
            times[name].append(wall(command))
    anchor = statistics.median(next(iter(times.values())))
    print(f"one file of {seconds:.1f} s ({audio}); {args.runs} runs each; model {args.model}")
    print("| command | median s | fastest s | × anchor (goal ≤ 1.5 for asr) |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| {name} | {median:.2f} | {min(values):.2f} | {median / anchor:.2f} |")
    if args.imports:
        print("\nslowest imports of asr transcribe beyond torch and numpy (cumulative s):")
        for cumulative, name in slowest_imports(list(commands.values())[1]):
            print(f"  {cumulative:6.3f}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
