"""The Python side of CTC prefix beam search: options, the call, and the n-best list."""

from __future__ import annotations

import copy
import math

import numpy as np
import torch

from asr.beam.cache import LMCache, lm_trie, word_ids_by_node
from asr.beam.kernel import search
from asr.beam.ngram import compiled_lm
from asr.beam.tables import (
    DONE,
    FRAME,
    N_BEAM,
    N_NODES,
    N_PENDING,
    N_RECS,
    NEED_LM,
    PARENT,
    PREV,
    STATE,
    T_NEXT,
    TOKEN,
    WORD,
    Beam,
    CompiledTables,
    Prefixes,
    make_settings,
    no_compiled_tables,
)
from asr.hypothesis import Hypothesis
from asr.lm.load import NGramLM
from asr.text import Vocabulary


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
        # Built once, shared by copies (with_weights) and copied into each new cache.
        self._lm_trie, self._lm_trie_count, words, nodes = lm_trie(vocab, lm_words or ())
        # An ARPA LM is also compiled into tables the search reads without calling Python.
        self._compiled = compiled_lm(lm) if lm is not None else None
        if self._compiled is None:
            self._tables = no_compiled_tables()
        else:
            t = self._compiled.tables
            by_node = word_ids_by_node(self._lm_trie_count, words, nodes, self._compiled, self._lower)
            self._tables = CompiledTables(t.keys, t.slot_node, t.prob, t.backoff, t.suffix, t.extended, by_node)
        self._settings = self._kernel_settings()
        self._cache: LMCache | None = None  # made on first use

    def with_weights(self, alpha: float, beta: float) -> BeamSearchDecoder:
        """A copy with LM weight ``alpha`` and word bonus ``beta``, for sweeps over them.

        It shares this decoder's LM and LM-vocabulary trie (building the trie is most of the
        construction time for a large LM) but starts with an empty cache, which holds
        weighted scores.
        """
        other = copy.copy(self)  # through __getstate__ and __setstate__: the cache stays behind
        other.alpha, other.beta = alpha, beta
        other._settings = other._kernel_settings()  # the partial-word penalty is weighted by alpha
        return other

    def _kernel_settings(self) -> np.ndarray:
        """The options as the kernel reads them: a (1,) :data:`~asr.beam.tables.SETTINGS` array."""
        check_prefix = self._vocab_known and self.oov_logprob is not None and not self.restrict_to_lm_vocab
        return make_settings(
            width=self.beam_width,
            top_k=0 if self.token_top_k is None else self.token_top_k,
            space=self.vocab.space,
            min_logprob=-math.inf if self.token_min_logprob is None else self.token_min_logprob,
            skip_logprob=math.inf if self.blank_skip_threshold is None else math.log(self.blank_skip_threshold),
            oov_penalty=self.alpha * self.oov_logprob if check_prefix else 0.0,
            beam_prune=-math.inf if self.beam_prune_logprob is None else self.beam_prune_logprob,
            use_lm=self.lm is not None,
            restrict=self.restrict_to_lm_vocab,
            check_prefix=check_prefix,
            vocab_known=self._vocab_known,
            native_lm=self._compiled is not None,
            alpha=self.alpha,
            beta=self.beta,
            oov_logprob=0.0 if self.oov_logprob is None else self.oov_logprob,
            use_oov=self.oov_logprob is not None,
            lm_begin=0 if self._compiled is None else self._compiled.begin,
            unk_prob=0.0 if self._compiled is None else self._compiled.tables.unk_prob,
        )

    def __getstate__(self) -> dict:
        # The cache holds KenLM states, which do not pickle; a copy, or the decoder of another
        # process (a tune-lm worker), starts a new cache and shares or reloads the rest.
        return {name: value for name, value in self.__dict__.items() if name != "_cache"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._cache = None

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        """The best hypothesis per utterance. log_probs: (B, T, V); lengths: (B,)."""
        return [nbest[0] for nbest in self.decode_nbest(log_probs, lengths)]

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """Up to ``nbest`` hypotheses per utterance, best first. log_probs: (B, T, V); lengths: (B,)."""
        if log_probs.shape[-1] != len(self.vocab):
            raise ValueError(f"log_probs has {log_probs.shape[-1]} tokens, the vocabulary {len(self.vocab)}")
        lp = np.ascontiguousarray(log_probs.detach().float().cpu().numpy())  # (B, T, V)
        lengths = [min(int(n), lp.shape[1]) for n in lengths.cpu().tolist()]
        if self._cache is None or self._cache.full():
            self._cache = LMCache(self.vocab, self.lm, self._lm_trie, self._lm_trie_count, self.alpha, self.beta,
                                  self.oov_logprob, self._lower, self._compiled, self._tables, self._settings)
        # Each kept candidate creates at most one prefix node and one frame record.
        capacity = 1 + max(lengths, default=0) * self.beam_width
        prefixes = Prefixes(np.empty((capacity, 6), np.int64), np.empty(capacity), np.zeros(capacity, np.int64),
                            np.empty(capacity, np.int64), np.empty((capacity, 2), np.int64))
        return [self._decode_one(lp[b], n, prefixes) for b, n in enumerate(lengths)]

    def _decode_one(self, lp: np.ndarray, n_frames: int, prefixes: Prefixes) -> list[Hypothesis]:
        """The n-best of one utterance: lp (T, V), of which the first ``n_frames`` frames count."""
        width, cache, counters = self.beam_width, self._cache, self._cache.counters
        prefixes.nodes[0] = (-1, -1, -1, -1, 0, 0)  # the empty prefix; LM state 0 is <s>
        prefixes.node_lm[0] = 0.0
        prefixes.recs[0] = (-1, -1)
        beam = Beam(np.zeros(width, np.int64), np.zeros(width, np.int64), np.full(width, -math.inf),
                    np.full(width, -math.inf))
        beam.beam_pb[0] = 0.0
        counters[[N_NODES, N_RECS, N_BEAM, T_NEXT]] = 1, 1, 1, 0
        pending = np.empty((width * (lp.shape[1] + 1), 2), np.int64)  # misses + prefetches
        while True:
            status = search(lp, n_frames, self._settings, prefixes, beam, cache.table, pending, counters, self._tables)
            if status == DONE:
                break
            if status == NEED_LM:
                cache.add_scores(pending[: counters[N_PENDING]], width)
            else:
                cache.make_room(width)
        return self._finish(prefixes, beam, int(counters[N_BEAM]))

    def _finish(self, prefixes: Prefixes, beam: Beam, n_beam: int) -> list[Hypothesis]:
        """Score each of the ``n_beam`` survivors' last partial word and ``</s>``, rank them,
        and trace up to ``nbest`` with distinct texts back into hypotheses."""
        nodes, node_lm, recs = prefixes.nodes, prefixes.node_lm, prefixes.recs
        survivors = [int(beam.beam_node[i]) for i in range(n_beam)]
        lm_scores, complete = [float(node_lm[node]) for node in survivors], [True] * n_beam
        if self.lm is not None:
            # Each survivor's last word (unless it ends in a space) and </s>, scored in one batch.
            words = nodes[survivors, WORD].astype(np.int64)
            states = nodes[survivors, STATE].astype(np.int64)
            open_words = np.flatnonzero(words != 0)
            in_lm = np.array([self._cache.is_lm_word(w) for w in words[open_words]], bool)
            keys = np.where(in_lm | (not self._vocab_known), words[open_words], 0)
            fused, states[open_words] = self._cache.score_pairs(np.stack([states[open_words], keys], axis=1))
            for j, i in enumerate(open_words):
                lm_scores[i] += fused[j]
                complete[i] = bool(in_lm[j]) or not self.restrict_to_lm_vocab  # restriction forbids the rest
            ends = self._cache.end_scores(states)
            lm_scores = [score + self.alpha * end for score, end in zip(lm_scores, ends)]
        finals = []  # (total, acoustic, LM score, node, record, complete)
        for i, node in enumerate(survivors):
            acoustic = float(np.logaddexp(beam.beam_pb[i], beam.beam_pnb[i]))
            finals.append((acoustic + lm_scores[i], acoustic, lm_scores[i], node, int(beam.beam_rec[i]), complete[i]))
        if any(f[-1] for f in finals):  # drop prefixes that end inside a word the LM lacks
            finals = [f for f in finals if f[-1]]
        finals.sort(key=lambda f: -f[0])
        hyps, seen = [], set()
        for score, acoustic, lm_score, node, rec, _ in finals:
            tokens, frames = [], []
            while node > 0:
                tokens.append(int(nodes[node, TOKEN]))
                frames.append(int(recs[rec, FRAME]))
                node, rec = int(nodes[node, PARENT]), int(recs[rec, PREV])
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
