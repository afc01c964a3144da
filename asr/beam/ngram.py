"""An ARPA n-gram LM in arrays that compiled code reads, so beam search scores words without
calling into Python (and KenLM) once per new (LM state, word) pair.

The n-grams form a trie over words: node 0 is the empty context, and the node of
``w1 .. wk`` is the child of the node of ``w1 .. w(k-1)`` for ``wk``, found in one
open-addressing hash table keyed by (parent node, word id). Each node holds its n-gram's
log10 probability (NaN for a node that exists only as the prefix of longer n-grams), its
backoff weight, and its suffix link: the node of its longest proper suffix that is a node
(Aho–Corasick's failure link). Scoring is the ARPA backoff recursion:

    log P(w | h) = log P(h w)                          if ``h w`` is an n-gram
                 = backoff(h) + log P(w | h minus its first word)   otherwise

and an LM state is the node of the longest suffix of the history that has extensions, as
KenLM's state minimisation keeps it (tests/test_beam.py checks every score against KenLM's).
"""

from __future__ import annotations

import gzip
import math
import weakref
from pathlib import Path
from typing import NamedTuple

import numpy as np

from asr.beam.jit import _hash_slot, _jit
from asr.io import atomic_path
from asr.lm.load import LMError, NGramLM, arpa_counts, is_arpa

LOG_10 = math.log(10.0)
CACHE_SUFFIX = ".asr-ngram.npz"  # beside the ARPA file: its tables, read in a fraction of a second
_CACHE_VERSION = 1
# ARPA files up to this many n-grams are compiled for beam search: parsing them takes seconds
# once (then the cache file beside them loads in a fraction of one) and the tables take about
# 70 bytes an n-gram. Larger files are scored through KenLM.
COMPILE_MAX_NGRAMS = 5_000_000
_COMPILED_BY_LM: weakref.WeakKeyDictionary[NGramLM, CompiledLM | None] = weakref.WeakKeyDictionary()


class NGramTables(NamedTuple):
    """The arrays of a :class:`CompiledLM`, as the kernels take them."""

    keys: np.ndarray  # (H,) int64: (parent node << 32) | word id, -1 for an empty slot
    slot_node: np.ndarray  # (H,) int64: the node in each slot
    prob: np.ndarray  # (N,) float64 log10 P of the node's n-gram; NaN for a prefix-only node
    backoff: np.ndarray  # (N,) float64 log10 backoff weight (0 when the file gives none)
    suffix: np.ndarray  # (N,) int64 node of the longest proper suffix that is a node (0: none)
    extended: np.ndarray  # (N,) bool: some longer n-gram starts with this one
    unk_prob: float  # log10 P(<unk>), for words outside the LM (-100 when the file has no <unk>)


