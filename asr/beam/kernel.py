"""The compiled (numba) part of CTC prefix beam search: :func:`search` and its helpers.

Prefixes live in a per-utterance table of nodes (:class:`~asr.beam.tables.Prefixes`), so
extending a prefix is a pointer, not a string copy. Partial words are nodes of a trie
(:class:`~asr.beam.tables.WordTable`) that starts as the LM's vocabulary and grows with the
words the search invents. Word scores are kept in a hash table that outlives the call. An
ARPA LM is compiled into arrays (:mod:`asr.beam.ngram`) that the kernel reads itself, so it
scores a (LM state, word) pair it has not seen in place. A KenLM binary stays a Python
object: then the kernel stops before the frame that needs a missing score, Python
(:class:`asr.beam.cache.LMCache`) scores the missing words, and the kernel resumes the same
frame, stopping less and less often as the table fills. The kernel reads its options by name
from one :data:`~asr.beam.tables.SETTINGS` record.

Compiled code is cached on disk (``cache=True``) in ``asr/beam/__pycache__``, or under
``NUMBA_CACHE_DIR``; the first import in a fresh environment compiles for a few seconds.
"""

from __future__ import annotations

import math

import numpy as np

from asr.beam.jit import _hash_slot, _jit
from asr.beam.ngram import LOG_10, lm_score
from asr.beam.tables import (
    CHAR,
    CHILD,
    DONE,
    END,
    FRAME,
    IN_LM,
    MARK,
    N_BEAM,
    N_HASH,
    N_NODES,
    N_PENDING,
    N_RECS,
    N_TRIE,
    NEED_LM,
    NEED_SPACE,
    PARENT,
    PREV,
    SIBLING,
    STATE,
    T_NEXT,
    TOKEN,
    WORD,
    Beam,
    CompiledTables,
    Prefixes,
    WordTable,
)

_NEG_INF = -math.inf


@_jit
def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@_jit
def hash_insert(keys: np.ndarray, scores: np.ndarray, nexts: np.ndarray, counters: np.ndarray,
                new_keys: np.ndarray, new_scores: np.ndarray, new_nexts: np.ndarray) -> None:
    """Add or overwrite entries of a :class:`WordTable`'s hash table; it must have room for them."""
    for j in range(new_keys.shape[0]):
        i = _hash_slot(keys, new_keys[j])
        if keys[i] == -1:
            counters[N_HASH] += 1
        keys[i], scores[i], nexts[i] = new_keys[j], new_scores[j], new_nexts[j]


@_jit
def _trie_child(trie: np.ndarray, node: int, char: int) -> int:
    child = trie[node, CHILD]
    while child >= 0 and trie[child, CHAR] != char:
        child = trie[child, SIBLING]
    return child


@_jit
def _trie_add(trie: np.ndarray, counters: np.ndarray, node: int, char: int, in_lm: int) -> int:
    child = _trie_child(trie, node, char)
    if child < 0:
        child = counters[N_TRIE]
        counters[N_TRIE] += 1
        trie[child, PARENT], trie[child, CHAR], trie[child, CHILD] = node, char, -1
        trie[child, SIBLING], trie[child, END], trie[child, IN_LM] = trie[node, CHILD], 0, in_lm
        trie[node, CHILD] = child
    return child


