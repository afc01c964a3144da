"""flite, the voice of the ``test-engine`` split and of nothing training hears.

flite is CMU's small synthesizer; it shares some recordings with festival (its kal voices
use the diphones of festival's kal_diphone, its slt the speaker of cmu_us_slt_arctic_hts)
but its own front end, prosody and waveform generation. It starts in ~0.02 s, so one
process per sentence costs little.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.errors import UserError

FLITE = "flite"
FLITE_TIMEOUT = 60  # s per sentence; flite takes ~0.2 s at most
# voice -> sex: every voice Debian's flite lists (flite -lv) but awb_time, a limited-domain
# voice that speaks only clock times (a 14-word sentence comes out as 0.6 s of fragments).
# kal speaks at 8 kHz, telephone bandwidth.
VOICES = {"kal": "M", "kal16": "M", "awb": "M", "rms": "M", "slt": "F"}


class FliteNotFoundError(UserError, RuntimeError):
    """flite, or one of the voices the corpus uses, is not installed."""

    def __init__(self, message: str = f"{FLITE} not found on PATH: install it with 'sudo apt-get install flite' "
                 "(Debian/Ubuntu)") -> None:
        super().__init__(message)


def speak(text: str, voice: str, stretch: float = 1.0, flite: str = FLITE) -> tuple[np.ndarray, int]:
    """Run flite; return float32 samples in [-1, 1] (N,) and their sample rate.

    ``stretch`` scales every duration (1.2: 20% slower).
    """
    with tempfile.TemporaryDirectory(prefix="asr-flite-") as workdir:
        path = Path(workdir, "utterance.wav")
        command = [flite, "-voice", voice, "--setf", f"duration_stretch={stretch:.4f}", "-t", text.lower(),
                   "-o", str(path)]
        subprocess.run(command, capture_output=True, check=True, timeout=FLITE_TIMEOUT)
        if not path.exists():
            raise ValueError(f"{FLITE} wrote no audio")
        audio, rate = sf.read(path, dtype="float32")
    if audio.size == 0:
        raise ValueError(f"{FLITE} wrote no audio")
    return audio, rate


def check_voices(flite: str = FLITE) -> None:
    """Refuse to start a corpus without all of its flite voices."""
    listed = subprocess.run([flite, "-lv"], capture_output=True, text=True, check=True, timeout=30).stdout
    missing = [voice for voice in VOICES if voice not in listed.split(":", 1)[-1].split()]
    if missing:
        raise FliteNotFoundError(f"{FLITE} lacks the voices {', '.join(missing)}: install Debian's flite "
                                 "(sudo apt-get install flite), which has them all")