class CompiledLM:
    """An ARPA file's n-grams (``.gz`` allowed) as :class:`NGramTables`, and its words' ids."""

    def __init__(self, path: str | Path) -> None:
        """Read ``path``'s tables from the cache file beside it when that was made from this
        very file (same size and modification time), else parse the ARPA file (seconds for a
        million n-grams) and write the cache if the folder is writable."""
        self.path = Path(path)
        stat = self.path.stat()
        self._source = np.array([_CACHE_VERSION, stat.st_size, stat.st_mtime_ns], np.int64)
        if not self._load_cache():
            self._compile()
            self._save_cache()
        self.word_ids = {w: i for i, w in enumerate(self._words)}
        self.begin, self.eos = int(self._special[0]), int(self._special[1])

    @property
    def cache_path(self) -> Path:
        return self.path.with_name(self.path.name + CACHE_SUFFIX)

    def _load_cache(self) -> bool:
        try:
            with np.load(self.cache_path, allow_pickle=False) as data:
                if not np.array_equal(data["source"], self._source):
                    return False
                fields = {name: data[name] for name in NGramTables._fields if name != "unk_prob"}
                self.tables = NGramTables(**fields, unk_prob=float(data["unk_prob"]))
                self._words = [str(w) for w in data["words"]]
                self._special = data["special"]
                self.order = int(data["order"])
        except (OSError, KeyError, ValueError):
            return False
        self.n_nodes = len(self.tables.prob)
        return True

    def _save_cache(self) -> None:
        try:
            with atomic_path(self.cache_path) as tmp, open(tmp, "wb") as f:
                np.savez(f, source=self._source, words=np.array(self._words), special=self._special,
                         order=self.order, **self.tables._asdict())
        except OSError:
            pass  # a read-only folder: parse again next time

    def _compile(self) -> None:
        word_ids, grams = _read_arpa(self.path)
        self.order = len(grams)
        n_nodes = 1 + sum(len(probs) for _, probs, _ in grams)
        size = 1 << max(10, math.ceil(math.log2(2 * n_nodes)))  # at most half full
        keys, slot_node = np.full(size, -1, np.int64), np.zeros(size, np.int64)
        prob, backoff = np.full(n_nodes, np.nan), np.zeros(n_nodes)
        parent, word, depth = np.full(n_nodes, -1, np.int64), np.full(n_nodes, -1, np.int64), np.zeros(n_nodes, np.int64)
        count = np.ones(1, np.int64)
        for words, probs, backoffs in grams:
            count = _add_ngrams(keys, slot_node, prob, backoff, parent, word, depth, count, words, probs, backoffs)
        n = int(count[0])
        prob, backoff, parent, word, depth = prob[:n], backoff[:n], parent[:n], word[:n], depth[:n]
        suffix = np.zeros(n, np.int64)
        _link_suffixes(keys, slot_node, parent, word, np.argsort(depth, kind="stable"), suffix)
        extended = np.zeros(n, np.bool_)
        extended[parent[parent >= 0]] = True
        unk = word_ids.get("<unk>")
        unk_node = _child(keys, slot_node, 0, unk) if unk is not None else -1
        unk_prob = float(prob[unk_node]) if unk_node >= 0 else -100.0
        self.tables = NGramTables(keys, slot_node, prob, backoff, suffix, extended, unk_prob)
        self.n_nodes = n
        bos = word_ids.get("<s>")
        begin = _child(keys, slot_node, 0, bos) if bos is not None else 0
        if begin < 0 or not extended[begin]:
            begin = 0
        self._words = sorted(word_ids, key=word_ids.get)
        self._special = np.array([begin, word_ids.get("</s>", -1)], np.int64)

    def word_id(self, word: str) -> int:
        """The word's id, or -1 for a word outside the LM (scored as ``<unk>``)."""
        return self.word_ids.get(word, -1)

    def score(self, state: int, word: str) -> tuple[float, int]:
        """(ln P(word | state), next state), state a node (``begin`` after ``<s>``)."""
        log10, next_state = score_word(self.tables, state, self.word_id(word))
        return log10 * LOG_10, next_state

    def end_score(self, state: int) -> float:
        """ln P(</s> | state)."""
        return score_word(self.tables, state, self.eos)[0] * LOG_10


