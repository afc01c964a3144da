"""The compiled (numba) part of lexicon-constrained CTC beam search: :func:`lexicon_search`.

A hypothesis is a state (word history, lexicon trie node, last unit) with the CTC
probabilities of ending in blank and in its last unit. Word histories are nodes of a tree
of words made as the search closes words, found again by (parent history, word) in a hash
table, so that equal histories are one id and each carries its LM state and weighted LM
score. Candidates of a frame that reach the same state merge (log-add) through a second,
per-frame hash table. Tokens and their frames are records chained back to the first, so
extending a hypothesis is a pointer, not a copy.
"""

from __future__ import annotations

import math

import numpy as np

from asr.beam.jit import _hash_slot, _jit
from asr.beam.kernel import _logaddexp, best_within
from asr.beam.ngram import LOG_10, lm_score

_NEG_INF = -math.inf

# The options, one record of a structured array the kernel reads by name (see tables.SETTINGS).
LEXICON_SETTINGS = np.dtype([
    ("width", np.int64),  # beam width
    ("sep", np.int64),  # unit id of the word separator; -1: none
    ("sep_required", np.bool_),  # a closed word must be followed by the separator (or the end)
    ("min_logprob", np.float64),  # units below it extend no hypothesis this frame; -inf: none
    ("beam_prune", np.float64),  # hypotheses below best + beam_prune are dropped; -inf: none
    ("use_lm", np.bool_),
    ("alpha", np.float64),  # LM weight, per natural-log unit
    ("beta", np.float64),  # word bonus
    ("oov_logprob", np.float64),  # ln P of a lexicon word the LM lacks
    ("lm_begin", np.int64),  # the compiled LM's node after <s>
    ("lm_eos", np.int64),  # the compiled LM's id of </s>
    ("unk_prob", np.float64),  # log10 P(<unk>) of the compiled LM
    ("recombine", np.bool_),  # hypotheses whose histories end in one LM state merge (the best stands)
    ("max_words", np.int64),  # the most lexicon words ending at one trie node (homophones)
])

# Records columns: the previous record, the unit, the frame it was first emitted at, and the
# word history it closed (-1: none).
PREV, UNIT, FRAME, CLOSED = range(4)


@_jit
def _cand_slot(keys: np.ndarray, marks: np.ndarray, mark: int, h: int, q: int, last: int) -> int:
    """Slot of state (h, q, last) in the per-frame hash table, or of the free slot where it
    belongs; a slot is in use only when its mark is this frame's."""
    mask = marks.shape[0] - 1
    i = ((h * -7046029254386353131 + q * 40503 + last * 2654435761) >> 17) & mask
    while marks[i] == mark and not (keys[i, 0] == h and keys[i, 1] == q and keys[i, 2] == last):
        i = (i + 1) & mask
    return i


@_jit
def _grow(a: np.ndarray, size: int) -> np.ndarray:
    out = np.empty((size,) + a.shape[1:], a.dtype)
    out[: a.shape[0]] = a
    return out


