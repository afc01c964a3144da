"""What every decoder returns (:class:`Hypothesis`) and the interface every decoder has
(:class:`Decoder`, and :class:`WeightedDecoder` for one fused with an LM).

A leaf module: the greedy decoder (:mod:`asr.decode`), beam search (:mod:`asr.beam`) and
everything that consumes hypotheses import it, and it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch


@dataclass(frozen=True)
class Hypothesis:
    """One decoded utterance.

    ``tokens`` are vocabulary ids with blanks and repeats removed; ``frames[i]`` is the
    output frame at which ``tokens[i]`` was first emitted; ``score`` is the decoder's total
    log score (acoustic log-probability, plus the weighted LM score and word bonus when a
    language model is used).
    """

    text: str
    tokens: tuple[int, ...] = ()
    frames: tuple[int, ...] = ()
    score: float = 0.0
    extras: dict = field(default_factory=dict, compare=False)


@runtime_checkable
class Decoder(Protocol):
    """The interface every decoder has (:class:`asr.decode.GreedyDecoder`,
    :class:`asr.beam.BeamSearchDecoder`), and all that evaluation and transcription use."""

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        """One best hypothesis per utterance.

        log_probs: (B, T, V) log-softmax over the vocabulary, blank = 0, any device.
        lengths: (B,) valid frames of each utterance; frames past them are ignored.
        """
        ...


class WeightedDecoder(Decoder, Protocol):
    """A beam search fused with an LM (:class:`asr.beam.BeamSearchDecoder`,
    :class:`asr.beam.lexicon.LexiconBeamSearchDecoder`), whose weights a sweep changes."""

    def with_weights(self, alpha: float, beta: float) -> WeightedDecoder:
        """A copy with LM weight ``alpha`` and word bonus ``beta``, sharing what it can."""
        ...
