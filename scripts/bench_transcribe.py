#!/usr/bin/env python3
"""Benchmark `asr transcribe` (CPU, the model's own decoding without an LM: greedy for
characters and word pieces, a lexicon search for phones) against Debian's pocketsphinx on the
same audio.

    python scripts/bench_transcribe.py --model exp/synthetic/best.pt [--out bench.json]

Audio: the synthetic corpus's test split (``--synthetic``, default data/synthetic/corpus/test)
and the LibriVox read speech with transcripts that Debian's ``pocketsphinx-testdata`` ships
(``--librivox``, default /usr/share/pocketsphinx/test/data/librivox). Each recognizer runs as
one process over the whole set, so its start-up (model loading) is counted once; the
real-time factor is that process's wall time over the audio's duration (below 1 is faster
than real time). asr's run is repeated ``--repeats`` times (default 3) and its median
reported, with every run's time: on this small VM the same run varies by a second or two,
a large share of asr's few seconds; pocketsphinx's minutes vary little and run once. WER is computed per set, against the references, after the same text
normalisation for both recognizers. Inputs are converted to 16 kHz mono 16-bit WAV for
pocketsphinx beforehand (not timed); asr reads the original files. asr runs once per
``--compute-types`` value (float32 and int8 by default), and the int8 WER is compared with
float32's.

Then a file of ``--long-minutes`` (default 60) is made by looping test audio with sox and
transcribed by a fresh ``asr transcribe`` process, whose peak resident memory is measured
(goal: under 2 GB however long the file).

Needs: ``apt-get install pocketsphinx pocketsphinx-en-us pocketsphinx-testdata sox``.
Set OMP_NUM_THREADS to fix the threads asr uses; pocketsphinx uses one.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf

from asr.audio import load_audio
from asr.metrics import corpus_errors
from asr.text import normalize_text

POCKETSPHINX_MODEL = Path("/usr/share/pocketsphinx/model/en-us")
LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
MIN_BENCH_SECONDS = 300.0  # the comparison should cover at least five minutes of audio


@dataclass
class Utterance:
    id: str
    path: Path
    reference: str
    seconds: float


@dataclass
class RunResult:
    recognizer: str
    wall_seconds: float
    audio_seconds: float
    rtf: float
    wer: dict  # set name -> WER (fraction), for the sets with references
    walls: list  # seconds of each run; wall_seconds is their median


def _fail(message: str) -> None:
    print(f"bench_transcribe: error: {message}", file=sys.stderr)
    sys.exit(2)


def read_synthetic(folder: Path) -> list[Utterance]:
    """Utterances of a LibriSpeech-layout folder (SPK/CHAP/*.flac with .trans.txt files)."""
    utterances = []
    for trans in sorted(folder.rglob("*.trans.txt")):
        for line in trans.read_text(encoding="utf-8").splitlines():
            utt_id, _, text = line.partition(" ")
            audio = trans.parent / f"{utt_id}.flac"
            if audio.is_file():
                utterances.append(Utterance(utt_id, audio, normalize_text(text), sf.info(audio).duration))
    return utterances


def read_librivox(folder: Path) -> list[Utterance]:
    """pocketsphinx-testdata's LibriVox files: ``transcription`` lines ``<s> text </s> (id)``."""
    utterances = []
    for line in (folder / "transcription").read_text(encoding="utf-8").splitlines():
        text, _, utt_id = line.rpartition("(")
        utt_id = utt_id.strip(" )")
        text = text.replace("<s>", " ").replace("</s>", " ")
        audio = folder / f"{utt_id}.wav"
        if audio.is_file():
            utterances.append(Utterance(utt_id, audio, normalize_text(text), sf.info(audio).duration))
    return utterances


def run_asr(model: Path, utterances: list[Utterance], compute_type: str = "float32") -> tuple[float, dict[str, str]]:
    """Wall seconds of one ``asr transcribe`` process over all files, and hypotheses by id."""
    command = [sys.executable, "-m", "asr", "transcribe", "--model", str(model), "--device", "cpu",
               "--compute-type", compute_type, *[str(u.path) for u in utterances]]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        _fail(f"asr transcribe exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    by_path = dict(line.split("\t", 1) if "\t" in line else (line, "") for line in done.stdout.splitlines())
    return wall, {u.id: by_path.get(str(u.path), "") for u in utterances}


def run_pocketsphinx(utterances: list[Utterance], wav_dir: Path) -> tuple[float, dict[str, str]]:
    """Wall seconds of one ``pocketsphinx_batch`` process over all files, and hypotheses by id."""
    binary = shutil.which("pocketsphinx_batch")
    if binary is None:
        _fail("pocketsphinx_batch not found: apt-get install pocketsphinx pocketsphinx-en-us")
    ctl, hyp = wav_dir / "files.ctl", wav_dir / "pocketsphinx.hyp"
    ctl.write_text("".join(f"{u.id}\n" for u in utterances))
    command = [binary, "-adcin", "yes", "-adchdr", "44", "-cepdir", str(wav_dir), "-cepext", ".wav",
               "-ctl", str(ctl), "-hyp", str(hyp), "-hmm", str(POCKETSPHINX_MODEL / "en-us"),
               "-lm", str(POCKETSPHINX_MODEL / "en-us.lm.bin"), "-dict", str(POCKETSPHINX_MODEL / "cmudict-en-us.dict")]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not hyp.is_file():
        _fail(f"pocketsphinx_batch exited with {done.returncode}: {done.stderr.strip()[-500:]}")
    hypotheses = {}
    for line in hyp.read_text(encoding="utf-8", errors="replace").splitlines():
        text, _, tail = line.rpartition("(")  # "words (id score)"
        hypotheses[tail.split()[0]] = text
    return wall, {u.id: hypotheses.get(u.id, "") for u in utterances}


def score(sets: dict[str, list[Utterance]], hypotheses: dict[str, str]) -> dict[str, float]:
    wer = {}
    for name, utterances in sets.items():
        words, _ = corpus_errors([(u.reference, normalize_text(hypotheses[u.id])) for u in utterances])
        wer[name] = round(words.rate, 4)
    return wer


def peak_rss_of(command: list[str]) -> tuple[float, float, int]:
    """(wall seconds, peak resident memory in MB, exit code) of one child process."""
    with tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)
        # wait4 gives this child's own resource usage (getrusage would fold in every child).
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            stderr.seek(0)
            print(stderr.read().decode(errors="replace")[-500:], file=sys.stderr)
    return wall, usage.ru_maxrss / 1024, code  # ru_maxrss is in KiB on Linux


def make_long_file(utterances: list[Utterance], minutes: float, work: Path) -> Path:
    """A file of ``minutes`` of audio: test utterances joined, then looped, with sox."""
    if shutil.which("sox") is None:
        _fail("sox not found: apt-get install sox")
    block, seconds = [], 0.0
    for u in utterances:
        block.append(str(u.path))
        seconds += u.seconds
        if seconds >= min(600.0, minutes * 60):
            break
    joined, long = work / "joined.flac", work / f"long-{minutes:g}min.flac"
    subprocess.run(["sox", *block, joined], check=True)
    repeats = math.ceil(minutes * 60 / seconds) - 1  # sox plays the input once more per repeat
    subprocess.run(["sox", joined, long, "repeat", str(repeats), "trim", "0", str(minutes * 60)], check=True)
    return long


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, type=Path, help="asr checkpoint (.pt)")
    parser.add_argument("--synthetic", type=Path, default=Path("data/synthetic/corpus/test"),
                        help="LibriSpeech-layout folder with references (default: the demo's test split)")
    parser.add_argument("--librivox", type=Path, default=LIBRIVOX, help="pocketsphinx-testdata's librivox folder")
    parser.add_argument("--long-minutes", type=float, default=60.0, help="length of the peak-memory file (0: skip)")
    parser.add_argument("--work", type=Path, help="folder for converted audio (default: a temporary one)")
    parser.add_argument("--out", type=Path, help="also write the results as JSON")
    parser.add_argument("--repeats", type=int, default=3, help="asr runs; the median is reported")
    parser.add_argument("--compute-types", default="float32,int8",
                        help="asr's --compute-type values to run, comma-separated (default float32,int8)")
    args = parser.parse_args()

    if not args.model.is_file():
        _fail(f"{args.model}: no such checkpoint; train one with 'bash scripts/demo.sh' or pass --model")
    if not args.synthetic.is_dir():
        _fail(f"{args.synthetic}: no such folder; make it with 'asr synth --out data/synthetic/corpus' "
              "or pass --synthetic")
    if not (args.librivox / "transcription").is_file():
        _fail(f"{args.librivox}: no LibriVox test data; apt-get install pocketsphinx-testdata or pass --librivox")
    sets = {"synthetic": read_synthetic(args.synthetic), "librivox": read_librivox(args.librivox)}
    everything = [u for utterances in sets.values() for u in utterances]
    audio_seconds = sum(u.seconds for u in everything)
    print(f"audio: {len(everything)} files, {audio_seconds / 60:.1f} min "
          f"({', '.join(f'{k}: {len(v)} files, {sum(u.seconds for u in v) / 60:.1f} min' for k, v in sets.items())})")
    if audio_seconds < MIN_BENCH_SECONDS:
        print(f"warning: less than {MIN_BENCH_SECONDS / 60:.0f} minutes of audio; timings are noisy", file=sys.stderr)

    with tempfile.TemporaryDirectory() as temporary:
        work = args.work or Path(temporary)
        wav_dir = work / "wav16k"
        wav_dir.mkdir(parents=True, exist_ok=True)
        for u in everything:  # pocketsphinx reads 16 kHz mono 16-bit only
            sf.write(wav_dir / f"{u.id}.wav", load_audio(u.path), 16_000, subtype="PCM_16", format="WAV")

        results = []
        compute_types = args.compute_types.split(",")
        runners = [(f"asr (no LM, CPU, {c})", lambda c=c: run_asr(args.model, everything, c), max(1, args.repeats))
                   for c in compute_types]
        runners.append(("pocketsphinx 5prealpha (en-us LM)", lambda: run_pocketsphinx(everything, wav_dir), 1))
        for name, runner, repeats in runners:
            runs = [runner() for _ in range(repeats)]
            walls = sorted(wall for wall, _ in runs)
            wall, hypotheses = walls[len(walls) // 2], runs[0][1]
            if repeats > 1:
                print(f"{name}: {', '.join(f'{w:.1f}' for w, _ in runs)} s; median {wall:.1f} s")
            results.append(RunResult(name, round(wall, 2), round(audio_seconds, 2), round(wall / audio_seconds, 4),
                                     score(sets, hypotheses), [round(w, 2) for w, _ in runs]))
        print(f"\n{'recognizer':36} {'wall s':>8} {'RTF':>8} " + " ".join(f"{'WER ' + k:>14}" for k in sets))
        for r in results:
            print(f"{r.recognizer:36} {r.wall_seconds:8.1f} {r.rtf:8.4f} "
                  + " ".join(f"{100 * r.wer[k]:13.2f}%" for k in sets))
        pocketsphinx = results[-1]
        for c, r in zip(compute_types, results):
            goal = "50x" if c == "int8" else "20x"
            print(f"asr {c} is {pocketsphinx.wall_seconds / r.wall_seconds:.1f}x faster than pocketsphinx (goal: {goal})")
        if "float32" in compute_types and "int8" in compute_types:
            f32, i8 = results[compute_types.index("float32")], results[compute_types.index("int8")]
            print("int8 against float32, WER points: " + ", ".join(
                f"{k} {100 * (i8.wer[k] - f32.wer[k]):+.2f}" for k in sets) + " (goal: within 0.5)")

        long_result = {}
        if args.long_minutes > 0:
            long = make_long_file(sets["synthetic"], args.long_minutes, work)
            seconds = sf.info(long).duration
            for c in compute_types:
                command = [sys.executable, "-m", "asr", "transcribe", "--model", str(args.model), "--device", "cpu",
                           "--compute-type", c, str(long)]
                wall, peak_mb, code = peak_rss_of(command)
                long_result[c] = {"audio_seconds": round(seconds, 1), "wall_seconds": round(wall, 1),
                                  "rtf": round(wall / seconds, 4), "peak_rss_mb": round(peak_mb), "exit_code": code}
                goal = 600 if c == "int8" else 2048
                verdict = "under" if peak_mb < goal else "OVER"
                print(f"\n{seconds / 60:.1f}-minute file, {c}: {wall:.1f} s (RTF {wall / seconds:.4f}), "
                      f"peak RSS {peak_mb:.0f} MB ({verdict} the {goal} MB goal)")

    if args.out:
        threads = os.environ.get("OMP_NUM_THREADS", "default")
        summary = {"model": str(args.model), "omp_num_threads": threads,
                   "runs": [asdict(r) for r in results], "long_file": long_result}
        args.out.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"results in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
