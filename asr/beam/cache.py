"""What beam search learns about its LM while it decodes, kept from one call to the next."""

from __future__ import annotations

from typing import Any

import numpy as np

from asr.beam.jit import _jit
from asr.beam.kernel import hash_insert, lm_node, native_scores, trie_build
from asr.beam.ngram import LOG_10, CompiledLM, NGramTables, score_word
from asr.beam.tables import (
    CHAR,
    END,
    IN_LM,
    N_COUNTERS,
    N_HASH,
    N_TRIE,
    PARENT,
    CompiledTables,
    WordTable,
)
from asr.lm.load import NGramLM
from asr.text import Vocabulary

_RESET_AT = 1 << 21  # invented words or cached LM scores after which a decoder starts a new cache
_HASH_SIZE = 1024  # initial hash table slots; doubled as needed


def lm_trie(vocab: Vocabulary, words: frozenset[str] | tuple) -> tuple[np.ndarray, int, list[str], np.ndarray]:
    """A trie ((nodes, 6) int32, :class:`~asr.beam.tables.WordTable` columns) holding
    ``words`` as LM words, with room to grow, and its node count; node 0 is the empty word.
    Also the words, sorted, and the trie node of each."""
    words = sorted(words)
    trie = np.full((max(1024, 1 + sum(map(len, words))), 6), -1, np.int32)
    trie[0, END], trie[0, IN_LM] = 0, 1
    counters = np.zeros(N_COUNTERS, np.int64)
    counters[N_TRIE] = 1
    chars = np.array([i for w in words for i in vocab.encode(w)], np.int64)
    nodes = trie_build(trie, counters, chars, np.cumsum([len(w) for w in words], dtype=np.int64))
    return trie, int(counters[N_TRIE]), words, nodes


def word_ids_by_node(size: int, words: list[str], nodes: np.ndarray, compiled: CompiledLM,
                     lower: bool) -> np.ndarray:
    """(size,) int64: the compiled LM's word id at each word's trie node (``words`` in the
    vocabulary's spelling, at ``nodes``; ``lower``: the LM spells them in lower case), -1 elsewhere."""
    by_node = np.full(size, -1, np.int64)
    by_node[nodes] = [compiled.word_id(w.lower() if lower else w) for w in words]
    return by_node


@_jit
def _end_native(t: NGramTables, begin: int, eos: int, states: np.ndarray, out: np.ndarray) -> None:
    for i in range(states.shape[0]):
        out[i] = score_word(t, lm_node(states[i], begin), eos)[0] * LOG_10


