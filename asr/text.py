"""Text normalisation and the vocabulary of units a model emits.

Transcripts are normalised the LibriSpeech way: upper-case letters, the apostrophe and
single spaces. Index 0 of every vocabulary is the CTC blank. Units are characters (the
default), word pieces (sentencepiece pieces, ``▁`` marking a word's start) or phones (with
``|`` between words); :mod:`asr.units` builds the last two.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field

from asr.errors import UserError

BLANK = "<blank>"
SPACE = " "
WORD_START = "\u2581"  # sentencepiece's mark of a piece that starts a word: "▁THE"
WORD_SEP = "|"  # the phone vocabulary's word separator
UNITS = ("chars", "bpe", "phones")
DEFAULT_CHARS = " '" + "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u02bc": "'"})
_NOT_ALLOWED = re.compile(r"[^A-Z' ]+")
_SPACES = re.compile(r" +")
_DIGIT_WORDS = ("ZERO", "ONE", "TWO", "THREE", "FOUR", "FIVE", "SIX", "SEVEN", "EIGHT", "NINE")
_TEENS = ("TEN", "ELEVEN", "TWELVE", "THIRTEEN", "FOURTEEN", "FIFTEEN", "SIXTEEN", "SEVENTEEN", "EIGHTEEN",
          "NINETEEN")
_TENS = ("", "", "TWENTY", "THIRTY", "FORTY", "FIFTY", "SIXTY", "SEVENTY", "EIGHTY", "NINETY")
_SCALES = ((10**9, "BILLION"), (10**6, "MILLION"), (1000, "THOUSAND"), (100, "HUNDRED"))
_ORDINAL_ENDINGS = {"ONE": "FIRST", "TWO": "SECOND", "THREE": "THIRD", "FIVE": "FIFTH", "EIGHT": "EIGHTH",
                    "NINE": "NINTH", "TWELVE": "TWELFTH"}
_LARGEST = 10**12  # longer digit strings (phone numbers, codes) are read digit by digit
_THOUSANDS_COMMA = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")
_ORDINAL = re.compile(r"\b(\d+)(?:st|nd|rd|th)\b", re.IGNORECASE)
_DECIMAL = re.compile(r"(\d+)\.(\d+)")
_NUMBER = re.compile(r"\d+")


def number_words(n: int) -> str:
    """``n`` (0 <= n < 10**12) in words, the way it is read: ``342`` -> ``THREE HUNDRED FORTY TWO``."""
    if n < 10:
        return _DIGIT_WORDS[n]
    if n < 20:
        return _TEENS[n - 10]
    if n < 100:
        return _TENS[n // 10] + (f" {_DIGIT_WORDS[n % 10]}" if n % 10 else "")
    for scale, name in _SCALES:
        if n >= scale:
            rest = n % scale
            return f"{number_words(n // scale)} {name}" + (f" {number_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def _ordinal_words(n: int) -> str:
    *head, last = number_words(n).split()
    if last in _ORDINAL_ENDINGS:
        last = _ORDINAL_ENDINGS[last]
    else:
        last = (last[:-1] + "IETH") if last.endswith("Y") else last + "TH"
    return " ".join([*head, last])


def _spoken_number(digits: str) -> str:
    # The length test comes first: int() refuses strings of more than 4,300 digits.
    if len(digits) > 1 and digits.startswith("0") or len(digits) > 12 or int(digits) >= _LARGEST:
        return " ".join(_DIGIT_WORDS[int(d)] for d in digits)
    return number_words(int(digits))


def _numbers_to_words(text: str) -> str:
    text = _THOUSANDS_COMMA.sub("", text)
    text = _ORDINAL.sub(lambda m: f" {_ordinal_words(int(m.group(1))) if len(m.group(1)) < 12 else m.group(1)} ",
                        text)
    text = _DECIMAL.sub(lambda m: f" {_spoken_number(m.group(1))} POINT "
                        + " ".join(_DIGIT_WORDS[int(d)] for d in m.group(2)) + " ", text)
    text = text.replace("%", " PERCENT ")
    return _NUMBER.sub(lambda m: f" {_spoken_number(m.group())} ", text)


def normalize_text(text: str) -> str:
    """Return ``text`` as LibriSpeech-style upper case letters, apostrophes and single spaces.

    Accented letters lose their accents (``café`` -> ``CAFE``), numbers become the words they
    are read as (``1,042`` -> ``ONE THOUSAND FORTY TWO``, ``3rd`` -> ``THIRD``, ``2.5%`` ->
    ``TWO POINT FIVE PERCENT``; a string with a leading zero or of 13 or more digits is read
    digit by digit), other punctuation becomes a word break, and apostrophes that do not sit
    inside a word are dropped. The corpus, the LM text and scoring all use this one function.
    """
    text = unicodedata.normalize("NFKD", text.translate(_APOSTROPHES))
    text = "".join(c for c in text if not unicodedata.combining(c)).upper()
    text = _numbers_to_words(text)
    text = _NOT_ALLOWED.sub(" ", text)
    words = (w.strip("'") for w in text.split(" "))
    return _SPACES.sub(" ", " ".join(w for w in words if w)).strip()


class UnknownCharacterError(UserError, ValueError):
    """A text holds a character the vocabulary cannot encode."""


@dataclass(frozen=True)
class Vocabulary:
    """The units a model emits; ``tokens[0]`` is the CTC blank.

    ``units`` says what a token is: ``chars`` (one character each), ``bpe`` (sentencepiece
    pieces) or ``phones`` (one phone each, and :data:`WORD_SEP`). It decides how token ids
    become text (:meth:`decode`).
    """

    tokens: tuple[str, ...] = (BLANK,) + tuple(DEFAULT_CHARS)
    units: str = "chars"
    # bpe: the sentencepiece model (its serialized bytes) whose pieces ``tokens[1:]`` are.
    pieces_model: bytes = field(default=b"", repr=False)
    # phones: the pronunciation lexicon, one "WORD p1 p2 ..." line per pronunciation, whose
    # phones ``tokens`` hold; a lexicon search decodes words with it.
    lexicon: tuple[str, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if not self.tokens or self.tokens[0] != BLANK:
            raise ValueError(f"vocabulary must start with {BLANK!r}")
        if len(set(self.tokens)) != len(self.tokens):
            raise ValueError("vocabulary has duplicate tokens")
        if self.units not in UNITS:
            raise ValueError(f"units = {self.units!r}: choose one of {', '.join(UNITS)}")

    @property
    def spells_words(self) -> bool:
        """Whether decoded tokens are words (characters, word pieces) rather than phones."""
        return self.units != "phones"

    @property
    def blank(self) -> int:
        return 0

    @property
    def space(self) -> int:
        return self.tokens.index(SPACE)

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown_characters(self, text: str) -> list[str]:
        """The characters (phones, for a phone vocabulary) of the unit string ``text`` that the
        vocabulary cannot encode, sorted, each once. Word pieces spell any normalised text."""
        if self.units == "bpe":
            return sorted(set(text) - set(DEFAULT_CHARS))
        return sorted(set(text.split() if self.units == "phones" else text) - self._index.keys())

    def encode(self, text: str) -> list[int]:
        """Map a unit string to token ids (no blanks): an already normalised text for
        characters and word pieces; for phones, phones separated by spaces (``|`` between
        words), as :func:`asr.units.target_units` gives them."""
        index = self._index
        if self.units == "bpe":
            return [i + 1 for i in self._pieces.encode(text)]  # the processor's ids, after the blank
        units = text.split() if self.units == "phones" else text
        try:
            return [index[c] for c in units]
        except KeyError as err:
            raise UnknownCharacterError(f"unit {err.args[0]!r} is not in the vocabulary") from None

    @property
    def _pieces(self):
        cached = self.__dict__.get("_pieces_cache")
        if cached is None:
            import sentencepiece  # only word-piece models need it

            cached = sentencepiece.SentencePieceProcessor(model_proto=self.pieces_model)
            object.__setattr__(self, "_pieces_cache", cached)
        return cached

    def decode(self, ids: list[int]) -> str:
        """Map token ids back to text, dropping blanks: words for characters and word pieces,
        phones separated by spaces (and ``|`` between words) for phones."""
        units = [self.tokens[i] for i in ids if i != self.blank]
        if self.units == "phones":
            return " ".join(units)
        text = "".join(units)
        return text.replace(WORD_START, " ") if self.units == "bpe" else text

    @property
    def _index(self) -> dict[str, int]:
        cached = self.__dict__.get("_index_cache")
        if cached is None:
            cached = {t: i for i, t in enumerate(self.tokens)}
            object.__setattr__(self, "_index_cache", cached)
        return cached
