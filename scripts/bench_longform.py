#!/usr/bin/env python3
"""What a trained model's word timing and long-audio transcription measure, against anchors.

    python scripts/bench_longform.py --model exp/synthetic/best.pt [--out bench.json]

These figures move from one trained model to the next, so they are reported here rather
than asserted in tests (tests/test_transcribe.py checks what holds for any model).

1. Word timing. Ten words spoken one at a time by espeak-ng, 0.3-0.7 s apart (the test's
   recording, :func:`asr.corpora.synthetic.recordings.spoken_words`), over ``--timing-seeds`` seeds of the
   pauses and three speaking rates. Anchor: each word's own sound (40 dB trim). Reported: the
   error of every recognised word's start and end (words assigned by their centre), mean,
   95th percentile and largest, against the 100 ms goal; and what the test bounds: how far
   any word reaches past its sound, and the edge error of the words spelled right.
2. Long audio. ``--minutes`` (default 10) of one recording: clean synthetic utterances 0.3 s
   apart under one pink noise 25 dB below the speech (:func:`asr.corpora.synthetic.recordings.continuous_recording`).
   Anchor: the same samples cut at the known utterance boundaries and transcribed one by
   one. Reported: WER of each against the references, and of the long file against the
   one-by-one text.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE
from asr.checkpoint import load_model
from asr.decode import GreedyDecoder
from asr.metrics import word_errors
from asr.corpora.synthetic.recordings import clean_utterances, continuous_recording, spoken_words
from asr.transcribe import transcribe_files

WORDS = "PEOPLE OFTEN WALK TO SCHOOL WHEN THE WEATHER IS GOOD".split()
RATES_WPM = (130, 160, 190)
TIMING_GOAL_S = 0.1


def timing_errors(loaded, decoder, seeds: int, work: Path) -> dict:
    starts, ends, unheard, in_pauses, files = [], [], 0, 0, 0
    outside, spelled = [], []  # how far each word reaches past its sound; edge error of words spelled right
    for seed in range(seeds):
        for rate in RATES_WPM:
            recording = spoken_words(WORDS, seed=seed, rate_wpm=rate)
            path = work / f"words-{seed}-{rate}.flac"
            sf.write(path, recording.audio, SAMPLE_RATE)
            (transcript,) = transcribe_files(loaded, [path], decoder)
            files += 1
            pieces: dict[int, list] = {i: [] for i in range(len(WORDS))}
            for word in transcript.words:
                centre = (word.start + word.end) / 2
                inside = [i for i, (a, b) in enumerate(recording.spans) if a - 0.15 <= centre <= b + 0.15]
                if inside:
                    pieces[inside[0]].append(word)
                    a, b = recording.spans[inside[0]]
                    outside.append(max(0.0, a - word.start, word.end - b))
                    if word.text == WORDS[inside[0]]:
                        spelled.append(max(abs(word.start - a), abs(word.end - b)))
                else:
                    in_pauses += 1
            for i, (a, b) in enumerate(recording.spans):
                if not pieces[i]:
                    unheard += 1
                    continue
                starts.append(pieces[i][0].start - a)
                ends.append(pieces[i][-1].end - b)
    errors = np.abs(np.array(starts + ends))
    return {
        "files": files, "words": files * len(WORDS), "unheard": unheard, "words_in_pauses": in_pauses,
        "start_mean_ms": 1000 * float(np.mean(starts)), "end_mean_ms": 1000 * float(np.mean(ends)),
        "abs_mean_ms": 1000 * float(errors.mean()), "abs_p95_ms": 1000 * float(np.percentile(errors, 95)),
        "abs_max_ms": 1000 * float(errors.max()),
        "within_goal": float(np.mean(errors <= TIMING_GOAL_S)),
        "outside_max_ms": 1000 * float(max(outside, default=0.0)),
        "spelled_right": len(spelled), "spelled_right_max_ms": 1000 * float(max(spelled, default=0.0)),
    }


def long_file(loaded, decoder, minutes: float, work: Path, jobs: int) -> dict:
    # 26 utterances a minute leave enough for the recording; at 10 minutes, the test's corpus.
    recording = continuous_recording(clean_utterances(work / "corpus", count=round(26 * minutes), jobs=jobs),
                                     seconds=60 * minutes)
    long_path = work / "long.flac"
    sf.write(long_path, recording.audio, SAMPLE_RATE)
    one_paths = [work / f"one-{i:04d}.flac" for i in range(len(recording.spans))]
    for i, path in enumerate(one_paths):
        sf.write(path, recording.segment(i), SAMPLE_RATE)
    one_text = " ".join(t.text for t in transcribe_files(loaded, one_paths, decoder))
    (transcript,) = transcribe_files(loaded, [long_path], decoder)
    reference = " ".join(recording.texts)
    return {
        "seconds": len(recording.audio) / SAMPLE_RATE, "utterances": len(recording.spans),
        "reference_words": len(reference.split()),
        "wer_one_by_one": word_errors(reference, one_text).rate, "wer_long": word_errors(reference, transcript.text).rate,
        "long_vs_one_by_one": word_errors(one_text, transcript.text).rate,
        "words_one_by_one": len(one_text.split()), "words_long": len(transcript.words),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="trained checkpoint (.pt)")
    parser.add_argument("--timing-seeds", type=int, default=5, help="pause layouts per speaking rate (default 5)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the long recording (default 10)")
    parser.add_argument("--jobs", type=int, default=2, help="espeak-ng processes for the long recording's corpus")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON")
    args = parser.parse_args()
    if not Path(args.model).is_file():
        print(f"bench_longform: error: {args.model}: no such checkpoint (bash scripts/demo.sh trains one)",
              file=sys.stderr)
        return 2
    loaded = load_model(args.model, "cpu")
    decoder = GreedyDecoder(loaded.vocab)
    with tempfile.TemporaryDirectory() as tmp:
        timing = timing_errors(loaded, decoder, args.timing_seeds, Path(tmp))
        long = long_file(loaded, decoder, args.minutes, Path(tmp), args.jobs)

    print(f"word timing: {timing['words']} words spoken one at a time ({timing['files']} files: "
          f"{args.timing_seeds} pause layouts x {len(RATES_WPM)} rates), {timing['unheard']} not heard, "
          f"{timing['words_in_pauses']} recognised words in pauses")
    print(f"{'edge error vs the word own sound':34} {'mean':>8} {'p95':>8} {'max':>8} {'<= 100 ms':>10}")
    print(f"{'|start|, |end| (ms)':34} {timing['abs_mean_ms']:8.1f} {timing['abs_p95_ms']:8.1f} "
          f"{timing['abs_max_ms']:8.1f} {100 * timing['within_goal']:9.1f}%")
    print(f"{'signed start, end (ms)':34} {timing['start_mean_ms']:8.1f} {timing['end_mean_ms']:8.1f}")
    print(f"what the test bounds (160 ms): words reach at most {timing['outside_max_ms']:.1f} ms past their sound; "
          f"the {timing['spelled_right']} words spelled right have edges at most {timing['spelled_right_max_ms']:.1f} ms off")
    print(f"\nlong audio: {long['seconds'] / 60:.1f} min, {long['utterances']} utterances, "
          f"{long['reference_words']} words")
    print(f"{'transcription':34} {'WER %':>8} {'words':>8}")
    print(f"{'one by one (anchor)':34} {100 * long['wer_one_by_one']:8.2f} {long['words_one_by_one']:8d}")
    print(f"{'one file':34} {100 * long['wer_long']:8.2f} {long['words_long']:8d}")
    print(f"one file against one by one: {100 * long['long_vs_one_by_one']:.2f}% of words differ; "
          f"WER difference {100 * (long['wer_long'] - long['wer_one_by_one']):+.2f} points")
    if args.out:
        args.out.write_text(json.dumps({"model": str(args.model), "timing": timing, "long": long}, indent=2) + "\n")
        print(f"figures in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
