"""Word and character error rates, with substitution, deletion and insertion counts."""

from __future__ import annotations

from dataclasses import dataclass

import jiwer


@dataclass(frozen=True)
class ErrorCounts:
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    reference_length: int = 0  # words (or characters) in the reference

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def rate(self) -> float:
        """Errors per reference unit; an empty reference scores 0 if the hypothesis is empty too."""
        if self.reference_length == 0:
            return 0.0 if self.errors == 0 else float("inf")
        return self.errors / self.reference_length

    def __add__(self, other: "ErrorCounts") -> "ErrorCounts":
        return ErrorCounts(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )


def _counts(ref: list[str], hyp: list[str]) -> ErrorCounts:
    if not ref:
        return ErrorCounts(insertions=len(hyp))
    if not hyp:
        return ErrorCounts(deletions=len(ref), reference_length=len(ref))
    # jiwer aligns lists of tokens given as space-joined strings; tokens never hold spaces here.
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return ErrorCounts(out.substitutions, out.deletions, out.insertions, len(ref))


def word_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Word-level Levenshtein alignment counts of two normalised texts."""
    return _counts(reference.split(), hypothesis.split())


def char_errors(reference: str, hypothesis: str) -> ErrorCounts:
    """Character-level counts; spaces count as characters, runs of spaces as one."""
    # jiwer splits on whitespace, so the space character travels as "|".
    def chars(text: str) -> list[str]:
        return list("|".join(text.split()))

    return _counts(chars(reference), chars(hypothesis))


def corpus_errors(pairs: list[tuple[str, str]]) -> tuple[ErrorCounts, ErrorCounts]:
    """Summed word and character counts over (reference, hypothesis) pairs."""
    words, chars = ErrorCounts(), ErrorCounts()
    for ref, hyp in pairs:
        words += word_errors(ref, hyp)
        chars += char_errors(ref, hyp)
    return words, chars