class LMCache:
    """The kernel's :class:`~asr.beam.tables.WordTable` (a trie of partial words that starts
    as ``trie``, the LM's vocabulary, and the hash table of weighted word scores), its
    ``counters``, and on the Python side the KenLM states behind the table's LM state ids
    (state 0 is ``<s>``) and the words behind its trie nodes.

    Its scores are weighted, ``alpha * ln P(word | state) + beta``, so a cache serves one
    (alpha, beta). It holds KenLM states, which do not pickle: a decoder never copies its
    cache, it starts a new one.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        lm: NGramLM | None,
        trie: np.ndarray,
        trie_count: int,
        alpha: float,
        beta: float,
        oov_logprob: float | None,
        lower: bool,
        compiled: CompiledLM | None = None,
        tables: CompiledTables | None = None,
        settings: np.ndarray | None = None,
    ) -> None:
        self.vocab, self.lm, self.alpha, self.beta, self.oov_logprob = vocab, lm, alpha, beta, oov_logprob
        # With a compiled LM (an ARPA file), scores come from the kernel's own scoring
        # (kernel.native_score, with the search's ``tables`` and ``settings``) and state ids are
        # the LM's nodes (kernel.lm_node); otherwise from KenLM, one Python call per pair.
        self.compiled, self._tables, self._settings = compiled, tables, settings
        self._lower = lower  # the LM's words are lower case, the vocabulary's upper case
        self._trie_count = trie_count
        self.table = WordTable(trie.copy(), np.full(_HASH_SIZE, -1, np.int64), np.empty(_HASH_SIZE),
                               np.empty(_HASH_SIZE, np.int64))
        self.counters = np.zeros(N_COUNTERS, np.int64)  # also one utterance's search progress
        self.counters[N_TRIE] = trie_count
        self._states: list[Any] = [lm.begin_state()] if lm is not None else []
        self._state_ids: dict[Any, int] = {state: i for i, state in enumerate(self._states)}
        self._scores: dict[tuple[int, int], tuple[float, int]] = {}
        self._end_scores: dict[int, float] = {}
        self._words: dict[int, str] = {}

    def full(self) -> bool:
        """Whether it holds so many invented words or scores that a new cache should take over."""
        return self.counters[N_TRIE] - self._trie_count > _RESET_AT or self.counters[N_HASH] > _RESET_AT

    def is_lm_word(self, node: int) -> bool:
        """Whether the partial word at trie ``node`` is a word of the LM's vocabulary."""
        return bool(self.table.trie[node, END] == 1)

    def make_room(self, width: int, new_words: int = 0) -> None:
        """Make room for a frame's new trie nodes and scores with beam ``width``, and
        ``new_words`` more scores."""
        old = self.table
        if self.counters[N_TRIE] + width > len(old.trie):
            self.table = self.table._replace(trie=np.concatenate([old.trie, np.full_like(old.trie, -1)]))
        size = len(old.h_keys)
        while 2 * (self.counters[N_HASH] + width + new_words) > size:
            size *= 2  # keeps the table at most half full, so probes stay short
        if size > len(old.h_keys):
            used = old.h_keys != -1
            self.table = self.table._replace(h_keys=np.full(size, -1, np.int64), h_score=np.empty(size),
                                             h_next=np.empty(size, np.int64))
            self.counters[N_HASH] = 0
            self._insert(old.h_keys[used], old.h_score[used], old.h_next[used])

    def add_scores(self, pending: np.ndarray, width: int) -> None:
        """Score the (LM state id, trie node) pairs the kernel asked for, ``pending``: (N, 2)
        int64, into the hash table (searching with beam ``width``)."""
        self.make_room(width, len(pending))
        scores, nexts = self._score_many(np.ascontiguousarray(pending, np.int64))
        self._insert((pending[:, 0] << 32) | pending[:, 1], scores, nexts)

    def score_pairs(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(weighted scores, next state ids) of (LM state id, trie node) pairs, (N, 2) int64."""
        return self._score_many(np.ascontiguousarray(pairs, np.int64).reshape(-1, 2))

    def end_scores(self, states: np.ndarray) -> np.ndarray:
        """ln P(</s> | state) of each LM state id, unweighted."""
        if self.compiled is None:
            return np.array([self.end_score(int(s)) for s in states])
        out = np.empty(len(states))
        _end_native(self.compiled.tables, self.compiled.begin, self.compiled.eos, np.asarray(states, np.int64), out)
        return out

    def _score_many(self, pending: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.compiled is None:
            scored = np.array([self.word_score(state, node) for state, node in pending.tolist()]).reshape(-1, 2)
            return scored[:, 0].copy(), scored[:, 1].astype(np.int64)
        scores, nexts = np.empty(len(pending)), np.empty(len(pending), np.int64)
        native_scores(self._tables, self._settings, pending, scores, nexts)
        return scores, nexts

    def _insert(self, keys: np.ndarray, scores: np.ndarray, nexts: np.ndarray) -> None:
        table = self.table
        hash_insert(table.h_keys, table.h_score, table.h_next, self.counters, keys, scores, nexts)

    def word_score(self, state: int, node: int) -> tuple[float, int]:
        """(alpha * ln P(word | state) + beta, next state id) for the word at trie ``node``;
        node 0 stands for any word outside the LM."""
        if self.compiled is not None:
            scores, nexts = self._score_many(np.array([[state, node]], np.int64))
            return float(scores[0]), int(nexts[0])
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

    def end_score(self, state: int) -> float:
        """ln P(</s> | state), unweighted."""
        if self.compiled is not None:
            return float(self.end_scores(np.array([state]))[0])
        score = self._end_scores.get(state)
        if score is None:
            score = self._end_scores[state] = self.lm.end_score(self._states[state])
        return score

    def _word(self, node: int) -> str:
        word = self._words.get(node)
        if word is None:
            trie, chars, at = self.table.trie, [], node
            while at > 0:
                chars.append(self.vocab.tokens[trie[at, CHAR]])
                at = int(trie[at, PARENT])
            word = self._words[node] = "".join(reversed(chars))
        return word

    def _state_id(self, state: Any) -> int:
        index = self._state_ids.get(state)
        if index is None:
            index = self._state_ids[state] = len(self._states)
            self._states.append(state)
        return index
