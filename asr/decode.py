"""Decoders: turn CTC log-probabilities into text.

Every decoder is called the same way, ``decoder(log_probs, lengths) -> list[Hypothesis]``,
with ``log_probs`` of shape (B, T, V) (log-softmax over V tokens, blank = 0) and
``lengths`` of shape (B,), and returns one best :class:`Hypothesis` per utterance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numba
import numpy as np
import torch

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


# --- CTC prefix beam search -------------------------------------------------------------
#
# The search runs compiled (numba). Prefixes live in a per-utterance table of nodes
# (parent, last token, first child, next sibling, trie node of the partial word, LM state),
# so extending a prefix is a pointer, not a string copy. Partial words are nodes of a trie
# that starts as the LM's vocabulary and grows with the words the search invents. The LM
# stays a Python object: when a prefix completes a word whose (LM state, word) score is
# not yet in the compiled hash table, the kernel stops before that frame, Python scores the
# missing words, and the kernel resumes the same frame. The table outlives the call, so the
# kernel stops less and less often.

_NEG_INF = -math.inf
# nodes columns
_PARENT, _TOKEN, _CHILD, _SIBLING, _WORD, _STATE = range(6)
# trie columns: _PARENT, _CHILD, _SIBLING as for nodes; _END: an LM word ends here;
# _IN_LM: the partial word is a prefix of an LM word
_CHAR, _END, _IN_LM = 1, 4, 5
# counters
_N_NODES, _N_RECS, _N_TRIE, _N_HASH, _MARK, _N_BEAM, _N_PENDING, _T_NEXT = range(8)
# kernel status
_DONE, _NEED_LM, _NEED_SPACE = 0, 1, 2
_RESET_AT = 1 << 21  # invented words or cached LM scores after which the caches start afresh


def _jit(fn):
    # Caching needs a writable folder (``__pycache__`` or NUMBA_CACHE_DIR); without one the
    # kernels are compiled on first use in every process instead.
    try:
        return numba.njit(cache=True)(fn)
    except RuntimeError:
        return numba.njit(fn)


@_jit
def _logaddexp(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == _NEG_INF:
        return a
    return a + math.log1p(math.exp(b - a))


@_jit
def _hash_slot(keys: np.ndarray, key: int) -> int:
    """Slot of ``key`` in the open-addressing table, or of the empty slot where it belongs."""
    mask = keys.shape[0] - 1
    i = ((key * -7046029254386353131) >> 20) & mask  # Fibonacci hashing
    while keys[i] != key and keys[i] != -1:
        i = (i + 1) & mask
    return i


@_jit
def _hash_insert(keys, scores, nexts, counters, new_keys, new_scores, new_nexts):
    for j in range(new_keys.shape[0]):
        i = _hash_slot(keys, new_keys[j])
        if keys[i] == -1:
            counters[_N_HASH] += 1
        keys[i], scores[i], nexts[i] = new_keys[j], new_scores[j], new_nexts[j]


@_jit
def _trie_child(trie: np.ndarray, node: int, char: int) -> int:
    child = trie[node, _CHILD]
    while child >= 0 and trie[child, _CHAR] != char:
        child = trie[child, _SIBLING]
    return child


@_jit
def _trie_add(trie: np.ndarray, counters: np.ndarray, node: int, char: int, in_lm: int) -> int:
    child = _trie_child(trie, node, char)
    if child < 0:
        child = counters[_N_TRIE]
        counters[_N_TRIE] += 1
        trie[child, _PARENT], trie[child, _CHAR], trie[child, _CHILD] = node, char, -1
        trie[child, _SIBLING], trie[child, _END], trie[child, _IN_LM] = trie[node, _CHILD], 0, in_lm
        trie[node, _CHILD] = child
    return child


@_jit
def _trie_build(trie, counters, chars, ends):
    """Add words (``chars`` split at ``ends``) as LM words."""
    start = 0
    for end in ends:
        node = 0
        for j in range(start, end):
            node = _trie_add(trie, counters, node, chars[j], 1)
        trie[node, _END] = 1
        start = end


@_jit
def _sort_desc(items: np.ndarray, n: int, keys: np.ndarray) -> None:
    """Sort ``items[:n]`` by ``keys[item]``, largest first (insertion sort: n is small)."""
    for j in range(1, n):
        item = items[j]
        i = j - 1
        while i >= 0 and keys[items[i]] < keys[item]:
            items[i + 1] = items[i]
            i -= 1
        items[i + 1] = item


@_jit
def _ask(pending: np.ndarray, n_pending: int, state: int, key: int) -> int:
    """Add (state, key) to the LM requests unless already there; return their count."""
    for k in range(n_pending):
        if pending[k, 0] == state and pending[k, 1] == key:
            return n_pending
    pending[n_pending, 0], pending[n_pending, 1] = state, key
    return n_pending + 1


@_jit
def _search(lp, n_frames, params_f, params_i, nodes, node_lm, node_mark, node_slot, recs,
            trie, h_keys, h_score, h_next, beam_node, beam_rec, beam_pb, beam_pnb, pending, counters):
    """Run the prefix beam search over frames ``counters[_T_NEXT]`` .. ``n_frames - 1``.

    lp: (T, V) log-probs of one utterance. Returns _DONE, or _NEED_LM with the missing
    (LM state, trie node) pairs in ``pending``, or _NEED_SPACE when the trie or the LM
    cache must grow; in both cases nothing of the stopped frame has been committed.
    """
    min_logprob, skip_logprob, oov_penalty, beam_prune = params_f[0], params_f[1], params_f[2], params_f[3]
    width, top_k, space = params_i[0], params_i[1], params_i[2]
    use_lm, restrict, check_prefix, vocab_known = params_i[3] != 0, params_i[4] != 0, params_i[5] != 0, params_i[6] != 0
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

    t = counters[_T_NEXT]
    while t < n_frames:
        if counters[_N_TRIE] + width > trie.shape[0] or 2 * (counters[_N_HASH] + width) > h_keys.shape[0]:
            return _NEED_SPACE
        row = lp[t]
        n_beam = counters[_N_BEAM]
        if row[0] > skip_logprob:
            # A near-certain blank: treat the frame as exactly blank (no extensions).
            for i in range(n_beam):
                beam_pb[i] = _logaddexp(beam_pb[i], beam_pnb[i]) + row[0]
                beam_pnb[i] = _NEG_INF
            t += 1
            counters[_T_NEXT] = t
            continue

        n_allowed = 0
        for c in range(1, n_tokens):
            if row[c] >= min_logprob:
                allowed[n_allowed] = c
                n_allowed += 1
        if 0 < top_k < n_allowed:
            _sort_desc(allowed, n_allowed, row)
            n_allowed = top_k

        counters[_MARK] += 1
        mark = counters[_MARK]
        # Every prefix stays itself: through blank, or by repeating its last token.
        for i in range(n_beam):
            n = beam_node[i]
            last, word = nodes[n, _TOKEN], nodes[n, _WORD]
            c_node[i], c_from[i], c_token[i] = n, i, -1
            c_pb[i] = _logaddexp(beam_pb[i], beam_pnb[i]) + row[0]
            c_pnb[i] = beam_pnb[i] + row[last] if last >= 0 else _NEG_INF
            c_lm[i] = node_lm[n]
            c_pen[i] = oov_penalty if check_prefix and word != 0 and trie[word, _IN_LM] == 0 else 0.0
            node_mark[n], node_slot[n] = mark, i
        n_c = n_beam
        n_pending = 0
        for i in range(n_beam):
            n = beam_node[i]
            last = nodes[n, _TOKEN]
            total = _logaddexp(beam_pb[i], beam_pnb[i])
            for a in range(n_allowed):
                c = allowed[a]
                # A repeated token is a new token only after a blank.
                ext = (beam_pb[i] if c == last else total) + row[c]
                if ext == _NEG_INF:
                    continue
                q = nodes[n, _CHILD]
                while q >= 0 and nodes[q, _TOKEN] != c:
                    q = nodes[q, _SIBLING]
                if q >= 0 and node_mark[q] == mark:  # already in the beam: merge
                    s = node_slot[q]
                    if ext > _logaddexp(c_pb[s], c_pnb[s]):
                        # Most of its mass now comes from emitting c here: time c from here.
                        c_from[s], c_token[s] = i, c
                    c_pnb[s] = _logaddexp(c_pnb[s], ext)
                    continue
                word, state, lm, pen = nodes[n, _WORD], nodes[n, _STATE], node_lm[n], 0.0
                if c == space:
                    if word != 0:
                        if restrict and trie[word, _END] == 0:
                            continue  # not a word of the LM
                        if use_lm:
                            # Words outside a known LM vocabulary all score as <unk>: key 0.
                            key = 0 if vocab_known and trie[word, _END] == 0 else word
                            h = _hash_slot(h_keys, (state << 32) | key)
                            if h_keys[h] == -1:
                                n_pending = _ask(pending, n_pending, state, key)
                                continue
                            lm += h_score[h]
                            state = h_next[h]
                    word = 0
                else:
                    if q >= 0:
                        word = nodes[q, _WORD]
                    else:
                        child = _trie_child(trie, word, c)
                        word = child if child >= 0 else -2 - word
                    if word < 0 or trie[word, _IN_LM] == 0:
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
                word = nodes[node, _WORD] if node >= 0 else c_word[s]
                if word > 0:
                    state = nodes[node, _STATE] if node >= 0 else c_state[s]
                    key = 0 if vocab_known and trie[word, _END] == 0 else word
                    if h_keys[_hash_slot(h_keys, (state << 32) | key)] == -1:
                        n_pending = _ask(pending, n_pending, state, key)
            counters[_N_PENDING] = n_pending
            return _NEED_LM

        # Keep the `width` best candidates within `beam_prune` of the best: a min-heap.
        best = _NEG_INF
        for s in range(n_c):
            c_score[s] = _logaddexp(c_pb[s], c_pnb[s]) + c_lm[s] + c_pen[s]
            best = max(best, c_score[s])
        floor = best + beam_prune
        n_heap = 0
        for s in range(n_c):
            score = c_score[s]
            if score < floor or score == _NEG_INF:
                continue
            if n_heap < width:
                j = n_heap
                n_heap += 1
                while j > 0 and c_score[heap[(j - 1) // 2]] > score:
                    heap[j] = heap[(j - 1) // 2]
                    j = (j - 1) // 2
                heap[j] = s
            elif score > c_score[heap[0]]:
                j = 0
                while True:
                    child = 2 * j + 1
                    if child >= n_heap:
                        break
                    if child + 1 < n_heap and c_score[heap[child + 1]] < c_score[heap[child]]:
                        child += 1
                    if c_score[heap[child]] >= score:
                        break
                    heap[j] = heap[child]
                    j = child
                heap[j] = s
        _sort_desc(heap, n_heap, c_score)
        for k in range(n_heap):
            s = heap[k]
            i = c_from[s]
            node, rec = c_node[s], beam_rec[i]
            if c_token[s] >= 0:
                if node < 0:
                    node = counters[_N_NODES]
                    counters[_N_NODES] += 1
                    parent, c, word = beam_node[i], c_token[s], c_word[s]
                    if word < 0:
                        word = _trie_add(trie, counters, -2 - word, c, 0)
                    nodes[node, _PARENT], nodes[node, _TOKEN], nodes[node, _CHILD] = parent, c, -1
                    nodes[node, _SIBLING], nodes[node, _WORD] = nodes[parent, _CHILD], word
                    nodes[node, _STATE] = c_state[s]
                    nodes[parent, _CHILD] = node
                    node_lm[node], node_mark[node] = c_lm[s], -1
                rec = counters[_N_RECS]
                counters[_N_RECS] += 1
                recs[rec, 0], recs[rec, 1] = beam_rec[i], t
            new_node[k], new_rec[k], new_pb[k], new_pnb[k] = node, rec, c_pb[s], c_pnb[s]
        beam_node[:n_heap], beam_rec[:n_heap] = new_node[:n_heap], new_rec[:n_heap]
        beam_pb[:n_heap], beam_pnb[:n_heap] = new_pb[:n_heap], new_pnb[:n_heap]
        counters[_N_BEAM] = n_heap
        t += 1
        counters[_T_NEXT] = t
    return _DONE


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

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        # log_probs: (B, T, V); lengths: (B,)
        return [nbest[0] for nbest in self.decode_nbest(log_probs, lengths)]

    def decode_nbest(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[Hypothesis]]:
        """Up to ``nbest`` hypotheses per utterance, best first. log_probs: (B, T, V); lengths: (B,)."""
        if log_probs.shape[-1] != len(self.vocab):
            raise ValueError(f"log_probs has {log_probs.shape[-1]} tokens, the vocabulary {len(self.vocab)}")
        lp = np.ascontiguousarray(log_probs.detach().float().cpu().numpy())  # (B, T, V)
        lengths = [min(int(n), lp.shape[1]) for n in lengths.cpu().tolist()]
        if self._trie_count() - self._base_trie_count > _RESET_AT or self._counters[_N_HASH] > _RESET_AT:
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
        counters[[_N_NODES, _N_RECS, _N_BEAM, _T_NEXT]] = 1, 1, 1, 0
        pending = np.empty((width * (lp.shape[1] + 1), 2), np.int64)  # misses + prefetches
        while True:
            status = _search(lp, n_frames, self._params_f, self._params_i, nodes, node_lm, node_mark, node_slot,
                             recs, self._trie, self._h_keys, self._h_score, self._h_next,
                             beam_node, beam_rec, beam_pb, beam_pnb, pending, counters)
            if status == _DONE:
                break
            if status == _NEED_LM:
                self._cache_words(pending[: counters[_N_PENDING]])
            else:
                self._grow()
        return self._finish(nodes, node_lm, recs, beam_node, beam_rec, beam_pb, beam_pnb, int(counters[_N_BEAM]))

    def _finish(self, nodes, node_lm, recs, beam_node, beam_rec, beam_pb, beam_pnb, n_beam) -> list[Hypothesis]:
        """Score each survivor's last partial word and ``</s>``, rank, and trace prefixes back."""
        finals = []
        for i in range(n_beam):
            node = int(beam_node[i])
            acoustic = float(np.logaddexp(beam_pb[i], beam_pnb[i]))
            lm_score, complete = float(node_lm[node]), True
            if self.lm is not None:
                word, state = int(nodes[node, _WORD]), int(nodes[node, _STATE])
                if word != 0:
                    in_lm = self._trie[word, _END] == 1
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
                tokens.append(int(nodes[node, _TOKEN]))
                frames.append(int(recs[rec, 1]))
                node, rec = int(nodes[node, _PARENT]), int(recs[rec, 0])
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
        trie[0, _END], trie[0, _IN_LM] = 0, 1
        counters = np.zeros(8, np.int64)
        counters[_N_TRIE] = 1
        chars = np.array([i for w in words for i in self.vocab.encode(w)], np.int64)
        _trie_build(trie, counters, chars, np.cumsum([len(w) for w in words], dtype=np.int64))
        return trie, int(counters[_N_TRIE])

    def _reset_caches(self) -> None:
        """Forget invented words and cached LM scores (trie node ids key the cache)."""
        self._trie = self._base_trie.copy()
        self._counters = np.zeros(8, np.int64)
        self._counters[_N_TRIE] = self._base_trie_count
        self._states: list[Any] = [self.lm.begin_state()] if self.lm is not None else []
        self._state_ids: dict[Any, int] = {state: i for i, state in enumerate(self._states)}
        self._scores: dict[tuple[int, int], tuple[float, int]] = {}
        self._end_scores: dict[int, float] = {}
        self._words: dict[int, str] = {}
        self._h_keys = np.full(1024, -1, np.int64)
        self._h_score = np.empty(1024)
        self._h_next = np.empty(1024, np.int64)

    def _trie_count(self) -> int:
        return int(self._counters[_N_TRIE])

    def _grow(self, new_words: int = 0) -> None:
        """Make room for a frame's new trie nodes and cache entries, and ``new_words`` more."""
        if self._trie_count() + self.beam_width > len(self._trie):
            self._trie = np.concatenate([self._trie, np.full_like(self._trie, -1)])
        size = len(self._h_keys)
        while 2 * (self._counters[_N_HASH] + self.beam_width + new_words) > size:
            size *= 2  # keeps the table at most half full, so probes stay short
        if size > len(self._h_keys):
            used = self._h_keys != -1
            keys, scores, nexts = self._h_keys[used], self._h_score[used], self._h_next[used]
            self._h_keys, self._h_score = np.full(size, -1, np.int64), np.empty(size)
            self._h_next = np.empty(size, np.int64)
            self._counters[_N_HASH] = 0
            _hash_insert(self._h_keys, self._h_score, self._h_next, self._counters, keys, scores, nexts)

    def _word(self, node: int) -> str:
        word = self._words.get(node)
        if word is None:
            chars, at = [], node
            while at > 0:
                chars.append(self.vocab.tokens[self._trie[at, _CHAR]])
                at = int(self._trie[at, _PARENT])
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
        _hash_insert(self._h_keys, self._h_score, self._h_next, self._counters, keys,
                     scored[:, 0], scored[:, 1].astype(np.int64))
