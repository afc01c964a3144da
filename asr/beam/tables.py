"""The arrays beam search works on, shared by its kernel and its Python side: their columns,
the kernel's settings record and status codes, and the named groups the kernel takes."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Prefixes.nodes columns
PARENT, TOKEN, CHILD, SIBLING, WORD, STATE = range(6)
# Prefixes.recs columns: the record of the prefix's previous token, the frame of this one
PREV, FRAME = 0, 1
# WordTable.trie columns: PARENT, CHILD, SIBLING as for nodes; END: an LM word ends here;
# IN_LM: the partial word is a prefix of an LM word
CHAR, END, IN_LM = 1, 4, 5
# counters: an int64 array, so that the kernel's progress survives a stop. N_TRIE and
# N_HASH describe the WordTable and outlive an utterance; the others are one utterance's.
N_NODES, N_RECS, N_TRIE, N_HASH, MARK, N_BEAM, N_PENDING, T_NEXT = range(8)
N_COUNTERS = 8
# kernel status
DONE, NEED_LM, NEED_SPACE = 0, 1, 2

# The search options, one record of a structured array (made by :func:`make_settings`): the kernel
# reads them by name, and numba takes an array from Python faster than a named tuple.
SETTINGS = np.dtype([
    ("width", np.int64),  # beam width
    ("top_k", np.int64),  # tokens that may extend a prefix per frame; 0: all
    ("space", np.int64),  # token id of the word separator
    ("min_logprob", np.float64),  # tokens below it extend no prefix; -inf: none
    ("skip_logprob", np.float64),  # ln blank_skip_threshold: a frame with more blank is pure blank; inf: none
    ("oov_penalty", np.float64),  # alpha * oov_logprob: while a partial word is no prefix of an LM word
    ("beam_prune", np.float64),  # prefixes below best + beam_prune are dropped; -inf: none
    ("use_lm", np.bool_),
    ("restrict", np.bool_),  # only LM words and their prefixes
    ("check_prefix", np.bool_),  # charge oov_penalty
    ("vocab_known", np.bool_),  # the trie holds the LM's vocabulary: other words score as <unk>
    # A compiled LM (CompiledTables): the kernel scores missing (state, word) pairs itself
    # instead of stopping for Python to score them.
    ("native_lm", np.bool_),
    ("alpha", np.float64),  # LM weight
    ("beta", np.float64),  # word bonus
    ("oov_logprob", np.float64),  # replaces ln P(<unk>) when use_oov
    ("use_oov", np.bool_),
    ("lm_begin", np.int64),  # the compiled LM's node after <s> (LM state id 0; see LMCache)
    ("unk_prob", np.float64),  # log10 P(<unk>) of the compiled LM
])


def make_settings(**values: float) -> np.ndarray:
    """A (1,) :data:`SETTINGS` array holding ``values``, which must name every field."""
    if values.keys() != set(SETTINGS.names):
        raise TypeError(f"kernel settings need exactly {', '.join(SETTINGS.names)}; got {', '.join(values)}")
    record = np.zeros(1, SETTINGS)
    for name, value in values.items():
        record[name] = value
    return record


# The kernel's arrays, in three groups. Their fields are the kernel's parameter names.


class Prefixes(NamedTuple):
    """One utterance's prefix tree, and the records that time each prefix's tokens.
    Each kept candidate adds at most one node and one record."""

    nodes: np.ndarray  # (N, 6) int64: PARENT, TOKEN, CHILD, SIBLING, WORD (trie node), STATE (LM state id)
    node_lm: np.ndarray  # (N,) float64: weighted LM score of the prefix's completed words
    node_mark: np.ndarray  # (N,) int64: counters[MARK] when the node is among the frame's candidates
    node_slot: np.ndarray  # (N,) int64: its candidate slot then
    recs: np.ndarray  # (N, 2) int64: PREV, FRAME


class Beam(NamedTuple):
    """The surviving prefixes, best first; ``counters[N_BEAM]`` of the rows are used."""

    beam_node: np.ndarray  # (W,) int64: Prefixes node
    beam_rec: np.ndarray  # (W,) int64: Prefixes record of its last token
    beam_pb: np.ndarray  # (W,) float64: ln P(prefix, ending in blank)
    beam_pnb: np.ndarray  # (W,) float64: ln P(prefix, ending in its last token)


class CompiledTables(NamedTuple):
    """A compiled LM's arrays (:class:`asr.beam.ngram.NGramTables`, ``unk_prob`` aside) and
    ``by_node``, the LM word id of each LM word's trie node; one-element placeholders when
    the LM is scored in Python."""

    ng_keys: np.ndarray  # (H,) int64
    ng_node: np.ndarray  # (H,) int64
    ng_prob: np.ndarray  # (N,) float64
    ng_backoff: np.ndarray  # (N,) float64
    ng_suffix: np.ndarray  # (N,) int64
    ng_extended: np.ndarray  # (N,) bool
    by_node: np.ndarray  # (trie nodes,) int64, -1 where no LM word ends


def no_compiled_tables() -> CompiledTables:
    """The placeholders for an LM scored in Python (the kernel never reads them)."""
    return CompiledTables(np.full(1, -1, np.int64), np.zeros(1, np.int64), np.zeros(1), np.zeros(1),
                          np.zeros(1, np.int64), np.zeros(1, np.bool_), np.full(1, -1, np.int64))


class WordTable(NamedTuple):
    """The trie of partial words and the hash table of word scores, kept between calls.

    The hash table is open-addressed: key ``(LM state id << 32) | trie node`` (trie node 0:
    any word outside the LM), -1 when empty; at most half full, so probes stay short.
    """

    trie: np.ndarray  # (M, 6) int32: PARENT, CHAR, CHILD, SIBLING, END, IN_LM
    h_keys: np.ndarray  # (H,) int64, H a power of 2
    h_score: np.ndarray  # (H,) float64: alpha * ln P(word | state) + beta
    h_next: np.ndarray  # (H,) int64: the LM state id after the word
