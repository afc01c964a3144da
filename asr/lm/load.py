"""Word n-gram language models: load and score them with KenLM (:class:`NGramLM`).

``kenlm`` is an optional dependency (``pip install 'asr[lm]'``). Scores are natural logs, the
unit of the acoustic model's log-probabilities. Building LMs is :mod:`asr.lm.build`'s job;
compiling one into tables for beam search is :mod:`asr.beam.ngram`'s.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import struct
from pathlib import Path
from typing import Any

from asr.errors import UserError
from asr.text import BLANK, Vocabulary

LOG_10 = math.log(10.0)  # KenLM and ARPA files score in log10
_SPECIAL_WORDS = frozenset({"<s>", "</s>", "<unk>", "<UNK>"})
# KenLM binary format 5 (lm/binary_format.cc): an 88-byte sanity header, then order (uchar),
# probing multiplier (float), model type (int), has-vocabulary (bool), search version (uint),
# then one uint64 count per order. With the vocabulary, the file ends in its words, each
# ending in NUL, in word-index order, <unk> first.
_BINARY_MAGIC = b"mmap lm http://kheafield.com/code format version 5\n\0"
_BINARY_PARAMS = struct.Struct("<B3xfi?3xI")
_BINARY_PARAMS_AT = 88
# Probes for the case of a binary LM built without its word list (build_binary -v).
_CASE_PROBES = ("the", "and", "of", "to", "a", "in", "i", "that", "it", "was")


class LMError(UserError, ValueError):
    """A language model file is missing, malformed or does not fit the acoustic model."""


class LMDependencyError(UserError, RuntimeError):
    """A program or module needed for language models is not installed."""


def import_kenlm() -> Any:
    try:
        import kenlm
    except ImportError:
        raise LMDependencyError(
            "the kenlm module is not installed; install it with: pip install 'asr[lm]' (or pip install kenlm)"
        ) from None
    return kenlm


def utf8_line(raw: bytes, path: Path, number: int, what: str) -> str:
    """Line ``number`` of ``path`` as text, or an :class:`LMError` naming the line and byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise LMError(f"{path}:{number}: not UTF-8 text (byte 0x{raw[err.start]:02x} at column "
                      f"{err.start + 1}); write {what} in UTF-8") from None


def read_arpa_unigrams(path: Path) -> frozenset[str]:
    """Return the words of an ARPA file's ``\\1-grams:`` section (``.gz`` allowed), minus
    ``<s>``, ``</s>`` and ``<unk>``; stops reading at the 2-grams."""
    opener = gzip.open if path.suffix == ".gz" else open
    words = set()
    in_unigrams = False
    with opener(path, "rb") as f:
        for number, raw in enumerate(f, 1):
            line = utf8_line(raw, path, number, "the LM").strip()
            if line == "\\1-grams:":
                in_unigrams = True
            elif line.startswith("\\"):
                if in_unigrams:
                    break
            elif in_unigrams and line:
                fields = line.split()
                if len(fields) < 2:
                    raise LMError(f"{path}: malformed 1-gram line {line!r}")
                words.add(fields[1])
    if not in_unigrams:
        raise LMError(f"{path}: not an ARPA file (no \\1-grams: section)")
    return frozenset(words - _SPECIAL_WORDS)


def read_binary_words(path: Path) -> frozenset[str] | None:
    """Return the words of a KenLM binary file, minus ``<s>``, ``</s>`` and ``<unk>``, or
    ``None`` when it was built without them (``build_binary -v``) or is not a binary."""
    with open(path, "rb") as f:
        head = f.read(_BINARY_PARAMS_AT + _BINARY_PARAMS.size)
        if not head.startswith(_BINARY_MAGIC) or len(head) < _BINARY_PARAMS_AT + _BINARY_PARAMS.size:
            return None
        order, _, _, has_vocabulary, _ = _BINARY_PARAMS.unpack_from(head, _BINARY_PARAMS_AT)
        if not has_vocabulary or order < 1:
            return None
        (n_words,) = struct.unpack("<Q", f.read(8))
        # The words fill the end of the file; read back from it until all of them are in.
        size = f.seek(0, os.SEEK_END)
        tail, chunk = b"", 1 << 20
        while tail.count(b"\0") <= n_words and len(tail) < size:
            chunk = min(2 * chunk, size)
            f.seek(size - chunk)
            tail = f.read(chunk)
    words = tail.split(b"\0")[-1 - n_words:-1]
    # The search structures end just before <unk> with bytes that need not be NUL.
    if len(words) != n_words or not words[0].endswith(b"<unk>"):
        return None
    try:
        return frozenset(w.decode("utf-8") for w in words[1:]) - _SPECIAL_WORDS
    except UnicodeDecodeError:
        raise LMError(f"{path}: the LM's words are not UTF-8 text; build it from UTF-8 text") from None


def arpa_counts(path: Path) -> list[int]:
    """The n-gram counts of an ARPA file's ``\\data\\`` header, lowest order first."""
    opener = gzip.open if path.suffix == ".gz" else open
    counts = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("ngram ") and "=" in line:
                try:
                    counts.append(int(line.split("=", 1)[1]))
                except ValueError:
                    raise LMError(f"{path}: malformed ARPA header line {line[:80]!r}") from None
            elif line.startswith("\\") and line != "\\data\\":
                break
    return counts


