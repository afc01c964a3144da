"""Decoders: turn CTC log-probabilities into text.

Every decoder satisfies :class:`asr.hypothesis.Decoder`: ``decoder(log_probs, lengths) ->
list[Hypothesis]``, with ``log_probs`` of shape (B, T, V) (log-softmax over V tokens, blank =
0) and ``lengths`` of shape (B,), returning one best :class:`asr.hypothesis.Hypothesis` per
utterance. This module holds the decoding settings, :func:`build_decoder` and the greedy
decoder; beam search lives in :mod:`asr.beam`, imported only when
:func:`build_decoder` builds one, so that greedy decoding never loads numba or KenLM.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from asr.errors import ConfigError
from asr.hypothesis import Decoder, Hypothesis
from asr.lm.load import NGramLM
from asr.text import SPACE, WORD_SEP, Vocabulary
from asr.units import pronunciations


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


DECODERS = ("greedy", "beam")


def word_separator(vocab: Vocabulary) -> int | None:
    """The unit between words: the space of characters, ``|`` of phones; word pieces have
    none (a piece that starts a word says so itself)."""
    for token in (SPACE, WORD_SEP):
        if token in vocab.tokens and vocab.units != "bpe":
            return vocab.tokens.index(token)
    return None


@dataclass(frozen=True)
class DecodingConfig:
    """Which decoder to build, and its LM fusion weights (used only with an LM)."""

    decoder: str = "greedy"  # greedy | beam
    beam_width: int = 16
    lm: str | None = None  # word n-gram LM, ARPA or KenLM binary; needs decoder = "beam"
    alpha: float = 0.5  # weight of the natural-log LM probability
    beta: float = 1.0  # bonus per word
    # Beam search over the words of a lexicon only: always for phone models (their
    # checkpoint's lexicon); for characters and word pieces, the LM's words spelled out.
    lexicon: bool = False


def build_decoder(vocab: Vocabulary, config: DecodingConfig, lm: NGramLM | None = None) -> Decoder:
    """A decoder for ``config``: :class:`GreedyDecoder` or :class:`asr.beam.BeamSearchDecoder`.

    ``lm`` is an already loaded LM to use instead of loading ``config.lm``. Raises
    :class:`asr.errors.ConfigError` for inconsistent options and :class:`asr.lm.load.LMError`
    for an LM that is missing, malformed or written in characters the model cannot emit.
    """
    if config.decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {config.decoder!r}; choose one of {', '.join(DECODERS)}")
    if config.decoder == "greedy":
        if config.lm is not None or lm is not None:
            raise ConfigError("an LM is used only by the beam decoder (decoder 'beam')")
        return GreedyDecoder(vocab)
    if config.beam_width < 1:
        raise ConfigError(f"beam width must be at least 1, got {config.beam_width}")
    if lm is None and config.lm is not None:
        lm = NGramLM(config.lm)
    # Imported here: they load numba, which the greedy decoder does without.
    # Word pieces have no space to end a word at, so their beam search is a lexicon search.
    if config.lexicon or vocab.units != "chars":
        from asr.beam.lexicon import LexiconBeamSearchDecoder

        if vocab.spells_words and (lm is None or lm.words is None):
            raise ConfigError("a lexicon search of a character or word-piece model takes its words from an ARPA LM: "
                              "give one with --lm")
        # A spelled word ends at a space (else one long word reads as several short ones), and
        # so does a phone word without an LM: nothing else says where words end. espeak-ng's
        # phones join some words without one ("on the"), so with an LM, which weighs the
        # readings, the separator between phone words is optional (test WER 32.45% against
        # 34.41% required; without an LM 63.81% required against 75.08%; models of 5d563fd:
        # docs/benchmarks.md).
        return LexiconBeamSearchDecoder(vocab, pronunciations(vocab, lm.words if vocab.spells_words else None),
                                        beam_width=config.beam_width, lm=lm, alpha=config.alpha, beta=config.beta,
                                        word_sep=word_separator(vocab),
                                        sep_required=vocab.units == "chars" or (vocab.units == "phones" and lm is None))
    from asr.beam import BeamSearchDecoder

    return BeamSearchDecoder(vocab, beam_width=config.beam_width, lm=lm, alpha=config.alpha, beta=config.beta)
