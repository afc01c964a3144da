#!/usr/bin/env python3
"""A model on real read speech: the LibriVox files that Debian's pocketsphinx-testdata ships and
the 11 LibriSpeech utterances in ../shared/data/librispeech-sample, scored by ``asr evaluate``.

    python scripts/eval_real_speech.py --model exp/synthetic/best.pt [--lm data/synthetic/lm/general.arpa]

Neither set is used in training or tuning; the synthetic models have never heard a human voice,
so these figures say how far that is from real speech. Writes the two manifests and each
evaluation under --out (default exp/real-speech) and prints one table row per set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from asr.corpora.librispeech import read_librispeech
from asr.data import Utterance, write_manifest
from asr.text import normalize_text

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")
SAMPLE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech-sample"


def librivox(folder: Path) -> list[Utterance]:
    """``transcription`` lines ``<s> text </s> (id)`` beside ``id.wav`` files."""
    rows = []
    for line in (folder / "transcription").read_text(encoding="utf-8").splitlines():
        text, _, utt_id = line.rpartition("(")
        utt_id = utt_id.strip(" )")
        audio = folder / f"{utt_id}.wav"
        if audio.is_file():
            text = normalize_text(text.replace("<s>", " ").replace("</s>", " "))
            rows.append(Utterance(utt_id, str(audio), sf.info(audio).duration, text, "librivox"))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--lm", help="also decode with this LM (beam search, the tuned weights)")
    parser.add_argument("--out", type=Path, default=Path("exp/real-speech"))
    args = parser.parse_args()
    sets = {}
    if (LIBRIVOX / "transcription").is_file():
        sets["librivox"] = librivox(LIBRIVOX)
    if SAMPLE.is_dir():
        sets["librispeech-sample"] = read_librispeech(SAMPLE)[0]
    if not sets:
        print("eval_real_speech: neither pocketsphinx-testdata nor the LibriSpeech sample is here", file=sys.stderr)
        return 1
    print("| set | utterances | decoding | WER | CER |\n|---|---|---|---|---|")
    for name, rows in sets.items():
        manifest = args.out / f"{name}.jsonl"
        write_manifest(rows, manifest)
        for label, extra in [("no LM", [])] + ([("beam + LM", ["--lm", args.lm])] if args.lm else []):
            out_dir = args.out / f"{name}-{'lm' if extra else 'nolm'}"
            subprocess.run([sys.executable, "-m", "asr", "evaluate", "--model", args.model, "--manifest",
                            str(manifest), "--out-dir", str(out_dir), *extra], check=True, capture_output=True)
            result = json.loads((out_dir / "wer.json").read_text())
            print(f"| {name} | {len(rows)} | {label} | {100 * result['wer']:.1f} | {100 * result['cer']:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
