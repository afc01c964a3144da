"""The phones espeak-ng speaks: exact targets for phone models, and pronunciations for lexicons.

espeak-ng's voice variants change voice quality and prosody, never phonemes, so the base
voice's phoneme string (``espeak-ng -x``) is what every variant of that accent says. Phones
are espeak-ng's own mnemonics (``t``, ``@2``, ``oU``, ``3:``) with stress marks and lone
length marks dropped;
espeak-ng joins some function words into one group ("on the" -> ``O2nD@2``), which the
phone string keeps as it was spoken.
"""

from __future__ import annotations

import subprocess
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


def _espeak_lines(texts: Sequence[str], voice: str, espeak: str) -> list[str]:
    # A full stop ends each text's clause, so espeak-ng prints one line per text.
    stdin = "".join(f"{text.lower()}.\n" for text in texts)
    run = subprocess.run([espeak, "-q", "-x", f"--sep={SEPARATOR}", "-v", voice], input=stdin, capture_output=True,
                         text=True, check=True, timeout=ESPEAK_TIMEOUT + len(texts) * 0.05)
    return run.stdout.splitlines()


def phonemize(texts: Sequence[str], voice: str, espeak: str = ESPEAK, batch: int = 2000) -> list[str]:
    """Each of ``texts`` (normalised: words and apostrophes) as the phone string espeak-ng's
    ``voice`` speaks; ``""`` for a text it says nothing for.

    Texts go to one espeak-ng process ``batch`` at a time; a batch whose output does not come
    back one line per text (a text espeak-ng broke into clauses) is redone one text a call.
    """
    out: list[str] = []
    for start in range(0, len(texts), batch):
        chunk = texts[start:start + batch]
        lines = _espeak_lines(chunk, voice, espeak)
        if len(lines) != len(chunk):
            lines = [" ".join(_espeak_lines([text], voice, espeak)) for text in chunk]
        out += [phone_string(line) for line in lines]
    return out


def phonemize_by_voice(items: Iterable[tuple[str, str]], espeak: str = ESPEAK, jobs: int = 2) -> list[str]:
    """Phone strings for (text, voice) pairs, in order: one espeak-ng process per voice at a
    time, ``jobs`` voices at once."""
    items = list(items)
    by_voice: dict[str, list[int]] = {}
    for i, (_, voice) in enumerate(items):
        by_voice.setdefault(phone_voice(voice), []).append(i)
    out = [""] * len(items)

    def run(voice: str) -> None:
        indices = by_voice[voice]
        for i, phones in zip(indices, phonemize([items[i][0] for i in indices], voice, espeak)):
            out[i] = phones

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(run, by_voice))
    return out
