"""Text normalisation and the character vocabulary.

Transcripts are normalised the LibriSpeech way: upper-case letters, the apostrophe and
single spaces. Index 0 of every vocabulary is the CTC blank.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

BLANK = "<blank>"
SPACE = " "
DEFAULT_CHARS = " '" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_NOT_ALLOWED = re.compile(r"[^A-Z' ]+")
_SPACES = re.compile(r" +")
_DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")


def normalize_text(text: str) -> str:
    """Return ``text`` as LibriSpeech-style upper case letters, apostrophes and single spaces.

    Accented letters lose their accents (``café`` -> ``CAFE``), digits are spoken one by
    one (``42`` -> ``FOUR TWO``), other punctuation becomes a word break, and apostrophes
    that do not sit inside a word are dropped.
    """
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = re.sub(r"\d", lambda m: f" {_DIGIT_WORDS[int(m.group())]} ", text)
    text = _NOT_ALLOWED.sub(" ", text)
    words = (w.strip("'") for w in text.split(" "))
    return _SPACES.sub(" ", " ".join(w for w in words if w)).strip()


class UnknownCharacterError(ValueError):
    """A text holds a character the vocabulary cannot encode."""


@dataclass(frozen=True)
class Vocabulary:
    """Characters a model emits; ``tokens[0]`` is the CTC blank."""

    tokens: tuple[str, ...] = (BLANK,) + tuple(DEFAULT_CHARS)

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != BLANK:
            raise ValueError(f"vocabulary must start with {BLANK!r}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")

    @property
    def blank(self) -> int:
        return 0

    @property
    def space(self) -> int:
        return self.tokens.index(SPACE)

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown_characters(self, text: str) -> list[str]:
        """The characters of ``text`` the vocabulary cannot encode, sorted, each once."""
        return sorted(set(text) - self._index.keys())

    def encode(self, text: str) -> list[int]:
        """Map an already normalised text to token ids (no blanks)."""
        index = self._index
        try:
            return [index[c] for c in text]
        except KeyError as err:
            raise UnknownCharacterError(f"character {err.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: list[int]) -> str:
        """Map token ids back to text, dropping blanks."""
        return "".join(self.tokens[i] for i in ids if i != self.blank)

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", cached)
        return cached
