"""espeak-ng, the voice of the synthetic corpus: the English voices and variants it speaks
with, and speaking one sentence."""

from __future__ import annotations

import subprocess

import numpy as np

from asr.errors import UserError

ESPEAK = "espeak-ng"
ESPEAK_TIMEOUT = 60  # s per utterance; espeak-ng takes ~0.02 s, so only a hung process hits it

# espeak-ng's own English voices (mbrola voices need extra packages).
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
          "en-gb-x-rp", "en-029", "en-us-nyc")
# Variants that sound like a person: no whisper, echo, robot or croak effects.
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5", "Annie", "Andrea", "anika", "aunty",
                   "belinda", "linda", "steph")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "Andy", "Denis", "Diogo",
                 "Henrique", "Hugo", "Lee", "Mario", "Michael", "Mike", "adam", "antonio",
                 "benjamin", "boris", "david", "ed", "edward", "iven", "marcelo", "max",
                 "michel", "miguel", "paul", "quincy", "rob", "robert", "travis", "victor")


class EspeakNotFoundError(UserError, RuntimeError):
    """espeak-ng, or one of the voices the corpus uses, is not installed."""

    def __init__(self, message: str = f"{ESPEAK} not found on PATH: install it with 'sudo apt-get install "
                 "espeak-ng' (Debian/Ubuntu) or 'brew install espeak-ng' (macOS)") -> None:
        super().__init__(message)


def speak(text: str, voice: str = "en-us", rate_wpm: int = 175, pitch: int = 50,
          espeak: str = ESPEAK) -> tuple[np.ndarray, int]:
    """Run espeak-ng; return float32 samples in [-1, 1] (N,) and their sample rate."""
    # Lower case, or espeak-ng spells short upper-case words as acronyms ("US" -> "U S").
    command = [espeak, "-v", voice, "-s", str(rate_wpm), "-p", str(pitch), "--stdout", text.lower()]
    wav = subprocess.run(command, capture_output=True, check=True, timeout=ESPEAK_TIMEOUT).stdout
    # espeak-ng streams a 16-bit mono WAV whose size fields are placeholders, so walk the
    # chunks ourselves and take everything after the "data" header.
    if wav[:4] != b"RIFF" or wav[8:12] != b"WAVE":
        raise ValueError("espeak-ng did not write a WAV file")
    sample_rate, position = 0, 12
    while position + 8 <= len(wav):
        chunk, size = wav[position : position + 4], int.from_bytes(wav[position + 4 : position + 8], "little")
        if chunk == b"fmt ":
            sample_rate = int.from_bytes(wav[position + 12 : position + 16], "little")
        if chunk == b"data":
            data = wav[position + 8 :]
            samples = np.frombuffer(data[: len(data) // 2 * 2], dtype="<i2")
            if not sample_rate or samples.size == 0:
                raise ValueError("espeak-ng wrote no audio")
            return samples.astype(np.float32) / 32768.0, sample_rate
        position += 8 + size
    raise ValueError("espeak-ng wrote a WAV file without audio data")


def check_voices(espeak: str) -> None:
    """espeak-ng quietly falls back to its default voice for unknown names; refuse instead."""
    def listed(kind: str) -> set[str]:
        lines = subprocess.run([espeak, f"--voices={kind}"], capture_output=True, text=True, check=True).stdout
        return {field for line in lines.splitlines()[1:] for field in line.split()[1:2] + line.split()[4:5]}

    languages, variants = listed("en"), {f.removeprefix("!v/") for f in listed("variant")}
    missing = [v for v in VOICES if v not in languages]
    missing += [v for v in FEMALE_VARIANTS + MALE_VARIANTS if v not in variants]
    if missing:
        raise EspeakNotFoundError(
            f"{ESPEAK} lacks the voices or variants {', '.join(missing)}: install espeak-ng 1.51 or later"
        )