@_jit
def lexicon_search(lp, n_frames, settings, child_start, child_unit, child_node, word_start, word_ids, lookahead,
                   word_lm, ng_keys, ng_node, ng_prob, ng_backoff, ng_suffix, ng_extended):
    """Beam search over the first ``n_frames`` frames of ``lp`` ((T, V) log-probs, blank 0).

    The lexicon trie is in CSR form: node ``q``'s children are ``child_unit`` / ``child_node``
    [child_start[q] : child_start[q + 1]], the lexicon words ending at it ``word_ids``
    [word_start[q] : word_start[q + 1]]; ``lookahead`` (nodes,) is added to a hypothesis's
    score at that node for ranking only; ``word_lm`` maps a lexicon word to its LM word id
    (-1: not in the LM). The ``ng_*`` arrays are a compiled LM (:mod:`asr.beam.ngram`).

    Returns the survivors (state arrays h, q, last, record; their acoustic log-probability;
    their final score, -inf for one that ends inside a word), the records (R, 4) and the word
    histories (parent, word, weighted LM score).
    """
    opt = settings[0]
    width, sep, sep_required = opt.width, opt.sep, opt.sep_required
    min_logprob, beam_prune = opt.min_logprob, opt.beam_prune
    use_lm, alpha, beta, recombine = opt.use_lm, opt.alpha, opt.beta, opt.recombine
    word_bound = beta if alpha >= 0 and opt.oov_logprob <= 0 else math.inf  # most a word can add
    n_units = lp.shape[1]

    # The most candidates a frame can make: each survivor stays, and extends by each allowed
    # unit (or the separator) into a partial word and every word ending there.
    max_allowed = 0
    for t in range(n_frames):
        n = 0
        for c in range(1, n_units):
            if lp[t, c] >= min_logprob:
                n += 1
        max_allowed = max(max_allowed, n)
    n_cand = width * (1 + max_allowed * (1 + opt.max_words))
    c_h = np.empty(n_cand, np.int64)
    c_q = np.empty(n_cand, np.int64)
    c_last = np.empty(n_cand, np.int64)
    c_from = np.empty(n_cand, np.int64)  # survivor it came from (the dominant one, after merges)
    c_new = np.empty(n_cand, np.bool_)  # it emits its last unit this frame: a new record
    c_pb = np.empty(n_cand)
    c_pnb = np.empty(n_cand)
    c_score = np.empty(n_cand)
    size = 1
    while size < 2 * n_cand:
        size *= 2
    cand_keys = np.empty((size, 3), np.int64)
    cand_marks = np.zeros(size, np.int64)
    cand_slot = np.empty(size, np.int64)
    heap = np.empty(width, np.int64)
    new_rec = np.empty(width, np.int64)
    allowed = np.zeros(n_units, np.bool_)

    recs = np.empty((1 + n_frames * width, 4), np.int64)
    n_recs = 0
    # Word histories: 0 is the empty one. Grown as needed; hashed by (parent << 32) | word.
    cap = 1024
    hist_parent = np.empty(cap, np.int64)
    hist_word = np.empty(cap, np.int64)
    hist_state = np.empty(cap, np.int64)
    hist_lm = np.empty(cap)
    hist_parent[0], hist_word[0], hist_state[0], hist_lm[0] = -1, -1, opt.lm_begin, 0.0
    n_hist = 1
    h_keys = np.full(2 * cap, -1, np.int64)
    h_id = np.empty(2 * cap, np.int64)

    beam_h = np.zeros(width, np.int64)
    beam_q = np.zeros(width, np.int64)
    beam_last = np.full(width, -1, np.int64)
    beam_rec = np.full(width, -1, np.int64)
    beam_pb = np.full(width, _NEG_INF)
    beam_pnb = np.full(width, _NEG_INF)
    beam_pb[0] = 0.0
    n_beam = 1

    for t in range(n_frames):
        if n_hist + n_cand > hist_lm.shape[0]:
            while cap < n_hist + n_cand:
                cap *= 2  # a power of 2, as the hash table's size must be
            hist_parent, hist_word = _grow(hist_parent, cap), _grow(hist_word, cap)
            hist_state, hist_lm = _grow(hist_state, cap), _grow(hist_lm, cap)
            h_keys, h_id = np.full(2 * cap, -1, np.int64), np.empty(2 * cap, np.int64)
            for k in range(1, n_hist):
                j = _hash_slot(h_keys, (hist_parent[k] << 32) | hist_word[k])
                h_keys[j], h_id[j] = (hist_parent[k] << 32) | hist_word[k], k
        row = lp[t]
        for c in range(1, n_units):
            allowed[c] = row[c] >= min_logprob
        mark = t + 1
        n_c = 0
        # The best candidate score so far: an extension that scores below top + beam_prune is
        # not made (nor merged), as the selection below would drop it, or nearly always would.
        top = _NEG_INF
        # Every hypothesis stays itself: through blank, or by repeating its last unit.
        for i in range(n_beam):
            s = n_c
            n_c += 1
            c_h[s], c_q[s], c_last[s], c_from[s], c_new[s] = beam_h[i], beam_q[i], beam_last[i], i, False
            c_pb[s] = _logaddexp(beam_pb[i], beam_pnb[i]) + row[0]
            c_pnb[s] = beam_pnb[i] + row[beam_last[i]] if beam_last[i] >= 0 else _NEG_INF
            key = hist_state[beam_h[i]] if recombine else beam_h[i]
            j = _cand_slot(cand_keys, cand_marks, mark, key, beam_q[i], beam_last[i])
            cand_marks[j], cand_slot[j] = mark, s
            cand_keys[j, 0], cand_keys[j, 1], cand_keys[j, 2] = key, beam_q[i], beam_last[i]
            top = max(top, _logaddexp(c_pb[s], c_pnb[s]) + hist_lm[beam_h[i]] + lookahead[beam_q[i]])
        for i in range(n_beam):
            h, q, last = beam_h[i], beam_q[i], beam_last[i]
            pb, total = beam_pb[i], _logaddexp(beam_pb[i], beam_pnb[i])
            # e == -1 is the separator, between words only; then each trie edge out of q,
            # but for a word just closed when the separator must follow it.
            n_edges = child_start[q + 1] - child_start[q]
            if sep_required and q == 0 and last >= 0 and last != sep:
                n_edges = 0
            for e in range(-1 if sep >= 0 and q == 0 else 0, n_edges):
                if e < 0:
                    c, q2 = sep, 0
                else:
                    c, q2 = child_unit[child_start[q] + e], child_node[child_start[q] + e]
                if not allowed[c]:
                    continue
                # A repeated unit is a new unit only after a blank.
                ext = (pb if c == last else total) + row[c]
                if ext == _NEG_INF:
                    continue
                # The states it reaches: the partial word (if longer words pass through q2,
                # or for the separator, the root), then each word ending at q2, closed.
                k_end = word_start[q2 + 1] if e >= 0 else word_start[q2]
                for k in range(word_start[q2] - 1, k_end):
                    if k < word_start[q2]:
                        if e >= 0 and child_start[q2 + 1] == child_start[q2]:
                            continue  # no longer word goes on from here
                        h2, q3 = h, q2
                    else:
                        if ext + hist_lm[h] + word_bound < top + beam_prune:
                            continue  # even the best LM score would not keep it
                        w = word_ids[k]
                        key = (h << 32) | w
                        j = _hash_slot(h_keys, key)
                        if h_keys[j] == -1:
                            h2 = n_hist
                            n_hist += 1
                            h_keys[j], h_id[j] = key, h2
                            hist_parent[h2], hist_word[h2] = h, w
                            if use_lm:
                                logp, nxt = lm_score(ng_keys, ng_node, ng_prob, ng_backoff, ng_suffix, ng_extended,
                                                     opt.unk_prob, hist_state[h], word_lm[w])
                                logp *= LOG_10
                                if word_lm[w] < 0:
                                    logp = opt.oov_logprob
                                hist_state[h2] = nxt
                                hist_lm[h2] = hist_lm[h] + alpha * logp + beta
                            else:
                                hist_state[h2] = hist_state[h]
                                hist_lm[h2] = hist_lm[h] + beta
                        else:
                            h2 = h_id[j]
                        q3 = 0
                    score = ext + hist_lm[h2] + lookahead[q3]
                    if score < top + beam_prune:
                        continue
                    top = max(top, score)
                    key = hist_state[h2] if recombine else h2
                    j = _cand_slot(cand_keys, cand_marks, mark, key, q3, c)
                    if cand_marks[j] == mark and c_h[cand_slot[j]] != h2:
                        # Another word history in the same LM state, trie node and unit: the
                        # futures are the same, so the better one stands for both (Viterbi over
                        # histories, as flashlight's LexiconDecoder merges).
                        s = cand_slot[j]
                        if score > _logaddexp(c_pb[s], c_pnb[s]) + hist_lm[c_h[s]] + lookahead[q3]:
                            c_h[s], c_from[s], c_new[s], c_pb[s], c_pnb[s] = h2, i, True, _NEG_INF, ext
                        continue
                    if cand_marks[j] == mark:  # already a candidate: merge
                        s = cand_slot[j]
                        if ext > _logaddexp(c_pb[s], c_pnb[s]):
                            # Most of its mass now comes from emitting c here: time c from here.
                            c_from[s], c_new[s] = i, True
                        c_pnb[s] = _logaddexp(c_pnb[s], ext)
                        continue
                    s = n_c
                    n_c += 1
                    cand_marks[j], cand_slot[j] = mark, s
                    cand_keys[j, 0], cand_keys[j, 1], cand_keys[j, 2] = key, q3, c
                    c_h[s], c_q[s], c_last[s], c_from[s], c_new[s] = h2, q3, c, i, True
                    c_pb[s], c_pnb[s] = _NEG_INF, ext

        # Keep the `width` best candidates within `beam_prune` of the best: a min-heap.
        best = _NEG_INF
        for s in range(n_c):
            c_score[s] = _logaddexp(c_pb[s], c_pnb[s]) + hist_lm[c_h[s]] + lookahead[c_q[s]]
            best = max(best, c_score[s])
        n_heap = best_within(c_score, n_c, best + beam_prune, width, heap)
        for k in range(n_heap):
            s = heap[k]
            rec = beam_rec[c_from[s]]
            if c_new[s]:
                recs[n_recs, PREV], recs[n_recs, UNIT], recs[n_recs, FRAME] = rec, c_last[s], t
                # A unit that takes a hypothesis to the root other than the separator closes a word.
                recs[n_recs, CLOSED] = c_h[s] if c_q[s] == 0 and c_last[s] != sep else -1
                rec = n_recs
                n_recs += 1
            new_rec[k] = rec
        for k in range(n_heap):
            s = heap[k]
            beam_h[k], beam_q[k], beam_last[k], beam_rec[k] = c_h[s], c_q[s], c_last[s], new_rec[k]
            beam_pb[k], beam_pnb[k] = c_pb[s], c_pnb[s]
        n_beam = n_heap

    acoustic = np.empty(n_beam)
    final = np.empty(n_beam)
    for i in range(n_beam):
        acoustic[i] = _logaddexp(beam_pb[i], beam_pnb[i])
        h = beam_h[i]
        end = 0.0
        if use_lm:
            end = alpha * LOG_10 * lm_score(ng_keys, ng_node, ng_prob, ng_backoff, ng_suffix, ng_extended,
                                            opt.unk_prob, hist_state[h], opt.lm_eos)[0]
        final[i] = acoustic[i] + hist_lm[h] + end if beam_q[i] == 0 else _NEG_INF
    return (beam_h[:n_beam], beam_q[:n_beam], beam_rec[:n_beam], acoustic, final,  # views: fresh arrays per call
            recs[:n_recs], hist_parent[:n_hist], hist_word[:n_hist], hist_lm[:n_hist])


@_jit
def trace(recs, at, complete, sep):
    """The records of the path ending at record ``at`` (-1: none), first to last, cut after
    its last closed word unless ``complete``; and its words as rows (history id closed,
    frame of the word's first unit, frame of its last), separators skipped."""
    n = 0
    r = at
    while r >= 0:
        n += 1
        r = recs[r, PREV]
    chain = np.empty(n, np.int64)
    r = at
    for i in range(n - 1, -1, -1):
        chain[i] = r
        r = recs[r, PREV]
    if not complete:  # cut after the last closed word
        while n > 0 and recs[chain[n - 1], CLOSED] < 0:
            n -= 1
        chain = chain[:n]
    words = np.empty((n, 3), np.int64)
    n_words, first = 0, -1
    for i in range(n):
        r = chain[i]
        if recs[r, UNIT] == sep:
            continue
        if first < 0:
            first = recs[r, FRAME]
        if recs[r, CLOSED] >= 0:
            words[n_words, 0], words[n_words, 1], words[n_words, 2] = recs[r, CLOSED], first, recs[r, FRAME]
            n_words += 1
            first = -1
    return chain, words[:n_words]