def is_arpa(path: Path) -> bool:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            head = f.read(4096)
    except (OSError, EOFError):
        return False
    return head.lstrip().startswith(b"\\data\\")


class NGramLM:
    """A word n-gram LM read by KenLM from an ARPA or KenLM binary file.

    ``words`` is the LM vocabulary (from the ARPA 1-grams or the end of a KenLM binary;
    ``None`` for a binary built without it, ``build_binary -v``). Words are passed in the
    LM's own spelling; see :meth:`word_case` for matching it to an acoustic vocabulary.
    """

    def __init__(self, path: str | Path) -> None:
        kenlm = import_kenlm()
        self.path = Path(path)
        if not self.path.is_file():
            raise LMError(f"{self.path}: language model file not found")
        # The words first: a file that is not UTF-8 is named with its line before KenLM reads it.
        self.words: frozenset[str] | None = (read_arpa_unigrams(self.path) if is_arpa(self.path)
                                             else read_binary_words(self.path))
        config = kenlm.Config()
        config.show_progress = False
        config.arpa_complain = kenlm.ARPALoadComplain.NONE
        try:
            self._model = kenlm.Model(str(self.path), config)
        except (OSError, RuntimeError) as err:
            reason = _kenlm_reason(err)
            raise LMError(f"{self.path}: not a valid ARPA or KenLM binary language model ({reason})") from None
        self.order: int = self._model.order
        self._kenlm = kenlm

    def __reduce__(self) -> tuple:
        # A KenLM model does not pickle: another process (a tune-lm worker) loads the file again.
        return NGramLM, (self.path,)

    def begin_state(self) -> Any:
        """The state after ``<s>``."""
        state = self._kenlm.State()
        self._model.BeginSentenceWrite(state)
        return state

    def score_word(self, state: Any, word: str) -> tuple[float, Any]:
        """Return ``(ln P(word | state), next state)``; unknown words get ``<unk>``'s score."""
        out = self._kenlm.State()
        return self._model.BaseScore(state, word, out) * LOG_10, out

    def end_score(self, state: Any) -> float:
        """``ln P(</s> | state)``."""
        return self._model.BaseScore(state, "</s>", self._kenlm.State()) * LOG_10

    def score_sentence(self, words: list[str]) -> float:
        """``ln P(words </s> | <s>)``."""
        state, total = self.begin_state(), 0.0
        for word in words:
            logp, state = self.score_word(state, word)
            total += logp
        return total + self.end_score(state)

    def __contains__(self, word: str) -> bool:
        return word in self._model

    def word_case(self, vocab: Vocabulary) -> str:
        """How the decoder must spell words for this LM: ``"same"`` or ``"lower"``.

        An LM written in lower case is used with an upper-case model by lower-casing each
        word before it is scored, so no LM file needs rewriting. Raise :class:`LMError` when
        the LM's words mostly use characters the model cannot emit, since the LM would then
        score nearly every hypothesis as unknown.
        """
        letters = {t for t in vocab.tokens if t != BLANK and len(t) == 1}
        model_upper = any(c.isupper() for c in letters) and not any(c.islower() for c in letters)
        if self.words is None:
            lower = any(w in self for w in _CASE_PROBES) and not any(w.upper() in self for w in _CASE_PROBES)
            return "lower" if model_upper and lower else "same"
        if not self.words:
            raise LMError(f"{self.path}: the LM has no words")
        lm_chars = set("".join(self.words))
        case = "same"
        if model_upper and any(c.islower() for c in lm_chars) and not any(c.isupper() for c in lm_chars):
            case = "lower"
        spell = str.upper if case == "lower" else str
        unreachable = [w for w in self.words if not set(spell(w)) <= letters]
        if 2 * len(unreachable) > len(self.words):
            bad = sorted({c for w in unreachable for c in spell(w)} - letters)
            if model_upper and all(c.islower() for c in bad):
                what = "lower-case letters (the LM is mixed case; the model emits upper case only)"
            else:
                what = "characters the model cannot emit: " + " ".join(repr(c) for c in bad[:20])
            raise LMError(
                f"{self.path}: {len(unreachable)} of {len(self.words)} LM words use {what}; "
                "build the LM from text normalised with asr.text.normalize_text"
            )
        return case

    def spellable_words(self, vocab: Vocabulary) -> frozenset[str]:
        """The LM words the model can spell, in the model's spelling (for prefix restriction)."""
        if self.words is None:
            raise LMError(f"{self.path}: restricting to the LM vocabulary needs the ARPA file "
                          "(this KenLM binary was built without its words, build_binary -v)")
        letters = set(vocab.tokens[1:]) - {" "}
        spell = str.upper if self.word_case(vocab) == "lower" else str
        return frozenset(w for w in map(spell, self.words) if set(w) <= letters)


def _kenlm_reason(err: BaseException) -> str:
    """KenLM's own explanation, without its source location and C++ signature."""
    message = " ".join(str(err).split())
    reason = re.sub(r"^Cannot read model '.*?' \(", "", message)
    reason = re.split(r"threw \w+\.? ?", reason)[-1]
    reason = re.sub(r"\s*Byte: \d+\)*$|\)+$", "", reason).strip()
    return reason or type(err).__name__
