"""Festival, the second voice of the synthetic corpus's training split: Debian's English
voices, and speaking one sentence through a festival process kept running.

Starting festival costs ~0.2 s, several times what speaking a sentence takes with a diphone
voice, so each process (each corpus worker) keeps one ``festival --pipe`` and sends it a
command per sentence; it answers on stderr, which festival does not buffer.
"""

from __future__ import annotations

import os
import select
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.errors import UserError

FESTIVAL = "festival"
FESTIVAL_TIMEOUT = 60  # s per sentence; the slowest voice takes ~0.3 s, so only a hung process hits it
# voice -> (sex, Debian package). Diphone voices speak ~150x faster than real time on one
# core, the HTS voice ~15x.
VOICES = {
    "kal_diphone": ("M", "festvox-kallpc16k"),
    "ked_diphone": ("M", "festvox-kdlpc16k"),
    "cmu_us_slt_arctic_hts": ("F", "festvox-us-slt-hts"),
}
# Voices whose pitch follows int_lr_params; the HTS voice draws its own from its model.
PITCHED_VOICES = ("kal_diphone", "ked_diphone")
F0_STD_RATIO = 0.135  # the diphone voices' own spread of F0 (14 Hz around 105 Hz), kept at other means
_DONE = "@@asr-festival-done@@"


class FestivalNotFoundError(UserError, RuntimeError):
    """festival, or one of the voices the corpus uses, is not installed."""

    def __init__(self, message: str = f"{FESTIVAL} not found on PATH: install it with 'sudo apt-get install "
                 f"festival {' '.join(package for _, package in VOICES.values())}' (Debian/Ubuntu)") -> None:
        super().__init__(message)


class Festival:
    """One ``festival --pipe`` process: :meth:`speak` sentences through it, then :meth:`close` it."""

    def __init__(self, executable: str = FESTIVAL) -> None:
        self._workdir = tempfile.TemporaryDirectory(prefix="asr-festival-")
        self._process = subprocess.Popen([executable, "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)

    def command(self, scheme: str, timeout: float = FESTIVAL_TIMEOUT) -> str:
        """Run Scheme code; return what festival wrote to stderr meanwhile (its errors)."""
        assert self._process.stdin is not None and self._process.stderr is not None
        self._process.stdin.write(f'{scheme}\n(format stderr "{_DONE}\\n")\n'.encode())
        self._process.stdin.flush()
        output, deadline = b"", time.monotonic() + timeout
        stderr = self._process.stderr.fileno()
        while _DONE.encode() not in output:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([stderr], [], [], remaining)[0]:
                self.close()
                raise subprocess.TimeoutExpired(FESTIVAL, timeout)
            chunk = os.read(stderr, 65536)
            if not chunk:
                self.close()
                raise ValueError(f"{FESTIVAL} quit: {output.decode(errors='replace').strip() or 'no message'}")
            output += chunk
        return output.decode(errors="replace").split(_DONE)[0].strip()

    def speak(self, text: str, voice: str, stretch: float = 1.0, f0_mean: int = 0) -> tuple[np.ndarray, int]:
        """Say ``text``; float32 samples in [-1, 1] (N,) and their sample rate.

        ``stretch`` scales every duration (1.2: 20% slower); ``f0_mean`` (Hz) sets the mean
        pitch of a diphone voice, 0 keeps the voice's own.
        """
        path = Path(self._workdir.name, "utterance.wav")
        path.unlink(missing_ok=True)
        quoted = text.lower().replace("\\", "\\\\").replace('"', '\\"')  # lower case, as for espeak-ng
        scheme = [f"(voice_{voice})", f"(Parameter.set 'Duration_Stretch {stretch:.4f})"]
        if f0_mean:
            scheme.append(f"(set! int_lr_params '((target_f0_mean {f0_mean}) (target_f0_std "
                          f"{round(f0_mean * F0_STD_RATIO)}) (model_f0_mean 170) (model_f0_std 34)))")
        scheme.append(f'(utt.save.wave (SynthText "{quoted}") "{path}" \'riff)')
        messages = self.command(" ".join(scheme))
        if "ERROR" in messages:  # festival goes on after an error: an unknown voice leaves the last one speaking
            raise ValueError(f"{FESTIVAL} failed: {messages}")
        if not path.exists():
            raise ValueError(f"{FESTIVAL} wrote no audio: {messages or 'no message'}")
        audio, rate = sf.read(path, dtype="float32")
        if audio.size == 0:
            raise ValueError(f"{FESTIVAL} wrote no audio: {messages or 'no message'}")
        return audio, rate

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        for stream in (self._process.stdin, self._process.stderr):
            if stream is not None:
                stream.close()
        self._workdir.cleanup()


# This process's festival, started on first use. A worker forked from a process that had
# one starts its own: two processes writing to one festival would mix their sentences.
_running: dict[str, tuple[int, Festival]] = {}


def speak(text: str, voice: str, stretch: float = 1.0, f0_mean: int = 0,
          festival: str = FESTIVAL) -> tuple[np.ndarray, int]:
    """:meth:`Festival.speak` through this process's festival; a festival that failed is replaced next time."""
    owner, running = _running.get(festival, (None, None))
    if running is None or owner != os.getpid():
        running = Festival(festival)
        _running[festival] = (os.getpid(), running)
    try:
        return running.speak(text, voice, stretch, f0_mean)
    except (OSError, ValueError, subprocess.SubprocessError):
        del _running[festival]
        running.close()
        raise


def stop() -> None:
    """Close the festival this process started, if any (workers' festivals end with them)."""
    for executable, (owner, running) in list(_running.items()):
        if owner == os.getpid():
            del _running[executable]
            running.close()


def check_voices(festival: str = FESTIVAL) -> None:
    """Refuse to start a corpus without all of its festival voices."""
    running = Festival(festival)
    try:
        listed = running.command('(format stderr "%l\\n" (voice.list))', timeout=30)
    finally:
        running.close()
    missing = [voice for voice in VOICES if voice not in listed.strip("()").split()]
    if missing:
        packages = " ".join(VOICES[voice][1] for voice in missing)
        raise FestivalNotFoundError(f"{FESTIVAL} lacks the voices {', '.join(missing)}: install them with "
                                    f"'sudo apt-get install {packages}' (Debian/Ubuntu)")