def _read_arpa(path: Path) -> tuple[dict[str, int], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Word ids (in 1-gram order) and, per order, the n-grams' word ids (N, k), log10
    probabilities (N,) and backoffs (N,), read line by line into arrays the header sizes."""
    opener = gzip.open if path.suffix == ".gz" else open
    word_ids: dict[str, int] = {}
    counts = arpa_counts(path)
    grams = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        line = next(f, None)
        while line is not None:
            line = line.strip()
            if line.endswith("-grams:"):
                k = int(line[1:].split("-")[0])
                section, line = _read_order(f, k, counts[k - 1], word_ids)
                grams.append(section)
                continue  # the line that ended the section: a blank, the next header or \end\
            line = next(f, None)
    return word_ids, grams


def _read_order(f, k: int, count: int, word_ids: dict[str, int]):
    """One ``\\k-grams:`` section: (word ids, probabilities, backoffs), and the line after it."""
    ids, probs, backoffs = np.empty((count, k), np.int64), np.empty(count), np.zeros(count)
    get = word_ids.get
    n = 0
    line = next(f, None)
    while line is not None:
        fields = line.split()
        if not fields or fields[0].startswith("\\"):
            break
        if n == count:
            raise ValueError(f"more {k}-grams than the header's {count}")
        if k == 1:
            word_ids.setdefault(fields[1], len(word_ids))
        probs[n] = float(fields[0])
        if len(fields) > k + 1:
            backoffs[n] = float(fields[k + 1])
        ids[n] = [get(w, -1) for w in fields[1 : k + 1]]
        n += 1
        line = next(f, None)
    ids, probs, backoffs = ids[:n], probs[:n], backoffs[:n]
    known = (ids >= 0).all(axis=1)  # an n-gram with a word missing from the 1-grams cannot be reached
    return (ids[known], probs[known], backoffs[known]), line


@_jit
def _child(keys: np.ndarray, slot_node: np.ndarray, node: int, word: int) -> int:
    """The node of ``node``'s n-gram extended by ``word``, or -1."""
    if word < 0:
        return -1
    i = _hash_slot(keys, (node << 32) | word)
    return slot_node[i] if keys[i] != -1 else -1


@_jit
def _add_ngrams(keys, slot_node, prob, backoff, parent, word, depth, count, words, probs, backoffs):
    """Insert one order's n-grams (each row of ``words``), making prefix nodes they lack."""
    for r in range(words.shape[0]):
        node = 0
        for j in range(words.shape[1]):
            w = words[r, j]
            i = _hash_slot(keys, (node << 32) | w)
            if keys[i] == -1:
                new = count[0]
                count[0] += 1
                keys[i], slot_node[i] = (node << 32) | w, new
                parent[new], word[new], depth[new] = node, w, j + 1
            node = slot_node[i]
        prob[node], backoff[node] = probs[r], backoffs[r]
    return count


@_jit
def _link_suffixes(keys, slot_node, parent, word, by_depth, suffix):
    """Suffix links, shortest n-grams first (a node's link needs its parent's)."""
    for node in by_depth:
        if node == 0 or parent[node] == 0:
            suffix[node] = 0  # a 1-gram's proper suffix is the empty context
            continue
        s = suffix[parent[node]]
        while True:
            c = _child(keys, slot_node, s, word[node])
            if c >= 0:
                suffix[node] = c
                break
            if s == 0:
                suffix[node] = 0
                break
            s = suffix[s]


@_jit
def score_word(t: NGramTables, state: int, word: int) -> tuple[float, int]:
    """(log10 P(word | state), next state); ``word`` -1 is a word outside the LM (``<unk>``)."""
    return lm_score(t.keys, t.slot_node, t.prob, t.backoff, t.suffix, t.extended, t.unk_prob, state, word)


@_jit
def lm_score(keys, slot_node, prob, backoff, suffix, extended, unk_prob, state, word):
    """:func:`score_word` on the tables' arrays, as the search kernel holds them."""
    total = 0.0
    s = state
    logp = unk_prob
    while True:
        c = _child(keys, slot_node, s, word)
        if c >= 0 and not math.isnan(prob[c]):
            logp = prob[c]
            break
        if s == 0:
            break  # not even a 1-gram: <unk>
        total += backoff[s]
        s = suffix[s]
    # The next state: the node of the longest suffix of (history, word) that longer n-grams extend.
    s = state
    while True:
        c = _child(keys, slot_node, s, word)
        if c >= 0:
            while c != 0 and not extended[c]:
                c = suffix[c]
            return total + logp, c
        if s == 0:
            return total + logp, 0
        s = suffix[s]


def compiled_lm(lm: NGramLM) -> CompiledLM | None:
    """``lm`` as :class:`CompiledLM` tables, for an ARPA file of at most
    :data:`COMPILE_MAX_NGRAMS` n-grams (made on first use for each loaded LM), or ``None``: a
    KenLM binary, or an ARPA file too large to parse in Python, is scored through KenLM.
    Raises :class:`asr.lm.load.LMError` for a malformed ARPA file."""
    if lm not in _COMPILED_BY_LM:
        small = is_arpa(lm.path) and sum(arpa_counts(lm.path)) <= COMPILE_MAX_NGRAMS
        try:
            _COMPILED_BY_LM[lm] = CompiledLM(lm.path) if small else None
        except (ValueError, IndexError) as err:
            raise LMError(f"{lm.path}: malformed ARPA file ({' '.join(str(err).split())[:160]})") from None
    return _COMPILED_BY_LM[lm]
