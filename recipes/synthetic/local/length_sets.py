"""Short and long test sets for comparing acoustic models (compare_models.sh, stage 2).

    python recipes/synthetic/local/length_sets.py TEST_MANIFEST OUT_DIR

Writes OUT_DIR/test-short.jsonl: the test utterances of at most SHORT seconds; and
OUT_DIR/test-long.jsonl with its audio under OUT_DIR/test-long/: each speaker's
consecutive test utterances joined, in order, until at least LONG seconds. The synthetic
sentences last 1-7 s, so joining is the only way to hear the same voices and words in
utterances long enough for a recurrent layer's memory to matter. No model has trained on
an utterance this long.
"""

from __future__ import annotations

import sys
from itertools import groupby
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import SAMPLE_RATE, load_audio
from asr.data import Utterance, read_manifest, write_manifest

SHORT = 3.0  # s
LONG = 10.0  # s


def long_utterances(utterances: list[Utterance], audio_dir: Path) -> list[Utterance]:
    joined = []
    for speaker, group in groupby(sorted(utterances, key=lambda u: (u.speaker, u.id)), key=lambda u: u.speaker):
        parts: list[Utterance] = []
        for u in group:
            parts.append(u)
            if sum(p.duration for p in parts) >= LONG:
                audio = np.concatenate([load_audio(p.audio_filepath) for p in parts])
                path = audio_dir / f"{parts[0].id}+{len(parts)}.flac"
                sf.write(path, audio, SAMPLE_RATE, subtype="PCM_16")
                joined.append(Utterance(path.stem, str(path.resolve()), len(audio) / SAMPLE_RATE,
                                        " ".join(p.text for p in parts), speaker))
                parts = []
    return joined


def main(test_manifest: str, out_dir: str) -> None:
    out = Path(out_dir)
    (out / "test-long").mkdir(parents=True, exist_ok=True)
    test = read_manifest(test_manifest)
    short = [u for u in test if u.duration <= SHORT]
    long = long_utterances(test, out / "test-long")
    write_manifest(short, out / "test-short.jsonl")
    write_manifest(long, out / "test-long.jsonl")
    for name, rows in (("short", short), ("long", long)):
        seconds = [u.duration for u in rows]
        print(f"test-{name}: {len(rows)} utterances, {min(seconds):.1f}-{max(seconds):.1f} s, "
              f"{sum(u.text.count(' ') + 1 for u in rows)} words")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2].strip())
    main(*sys.argv[1:])
