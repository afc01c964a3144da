"""Decoders: turn CTC log-probabilities into text.

Every decoder is called the same way, ``decoder(log_probs, lengths) -> list[Hypothesis]``,
with ``log_probs`` of shape (B, T, V) (log-softmax over V tokens, blank = 0) and
``lengths`` of shape (B,), and returns one best :class:`Hypothesis` per utterance.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from asr.beam import (
    CHAR, DONE, END, IN_LM, N_BEAM, N_HASH, N_NODES, N_PENDING, N_RECS, N_TRIE, NEED_LM, PARENT, STATE, T_NEXT,
    TOKEN, WORD, hash_insert, search, trie_build,
)
from asr.config import ConfigError
from asr.lm import NGramLM
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


_RESET_AT = 1 << 21  # invented words or cached LM scores after which the caches start afresh
# What _reset_caches sets: the LM scores and invented words found while decoding.
_CACHES = frozenset({"_trie", "_counters", "_states", "_state_ids", "_scores", "_end_scores", "_words",
                     "_h_keys", "_h_score", "_h_next"})


class BeamSearchDecoder:
    """CTC prefix beam search, optionally fused with a word n-gram LM (shallow fusion).

    A hypothesis scores ``ln P_ctc(labeling) + alpha * ln P_lm(words </s>) + beta * n_words``;
    a word is scored when a space follows it or the utterance ends. Without an LM the score
    is the CTC log-probability alone (``alpha``, ``beta`` and ``oov_logprob`` are unused).
    Labelings that differ only in extra spaces are distinct CTC labelings and are searched
    separately, though their text is the same.

    ``oov_logprob`` replaces the LM's ``<unk>`` log-probability for words outside its
    vocabulary (``None`` keeps the LM's, which toolkits often make far too likely for
    decoding: with a word bonus the search would then prefer inventing words). With an ARPA
    LM, a partial word that is no prefix of an LM word is charged ``alpha * oov_logprob``
    already while it grows, so such words leave the beam early. ``restrict_to_lm_vocab``
    forbids them outright: partial words must be prefixes of LM words and words must be LM
    words (needs an ARPA file).

    Pruning, per frame (``None`` turns each off): only tokens among the ``token_top_k``
    most likely and with log-probability at least ``token_min_logprob`` may extend a
    prefix; prefixes scoring more than ``-beam_prune_logprob`` below the best are dropped
    even when the beam has room; a frame whose blank probability exceeds
    ``blank_skip_threshold`` is taken as pure blank and extends no prefix. That last one is
    an approximation: it drops the ``1 - P(blank)`` of mass that would extend or repeat
    tokens, and lets the next repeat of a prefix's last token count as a new token.

    ``frames[i]`` is the frame at which ``tokens[i]`` entered the prefix along the entry
    that dominated when paths merged; on peaky outputs it is the greedy decoder's frame.
    :meth:`decode_nbest` returns up to ``nbest`` hypotheses with distinct texts. A decoder
    keeps an LM-score cache between calls: do not share one between threads.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        beam_width: int = 16,
        lm: NGramLM | None = None,
        alpha: float = 0.5,
        beta: float = 1.0,
        token_top_k: int | None = None,
        token_min_logprob: float | None = -10.0,
        blank_skip_threshold: float | None = 0.999,
        restrict_to_lm_vocab: bool = False,
        nbest: int = 1,
        oov_logprob: float | None = -20.0,
        beam_prune_logprob: float | None = -10.0,
    ) -> None:
        if beam_width < 1 or nbest < 1:
            raise ValueError(f"beam_width and nbest must be at least 1, got {beam_width} and {nbest}")
        if token_top_k is not None and token_top_k < 1:
            raise ValueError(f"token_top_k must be at least 1 or None, got {token_top_k}")
        if beam_prune_logprob is not None and beam_prune_logprob > 0:
            raise ValueError(f"beam_prune_logprob must be negative or None, got {beam_prune_logprob}")
        if blank_skip_threshold is not None and not 0.0 < blank_skip_threshold <= 1.0:
            raise ValueError(f"blank_skip_threshold must be in (0, 1] or None, got {blank_skip_threshold}")
        if restrict_to_lm_vocab and lm is None:
            raise ValueError("restrict_to_lm_vocab needs an LM")
        self.vocab, self.beam_width, self.lm, self.nbest = vocab, beam_width, lm, nbest
        self.alpha, self.beta, self.oov_logprob = alpha, beta, oov_logprob
        self.token_top_k, self.token_min_logprob = token_top_k, token_min_logprob
        self.beam_prune_logprob = beam_prune_logprob
        self.blank_skip_threshold, self.restrict_to_lm_vocab = blank_skip_threshold, restrict_to_lm_vocab
        self._lower = lm is not None and lm.word_case(vocab) == "lower"
        # The LM's words, when an ARPA file lists them (restriction insists on that).
        lm_words = None
        if lm is not None and (lm.words is not None or restrict_to_lm_vocab):
            lm_words = lm.spellable_words(vocab)
        self._vocab_known = lm_words is not None
        self._base_trie, self._base_trie_count = self._build_trie(lm_words or ())
        check_prefix = self._vocab_known and oov_logprob is not None and not restrict_to_lm_vocab
        self._params_f = np.array([
            -math.inf if token_min_logprob is None else token_min_logprob,
            math.inf if blank_skip_threshold is None else math.log(blank_skip_threshold),
            alpha * oov_logprob if check_prefix else 0.0,
            -math.inf if beam_prune_logprob is None else beam_prune_logprob,
        ])
        self._params_i = np.array([
            beam_width, 0 if token_top_k is None else token_top_k, vocab.space,
            int(lm is not None), int(restrict_to_lm_vocab), int(check_prefix), int(self._vocab_known),
        ], dtype=np.int64)
        self._reset_caches()

    def with_weights(self, alpha: float, beta: float) -> BeamSearchDecoder:
        """A copy with LM weight ``alpha`` and word bonus ``beta``, for sweeps over them.

        It shares this decoder's LM and LM-vocabulary trie (building the trie is most of the
        construction time for a large LM) but starts with empty score caches, which hold
        weighted scores.
        """
        other = copy.copy(self)  # through __getstate__ and __setstate__: the caches stay behind
        other.alpha, other.beta = alpha, beta
        other._params_f = self._params_f.copy()
        if self._params_i[5]:  # partial words outside the LM are charged alpha * oov_logprob
            other._params_f[2] = alpha * self.oov_logprob
        return other

    def __getstate__(self) -> dict:
        # The caches hold KenLM states, which do not pickle; a copy, or the decoder of another
        # process (a tune-lm worker), starts with empty caches and shares or reloads the rest.
        return {name: value for name, value in self.__dict__.items() if name not in _CACHES}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._reset_caches()

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        # log_probs: (B, T, V); lengths: (B,)
        return [nbest[0] for nbest in self.decode_nbest(log_probs, lengths)]

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """Up to ``nbest`` hypotheses per utterance, best first. log_probs: (B, T, V); lengths: (B,)."""
        if log_probs.shape[-1] != len(self.vocab):
            raise ValueError(f"log_probs has {log_probs.shape[-1]} tokens, the vocabulary {len(self.vocab)}")
        lp = np.ascontiguousarray(log_probs.detach().float().cpu().numpy())  # (B, T, V)
        lengths = [min(int(n), lp.shape[1]) for n in lengths.cpu().tolist()]
        if self._trie_count() - self._base_trie_count > _RESET_AT or self._counters[N_HASH] > _RESET_AT:
            self._reset_caches()
        # Each kept candidate creates at most one prefix node and one frame record.
        capacity = 1 + max(lengths, default=0) * self.beam_width
        nodes = np.empty((capacity, 6), np.int64)
        node_lm = np.empty(capacity)
        node_mark = np.zeros(capacity, np.int64)
        node_slot = np.empty(capacity, np.int64)
        recs = np.empty((capacity, 2), np.int64)
        return [self._decode_one(lp[b], n, nodes, node_lm, node_mark, node_slot, recs)
                for b, n in enumerate(lengths)]

    def _decode_one(self, lp, n_frames, nodes, node_lm, node_mark, node_slot, recs) -> list[Hypothesis]:
        width, counters = self.beam_width, self._counters
        nodes[0] = (-1, -1, -1, -1, 0, 0)  # the empty prefix; LM state 0 is <s>
        node_lm[0] = 0.0
        recs[0] = (-1, -1)
        beam_node, beam_rec = np.zeros(width, np.int64), np.zeros(width, np.int64)
        beam_pb, beam_pnb = np.full(width, -math.inf), np.full(width, -math.inf)
        beam_pb[0] = 0.0
        counters[[N_NODES, N_RECS, N_BEAM, T_NEXT]] = 1, 1, 1, 0
        pending = np.empty((width * (lp.shape[1] + 1), 2), np.int64)  # misses + prefetches
        while True:
            status = search(lp, n_frames, self._params_f, self._params_i, nodes, node_lm, node_mark, node_slot,
                             recs, self._trie, self._h_keys, self._h_score, self._h_next,
                             beam_node, beam_rec, beam_pb, beam_pnb, pending, counters)
            if status == DONE:
                break
            if status == NEED_LM:
                self._cache_words(pending[: counters[N_PENDING]])
            else:
                self._grow()
        return self._finish(nodes, node_lm, recs, beam_node, beam_rec, beam_pb, beam_pnb, int(counters[N_BEAM]))

    def _finish(self, nodes, node_lm, recs, beam_node, beam_rec, beam_pb, beam_pnb, n_beam) -> list[Hypothesis]:
        """Score each survivor's last partial word and ``</s>``, rank, and trace prefixes back."""
        finals = []
        for i in range(n_beam):
            node = int(beam_node[i])
            acoustic = float(np.logaddexp(beam_pb[i], beam_pnb[i]))
            lm_score, complete = float(node_lm[node]), True
            if self.lm is not None:
                word, state = int(nodes[node, WORD]), int(nodes[node, STATE])
                if word != 0:
                    in_lm = self._trie[word, END] == 1
                    complete = in_lm or not self.restrict_to_lm_vocab
                    fused, state = self._word_score(state, word if in_lm or not self._vocab_known else 0)
                    lm_score += fused
                lm_score += self.alpha * self._end_score(state)
            finals.append((acoustic + lm_score, acoustic, lm_score, node, int(beam_rec[i]), complete))
        if any(f[-1] for f in finals):  # drop prefixes that end inside a word the LM lacks
            finals = [f for f in finals if f[-1]]
        finals.sort(key=lambda f: -f[0])
        hyps, seen = [], set()
        for score, acoustic, lm_score, node, rec, _ in finals:
            tokens, frames = [], []
            while node > 0:
                tokens.append(int(nodes[node, TOKEN]))
                frames.append(int(recs[rec, 1]))
                node, rec = int(nodes[node, PARENT]), int(recs[rec, 0])
            tokens.reverse()
            frames.reverse()
            text = " ".join(self.vocab.decode(tokens).split())
            if text in seen:
                continue
            seen.add(text)
            extras = {"acoustic_score": acoustic, "lm_score": lm_score}
            hyps.append(Hypothesis(text, tuple(tokens), tuple(frames), score, extras))
            if len(hyps) == self.nbest:
                break
        return hyps or [Hypothesis("", score=-math.inf)]

    # --- LM scores and caches ---------------------------------------------------------

    def _build_trie(self, words: frozenset[str] | tuple) -> tuple[np.ndarray, int]:
        """A trie (nodes, 6 columns) holding ``words`` as LM words, and its node count;
        node 0 is the empty word."""
        words = sorted(words)
        trie = np.full((max(1024, 1 + sum(map(len, words))), 6), -1, np.int32)
        trie[0, END], trie[0, IN_LM] = 0, 1
        counters = np.zeros(8, np.int64)
        counters[N_TRIE] = 1
        chars = np.array([i for w in words for i in self.vocab.encode(w)], np.int64)
        trie_build(trie, counters, chars, np.cumsum([len(w) for w in words], dtype=np.int64))
        return trie, int(counters[N_TRIE])

    def _reset_caches(self) -> None:
        """Forget invented words and cached LM scores (trie node ids key the cache)."""
        self._trie = self._base_trie.copy()
        self._counters = np.zeros(8, np.int64)
        self._counters[N_TRIE] = self._base_trie_count
        self._states: list[Any] = [self.lm.begin_state()] if self.lm is not None else []
        self._state_ids: dict[Any, int] = {state: i for i, state in enumerate(self._states)}
        self._scores: dict[tuple[int, int], tuple[float, int]] = {}
        self._end_scores: dict[int, float] = {}
        self._words: dict[int, str] = {}
        self._h_keys = np.full(1024, -1, np.int64)
        self._h_score = np.empty(1024)
        self._h_next = np.empty(1024, np.int64)

    def _trie_count(self) -> int:
        return int(self._counters[N_TRIE])

    def _grow(self, new_words: int = 0) -> None:
        """Make room for a frame's new trie nodes and cache entries, and ``new_words`` more."""
        if self._trie_count() + self.beam_width > len(self._trie):
            self._trie = np.concatenate([self._trie, np.full_like(self._trie, -1)])
        size = len(self._h_keys)
        while 2 * (self._counters[N_HASH] + self.beam_width + new_words) > size:
            size *= 2  # keeps the table at most half full, so probes stay short
        if size > len(self._h_keys):
            used = self._h_keys != -1
            keys, scores, nexts = self._h_keys[used], self._h_score[used], self._h_next[used]
            self._h_keys, self._h_score = np.full(size, -1, np.int64), np.empty(size)
            self._h_next = np.empty(size, np.int64)
            self._counters[N_HASH] = 0
            hash_insert(self._h_keys, self._h_score, self._h_next, self._counters, keys, scores, nexts)

    def _word(self, node: int) -> str:
        word = self._words.get(node)
        if word is None:
            chars, at = [], node
            while at > 0:
                chars.append(self.vocab.tokens[self._trie[at, CHAR]])
                at = int(self._trie[at, PARENT])
            word = self._words[node] = "".join(reversed(chars))
        return word

    def _state_id(self, state: Any) -> int:
        index = self._state_ids.get(state)
        if index is None:
            index = self._state_ids[state] = len(self._states)
            self._states.append(state)
        return index

    def _word_score(self, state: int, node: int) -> tuple[float, int]:
        """(alpha * ln P(word | state) + beta, next state id) for the word at trie ``node``;
        node 0 stands for any word outside the LM."""
        cached = self._scores.get((state, node))
        if cached is None:
            word = self._word(node) if node else "<unk>"
            if self._lower:
                word = word.lower()
            logp, next_state = self.lm.score_word(self._states[state], word)
            if self.oov_logprob is not None and (node == 0 or word not in self.lm):
                logp = self.oov_logprob
            cached = self._scores[state, node] = (self.alpha * logp + self.beta, self._state_id(next_state))
        return cached

    def _end_score(self, state: int) -> float:
        score = self._end_scores.get(state)
        if score is None:
            score = self._end_scores[state] = self.lm.end_score(self._states[state])
        return score

    def _cache_words(self, pending: np.ndarray) -> None:
        """Score the (LM state, trie node) pairs the kernel asked for, into its hash table."""
        self._grow(len(pending))
        scored = np.array([self._word_score(state, node) for state, node in pending.tolist()])  # (N, 2)
        keys = (pending[:, 0] << 32) | pending[:, 1]
        hash_insert(self._h_keys, self._h_score, self._h_next, self._counters, keys,
                     scored[:, 0], scored[:, 1].astype(np.int64))


