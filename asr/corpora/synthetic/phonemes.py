"""The phones espeak-ng speaks: exact targets for phone models, and pronunciations for lexicons.

espeak-ng's voice variants change voice quality and prosody, never phonemes, so the base
voice's phoneme string (``espeak-ng -x``) is what every variant of that accent says. Phones
are espeak-ng's own mnemonics (``t``, ``@2``, ``oU``, ``3:``) with stress marks and lone
length marks dropped;
espeak-ng joins some function words into one group ("on the" -> ``O2nD@2``), which the
phone string keeps as it was spoken.

The phonemes come from libespeak-ng (``espeak_TextToPhonemes``, the translation ``espeak-ng
-q -x`` prints, without the synthesis the command runs as well): the same strings, about 30
times faster. Where the library cannot be loaded, the ``espeak-ng`` command gives them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import subprocess
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

from asr.corpora.synthetic.espeak import ESPEAK, ESPEAK_TIMEOUT, VOICES
from asr.text import WORD_SEP

STRESS = str.maketrans("", "", "',%=")  # primary, secondary, unstressed, stress-on-previous marks
# A length mark standing alone (espeak-ng lengthens the sounds before a pause, "l_:_:"): no
# phone of its own, and a model that learns it emits it through the pause after a word,
# which then times the word to the pause's end.
LENGTH_MARK = ":"
SEPARATOR = "_"  # --sep: between the phones of a word
US_ENGLISH = "en-us"  # the accent taken for voices of other engines


def phone_voice(voice: str) -> str:
    """The espeak-ng voice whose phonemes a speaker's voice says: itself for espeak-ng's
    English voices, US English for every other engine's voices."""
    return voice if voice in VOICES else US_ENGLISH


def phone_string(line: str) -> str:
    """One line of ``espeak-ng -x --sep=_`` as a phone string: ``D @2 | k a t``."""
    words = []
    for group in line.split():
        phones = [p for p in (raw.translate(STRESS) for raw in group.split(SEPARATOR)) if p and p != LENGTH_MARK]
        if phones:
            words.append(" ".join(phones))
    return f" {WORD_SEP} ".join(words)


class _Voice(ctypes.Structure):  # speak_lib.h's espeak_VOICE
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p), ("identifier", ctypes.c_char_p),
                ("gender", ctypes.c_ubyte), ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte),
                ("xx1", ctypes.c_ubyte), ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


class _Library:
    """libespeak-ng in this process. It keeps one voice in global state, so every call holds
    the lock."""

    SYNCHRONOUS, DONT_EXIT, UTF8 = 0x02, 0x8000, 1  # speak_lib.h: no audio device; errors return

    def __init__(self, lib: ctypes.CDLL) -> None:
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByProperties.argtypes = [ctypes.POINTER(_Voice)]
        lib.espeak_TextToPhonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]
        lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        if lib.espeak_Initialize(self.SYNCHRONOUS, 0, None, self.DONT_EXIT) <= 0:
            raise OSError("libespeak-ng found no voice data")
        self.lib, self.lock, self.voice = lib, threading.Lock(), ""

    def set_voice(self, voice: str) -> bool:
        # As `espeak-ng -v`: a voice's name, else the best voice for it as a language ("en-gb").
        if voice != self.voice:
            name = voice.encode()
            if self.lib.espeak_SetVoiceByName(name) != 0 and \
                    self.lib.espeak_SetVoiceByProperties(ctypes.byref(_Voice(languages=name))) != 0:
                return False
            self.voice = voice
        return True

    def line(self, text: str) -> str:
        """What ``espeak-ng -q -x --sep=_`` prints for ``text``: its clauses joined by spaces."""
        buf = ctypes.create_string_buffer(f"{text.lower()}.".encode())
        pointer = ctypes.c_char_p(ctypes.addressof(buf))  # the library moves it to the next clause
        clauses = []
        while pointer.value:
            at = ctypes.cast(pointer, ctypes.c_void_p).value
            phonemes = self.lib.espeak_TextToPhonemes(ctypes.byref(pointer), self.UTF8, ord(SEPARATOR) << 8)
            clauses.append((phonemes or b"").decode("utf-8", "replace"))
            if ctypes.cast(pointer, ctypes.c_void_p).value == at:
                break  # no further: not a library this code knows
        return " ".join(clauses)


_library: _Library | None = None
_library_tried = False
_library_lock = threading.Lock()


def _espeak_library() -> _Library | None:
    """libespeak-ng, loaded once; None where it is missing or finds no voice data."""
    global _library, _library_tried
    with _library_lock:
        if not _library_tried:
            _library_tried = True
            path = ctypes.util.find_library("espeak-ng")
            try:
                _library = _Library(ctypes.CDLL(path)) if path else None
            except (OSError, AttributeError):
                _library = None
        return _library


def _library_phonemize(texts: Sequence[str], voice: str) -> list[str] | None:
    library = _espeak_library()
    if library is None:
        return None
    with library.lock:
        if not library.set_voice(voice):
            return None
        return [phone_string(library.line(text)) for text in texts]


def _espeak_lines(texts: Sequence[str], voice: str, espeak: str) -> list[str]:
    # A full stop ends each text's clause, so espeak-ng prints one line per text.
    stdin = "".join(f"{text.lower()}.\n" for text in texts)
    run = subprocess.run([espeak, "-q", "-x", f"--sep={SEPARATOR}", "-v", voice], input=stdin, capture_output=True,
                         text=True, check=True, timeout=ESPEAK_TIMEOUT + len(texts) * 0.05)
    return run.stdout.splitlines()


def phonemize(texts: Sequence[str], voice: str, espeak: str = ESPEAK, batch: int = 2000) -> list[str]:
    """Each of ``texts`` (normalised: words and apostrophes) as the phone string espeak-ng's
    ``voice`` speaks; ``""`` for a text it says nothing for.

    From libespeak-ng where it loads and knows the voice; else texts go to one ``espeak``
    process ``batch`` at a time, and a batch whose output does not come back one line per text
    (a text espeak-ng broke into clauses) is redone one text a call.
    """
    phones = _library_phonemize(texts, voice)
    if phones is not None:
        return phones
    return _command_phonemize(texts, voice, espeak, batch)


def _command_phonemize(texts: Sequence[str], voice: str, espeak: str, batch: int) -> list[str]:
    out: list[str] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        lines = _espeak_lines(chunk, voice, espeak)
        if len(lines) != len(chunk):
            lines = [" ".join(_espeak_lines([text], voice, espeak)) for text in chunk]
        out += [phone_string(line) for line in lines]
    return out


def phonemize_by_voice(items: Iterable[tuple[str, str]], espeak: str = ESPEAK, jobs: int = 2) -> list[str]:
    """Phone strings for (text, voice) pairs, in order: ``jobs`` espeak-ng processes at once,
    or one voice after another where the library (one voice in one process) gives them."""
    items = list(items)
    by_voice: dict[str, list[int]] = {}
    for i, (_, voice) in enumerate(items):
        by_voice.setdefault(phone_voice(voice), []).append(i)
    out = [""] * len(items)

    def run(voice: str) -> None:
        indices = by_voice[voice]
        for i, phones in zip(indices, phonemize([items[i][0] for i in indices], voice, espeak)):
            out[i] = phones

    if _espeak_library() is not None:
        jobs = 1  # threads would only take turns on the library's lock
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(run, by_voice))
    return out