@_jit
def trie_build(trie: np.ndarray, counters: np.ndarray, chars: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Add words (token ids ``chars``, split at the cumulative lengths ``ends``) as LM words;
    the trie node of each."""
    nodes = np.empty(ends.shape[0], np.int64)
    start = 0
    for k in range(ends.shape[0]):
        node = 0
        for j in range(start, ends[k]):
            node = _trie_add(trie, counters, node, chars[j], 1)
        trie[node, END] = 1
        nodes[k] = node
        start = ends[k]
    return nodes


@_jit
def _sort_desc(items: np.ndarray, n: int, keys: np.ndarray) -> None:
    """Sort ``items[:n]`` by ``keys[item]``, largest first, ties in their order: insertion sort
    for a few items, a merge sort (also stable, O(n log n)) for a wide beam."""
    if n > 24:
        values = np.empty(n)
        for j in range(n):
            values[j] = -keys[items[j]]
        order = np.argsort(values, kind="mergesort")
        items[:n] = items[:n][order]
        return
    for j in range(1, n):
        item = items[j]
        i = j - 1
        while i >= 0 and keys[items[i]] < keys[item]:
            items[i + 1] = items[i]
            i -= 1
        items[i + 1] = item


@_jit
def best_within(scores: np.ndarray, n: int, floor: float, width: int, heap: np.ndarray) -> int:
    """Put the indices of the ``width`` best of ``scores[:n]`` that reach ``floor`` into
    ``heap``, best first (a min-heap of the best so far, then sorted); return how many."""
    n_heap = 0
    for s in range(n):
        score = scores[s]
        if score < floor or score == _NEG_INF:
            continue
        if n_heap < width:
            j = n_heap
            n_heap += 1
            while j > 0 and scores[heap[(j - 1) // 2]] > score:
                heap[j] = heap[(j - 1) // 2]
                j = (j - 1) // 2
            heap[j] = s
        elif score > scores[heap[0]]:
            j = 0
            while True:
                child = 2 * j + 1
                if child >= n_heap:
                    break
                if child + 1 < n_heap and scores[heap[child + 1]] < scores[heap[child]]:
                    child += 1
                if scores[heap[child]] >= score:
                    break
                heap[j] = heap[child]
                j = child
            heap[j] = s
    _sort_desc(heap, n_heap, scores)
    return n_heap


@_jit
def _ask(pending: np.ndarray, n_pending: int, state: int, key: int) -> int:
    """Add (state, key) to the LM requests unless already there; return their count."""
    for k in range(n_pending):
        if pending[k, 0] == state and pending[k, 1] == key:
            return n_pending
    pending[n_pending, 0], pending[n_pending, 1] = state, key
    return n_pending + 1


def search(lp: np.ndarray, n_frames: int, settings: np.ndarray, prefixes: Prefixes, beam: Beam, words: WordTable,
           pending: np.ndarray, counters: np.ndarray, compiled: CompiledTables) -> int:
    """Run the prefix beam search over frames ``counters[T_NEXT]`` .. ``n_frames - 1``.

    lp: (T, V) log-probs of one utterance; ``settings``: (1,) :data:`SETTINGS`. Returns
    DONE, or NEED_LM with the missing (LM state id, trie node) pairs in ``pending`` ((P, 2)
    int64, the first ``counters[N_PENDING]`` rows), or NEED_SPACE when the trie or the hash
    table must grow; in both cases nothing of the stopped frame has been committed. With a
    compiled LM (``settings.native_lm``, tables in ``compiled``) it scores missing pairs
    itself and never returns NEED_LM.
    """
    # The groups travel as separate arrays: numba takes those from Python in C, but types a
    # named tuple in Python, ~1.5 us each, on every call; and the search is entered once per
    # LM cache miss, ~20 times per utterance while a new cache fills.
    return _search(lp, n_frames, settings, *prefixes, *beam, *words, pending, counters, *compiled)


@_jit
def lm_node(state: int, begin: int) -> int:
    """A compiled LM's node for LM state id ``state``, and the state id for a node (the mapping
    is its own inverse): the same number, but for 0 and ``begin`` (<s>'s node) swapped, since
    the search starts every utterance in state id 0."""
    return begin if state == 0 else (0 if state == begin else state)


@_jit
def native_score(ng_keys, ng_node, ng_prob, ng_backoff, ng_suffix, ng_extended, by_node, opt, state, key):
    """(weighted score, next state id) of the word at trie node ``key`` (0: outside the LM)
    after LM state id ``state``, from a compiled LM."""
    word = by_node[key] if 0 < key < by_node.shape[0] else -1
    logp, nxt = lm_score(ng_keys, ng_node, ng_prob, ng_backoff, ng_suffix, ng_extended, opt.unk_prob,
                         lm_node(state, opt.lm_begin), word)
    logp *= LOG_10
    if opt.use_oov and word < 0:
        logp = opt.oov_logprob
    return opt.alpha * logp + opt.beta, lm_node(nxt, opt.lm_begin)


@_jit
def native_scores(compiled: CompiledTables, settings: np.ndarray, pending: np.ndarray, out_score: np.ndarray,
                  out_next: np.ndarray) -> None:
    """:func:`native_score` of each (LM state id, trie node) row of ``pending``."""
    opt, t = settings[0], compiled
    for i in range(pending.shape[0]):
        out_score[i], out_next[i] = native_score(t.ng_keys, t.ng_node, t.ng_prob, t.ng_backoff, t.ng_suffix,
                                                 t.ng_extended, t.by_node, opt, pending[i, 0], pending[i, 1])


@_jit
def _search(lp, n_frames, settings, nodes, node_lm, node_mark, node_slot, recs, beam_node, beam_rec, beam_pb,
            beam_pnb, trie, h_keys, h_score, h_next, pending, counters, ng_keys, ng_node, ng_prob, ng_backoff,
            ng_suffix, ng_extended, by_node):
    """:func:`search`, with the groups' arrays under their field names."""
    opt = settings[0]
    native_lm = opt.native_lm
    width, top_k, space = opt.width, opt.top_k, opt.space
    min_logprob, skip_logprob = opt.min_logprob, opt.skip_logprob
    oov_penalty, beam_prune = opt.oov_penalty, opt.beam_prune
    use_lm, restrict = opt.use_lm, opt.restrict
    check_prefix, vocab_known = opt.check_prefix, opt.vocab_known
    n_tokens = lp.shape[1]
    n_cand = width * n_tokens
    c_node = np.empty(n_cand, np.int64)  # existing node, or -1 for an extension not yet created
    c_from = np.empty(n_cand, np.int64)  # beam slot of the prefix it came from
    c_token = np.empty(n_cand, np.int64)  # appended token (new, or re-entering from its parent), else -1
    c_word = np.empty(n_cand, np.int64)  # trie node, or -2 - parent trie node when to be created
    c_state = np.empty(n_cand, np.int64)
    c_pb = np.empty(n_cand)
    c_pnb = np.empty(n_cand)
    c_lm = np.empty(n_cand)  # LM score of the completed words
    c_pen = np.empty(n_cand)  # provisional penalty of a partial word outside the LM
    c_score = np.empty(n_cand)
    heap = np.empty(width, np.int64)
    allowed = np.empty(n_tokens, np.int64)
    new_node = np.empty(width, np.int64)
    new_rec = np.empty(width, np.int64)
    new_pb = np.empty(width)
    new_pnb = np.empty(width)

    t = counters[T_NEXT]
    while t < n_frames:
        if counters[N_TRIE] + width > trie.shape[0] or 2 * (counters[N_HASH] + width) > h_keys.shape[0]:
            return NEED_SPACE
        row = lp[t]
        n_beam = counters[N_BEAM]
        if row[0] > skip_logprob:
            # A near-certain blank: treat the frame as exactly blank (no extensions).
            for i in range(n_beam):
                beam_pb[i] = _logaddexp(beam_pb[i], beam_pnb[i]) + row[0]
                beam_pnb[i] = _NEG_INF
            t += 1
            counters[T_NEXT] = t
            continue

        n_allowed = 0
        for c in range(1, n_tokens):
            if row[c] >= min_logprob:
                allowed[n_allowed] = c
                n_allowed += 1
        if 0 < top_k < n_allowed:
            _sort_desc(allowed, n_allowed, row)
            n_allowed = top_k

        counters[MARK] += 1
        mark = counters[MARK]
        # Every prefix stays itself: through blank, or by repeating its last token.
        for i in range(n_beam):
            n = beam_node[i]
            last, word = nodes[n, TOKEN], nodes[n, WORD]
            c_node[i], c_from[i], c_token[i] = n, i, -1
            c_pb[i] = _logaddexp(beam_pb[i], beam_pnb[i]) + row[0]
            c_pnb[i] = beam_pnb[i] + row[last] if last >= 0 else _NEG_INF
            c_lm[i] = node_lm[n]
            c_pen[i] = oov_penalty if check_prefix and word != 0 and trie[word, IN_LM] == 0 else 0.0
            node_mark[n], node_slot[n] = mark, i
        n_c = n_beam
        n_pending = 0
        for i in range(n_beam):
            n = beam_node[i]
            last = nodes[n, TOKEN]
            total = _logaddexp(beam_pb[i], beam_pnb[i])
            for a in range(n_allowed):
                c = allowed[a]
                # A repeated token is a new token only after a blank.
                ext = (beam_pb[i] if c == last else total) + row[c]
                if ext == _NEG_INF:
                    continue
                q = nodes[n, CHILD]
                while q >= 0 and nodes[q, TOKEN] != c:
                    q = nodes[q, SIBLING]
                if q >= 0 and node_mark[q] == mark:  # already in the beam: merge
                    s = node_slot[q]
                    if ext > _logaddexp(c_pb[s], c_pnb[s]):
                        # Most of its mass now comes from emitting c here: time c from here.
                        c_from[s], c_token[s] = i, c
                    c_pnb[s] = _logaddexp(c_pnb[s], ext)
                    continue
                word, state, lm, pen = nodes[n, WORD], nodes[n, STATE], node_lm[n], 0.0
                if c == space:
                    if word != 0:
                        if restrict and trie[word, END] == 0:
                            continue  # not a word of the LM
                        if use_lm:
                            # Words outside a known LM vocabulary all score as <unk>: key 0.
                            key = 0 if vocab_known and trie[word, END] == 0 else word
                            h = _hash_slot(h_keys, (state << 32) | key)
                            if h_keys[h] == -1:
                                if not native_lm:
                                    n_pending = _ask(pending, n_pending, state, key)
                                    continue
                                # At most one new score per beam entry a frame: the room checked above.
                                h_score[h], h_next[h] = native_score(ng_keys, ng_node, ng_prob, ng_backoff,
                                                                     ng_suffix, ng_extended, by_node, opt, state, key)
                                h_keys[h] = (state << 32) | key
                                counters[N_HASH] += 1
                            lm += h_score[h]
                            state = h_next[h]
                    word = 0
                else:
                    if q >= 0:
                        word = nodes[q, WORD]
                    else:
                        child = _trie_child(trie, word, c)
                        word = child if child >= 0 else -2 - word
                    if word < 0 or trie[word, IN_LM] == 0:
                        if restrict:
                            continue  # not a prefix of any LM word
                        if check_prefix:
                            pen = oov_penalty
                c_node[n_c], c_from[n_c], c_token[n_c] = q, i, c
                c_word[n_c], c_state[n_c] = word, state
                c_pb[n_c], c_pnb[n_c], c_lm[n_c], c_pen[n_c] = _NEG_INF, ext, lm, pen
                n_c += 1
        if n_pending > 0:
            # Stopping anyway: also ask for the word each candidate would complete with a
            # space, so that the next frames stop less often.
            for s in range(n_c):
                node = c_node[s]
                word = nodes[node, WORD] if node >= 0 else c_word[s]
                if word > 0:
                    state = nodes[node, STATE] if node >= 0 else c_state[s]
                    key = 0 if vocab_known and trie[word, END] == 0 else word
                    if h_keys[_hash_slot(h_keys, (state << 32) | key)] == -1:
                        n_pending = _ask(pending, n_pending, state, key)
            counters[N_PENDING] = n_pending
            return NEED_LM

        # Keep the `width` best candidates within `beam_prune` of the best: a min-heap.
        best = _NEG_INF
        for s in range(n_c):
            c_score[s] = _logaddexp(c_pb[s], c_pnb[s]) + c_lm[s] + c_pen[s]
            best = max(best, c_score[s])
        n_heap = best_within(c_score, n_c, best + beam_prune, width, heap)
        for k in range(n_heap):
            s = heap[k]
            i = c_from[s]
            node, rec = c_node[s], beam_rec[i]
            if c_token[s] >= 0:
                if node < 0:
                    node = counters[N_NODES]
                    counters[N_NODES] += 1
                    parent, c, word = beam_node[i], c_token[s], c_word[s]
                    if word < 0:
                        word = _trie_add(trie, counters, -2 - word, c, 0)
                    nodes[node, PARENT], nodes[node, TOKEN], nodes[node, CHILD] = parent, c, -1
                    nodes[node, SIBLING], nodes[node, WORD] = nodes[parent, CHILD], word
                    nodes[node, STATE] = c_state[s]
                    nodes[parent, CHILD] = node
                    node_lm[node], node_mark[node] = c_lm[s], -1
                rec = counters[N_RECS]
                counters[N_RECS] += 1
                recs[rec, PREV], recs[rec, FRAME] = beam_rec[i], t
            new_node[k], new_rec[k], new_pb[k], new_pnb[k] = node, rec, c_pb[s], c_pnb[s]
        beam_node[:n_heap], beam_rec[:n_heap] = new_node[:n_heap], new_rec[:n_heap]
        beam_pb[:n_heap], beam_pnb[:n_heap] = new_pb[:n_heap], new_pnb[:n_heap]
        counters[N_BEAM] = n_heap
        t += 1
        counters[T_NEXT] = t
    return DONE