DECODERS = ("greedy", "beam")


@dataclass(frozen=True)
class DecodingConfig:
    """Which decoder to build, and its LM fusion weights (used only with an LM)."""

    decoder: str = "greedy"  # greedy | beam
    beam_width: int = 16
    lm: str | None = None  # word n-gram LM, ARPA or KenLM binary; needs decoder = "beam"
    alpha: float = 0.5  # weight of the natural-log LM probability
    beta: float = 1.0  # bonus per word


def build_decoder(vocab: Vocabulary, config: DecodingConfig, lm: NGramLM | None = None):
    """A decoder for ``config``: :class:`GreedyDecoder` or :class:`BeamSearchDecoder`.

    ``lm`` is an already loaded LM to use instead of loading ``config.lm``. Raises
    :class:`asr.config.ConfigError` for inconsistent options and :class:`asr.lm.LMError`
    for an LM that is missing, malformed or written in characters the model cannot emit.
    """
    if config.decoder not in DECODERS:
        raise ConfigError(f"unknown decoder {config.decoder!r}; choose one of {', '.join(DECODERS)}")
    if config.decoder == "greedy":
        if config.lm is not None or lm is not None:
            raise ConfigError("an LM is used only by the beam decoder (--decoder beam)")
        return GreedyDecoder(vocab)
    if config.beam_width < 1:
        raise ConfigError(f"beam width must be at least 1, got {config.beam_width}")
    if lm is None and config.lm is not None:
        lm = NGramLM(config.lm)
    return BeamSearchDecoder(vocab, beam_width=config.beam_width, lm=lm, alpha=config.alpha, beta=config.beta)
