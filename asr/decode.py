"""Decoders: turn CTC log-probabilities into text.

Every decoder is called the same way, ``decoder(log_probs, lengths) -> list[Hypothesis]``,
with ``log_probs`` of shape (B, T, V) (log-softmax over V tokens, blank = 0) and
``lengths`` of shape (B,), and returns one best :class:`Hypothesis` per utterance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from asr.text import Vocabulary


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


class GreedyDecoder:
    """Best path: arg-max per frame, then collapse repeats and drop blanks."""

    def __init__(self, vocab: Vocabulary) -> None:
        self.vocab = vocab

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        # log_probs: (B, T, V); lengths: (B,)
        best_scores, best_ids = log_probs.max(dim=-1)  # (B, T)
        best_ids, best_scores, lengths = best_ids.cpu(), best_scores.float().cpu(), lengths.cpu()
        hyps = []
        for ids, scores, n in zip(best_ids, best_scores, lengths.tolist()):
            ids = ids[:n]
            # A token is emitted where it differs from the previous frame and is not blank.
            changed = torch.ones(n, dtype=torch.bool)
            changed[1:] = ids[1:] != ids[:-1]
            keep = changed & (ids != self.vocab.blank)
            frames = keep.nonzero().flatten().tolist()
            tokens = ids[keep].tolist()
            text = " ".join(self.vocab.decode(tokens).split())
            hyps.append(Hypothesis(text, tuple(tokens), tuple(frames), float(scores[:n].sum())))
        return hyps
