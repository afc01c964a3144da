"""Lexicon-constrained CTC beam search: :class:`LexiconBeamSearchDecoder`.

Hypotheses walk a trie of the lexicon's pronunciations and may emit only its words, as
flashlight-text's ``LexiconDecoder`` does; the per-frame search is compiled
(:mod:`asr.beam.lexicon_kernel`) and scores words with the same compiled n-gram tables as
:class:`asr.beam.BeamSearchDecoder` (:mod:`asr.beam.ngram`).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

from asr.beam.lexicon_kernel import FRAME, LEXICON_SETTINGS, UNIT, lexicon_search, trace
from asr.beam.ngram import LOG_10, compiled_lm, score_word
from asr.beam.tables import no_compiled_tables
from asr.hypothesis import Hypothesis
from asr.lm.load import NGramLM
from asr.text import Vocabulary


class LexiconTrie(NamedTuple):
    """A trie over unit ids of every pronunciation, in CSR form; node 0 is the root, and a
    node's id is larger than its parent's."""

    child_start: np.ndarray  # (N + 1,) int64: node q's edges are child_start[q] .. child_start[q + 1]
    child_unit: np.ndarray  # (E,) int64: the unit of each edge, ascending within a node
    child_node: np.ndarray  # (E,) int64: the node it leads to
    word_start: np.ndarray  # (N + 1,) int64: the words ending at node q are word_ids[word_start[q] ..]
    word_ids: np.ndarray  # (K,) int64: index into the decoder's sorted word list
    parent: np.ndarray  # (N,) int64, -1 for the root


def build_lexicon_trie(words: Sequence[str], lexicon: Mapping[str, Sequence[tuple[int, ...]]]) -> LexiconTrie:
    """The trie of every pronunciation of ``words`` (word i's pronunciations ``lexicon[words[i]]``)."""
    children: list[dict[int, int]] = [{}]
    ends: list[list[int]] = [[]]
    parent = [-1]
    for index, word in enumerate(words):
        for pron in sorted(set(map(tuple, lexicon[word]))):
            node = 0
            for unit in pron:
                nxt = children[node].get(unit)
                if nxt is None:
                    nxt = children[node][unit] = len(children)
                    children.append({})
                    ends.append([])
                    parent.append(node)
                node = nxt
            ends[node].append(index)
    child_start = np.cumsum([0] + [len(c) for c in children], dtype=np.int64)
    edges = [edge for c in children for edge in sorted(c.items())]
    word_start = np.cumsum([0] + [len(e) for e in ends], dtype=np.int64)
    return LexiconTrie(child_start, np.array([u for u, _ in edges], np.int64).reshape(-1),
                       np.array([n for _, n in edges], np.int64).reshape(-1), word_start,
                       np.array([w for e in ends for w in e], np.int64).reshape(-1), np.array(parent, np.int64))


class LexiconBeamSearchDecoder:
    """CTC beam search that emits only words of a lexicon, optionally fused with a word n-gram LM.

    ``lexicon`` maps each word (spelt as transcripts are) to one or more pronunciations,
    each a non-empty tuple of unit ids (no blank, no separator). Units may be characters,
    word pieces or phones. A hypothesis is a word history, a node of the trie of all
    pronunciations and its last unit; it extends only along trie edges, and where a
    pronunciation ends it may close the word (scored ``alpha * ln P_lm(word | history) +
    beta``, back to the root), or go on along longer pronunciations. Homophones close into
    separate hypotheses. ``word_sep`` (a unit id, or ``None``) may appear any number of times
    between words and at either end; closing a word does not need it unless
    ``sep_required``, when a word must be followed by it or by the end of the utterance (as
    flashlight's lexicon of words spelt with a trailing space: for units, such as
    characters, whose transcripts always hold the separator; it also keeps a character
    lexicon from reading one long word as several short ones). Hypotheses in the
    same state merge (log-add), so a hypothesis sums over pronunciations and separator
    placements that lead to the same state. With ``recombine``, hypotheses whose word
    histories differ but end in the same LM state (the same trie node and last unit too)
    also merge, keeping the better one (Viterbi over histories, as flashlight's
    ``LexiconDecoder`` does), so that a small beam is not filled with histories that differ
    only in words the LM no longer sees. Without an LM, a word scores ``beta``.

    A hypothesis scores ``ln P_ctc + alpha * ln P_lm(words </s>) + beta * n_words``. A
    lexicon word the LM lacks scores ``oov_logprob`` instead of the LM's ``<unk>``. For
    ranking inside a word only, a hypothesis also gets ``alpha`` times the best unigram
    log-probability among the words its trie node leads to (flashlight's trie smearing,
    with unigrams); its final score does not include it.

    Finals are hypotheses at the trie root. If pruning left none there, the best
    hypothesis (by CTC score and its closed words' LM score) gives its closed words only,
    its tokens cut after its last word, and ``extras["complete"]`` is False.

    Pruning, per frame (``None`` turns each off): units below ``token_min_logprob`` extend
    no hypothesis; hypotheses more than ``-beam_prune_logprob`` below the best (lookahead
    included) are dropped, and an extension that scores that far below the best candidate
    made before it in the frame is not made, nor merged into an equal one (as flashlight).
    The LM must be an ARPA file small enough to compile (:func:`asr.beam.ngram.compiled_lm`);
    a KenLM binary is refused.

    ``tokens`` are the units emitted (separators included), ``frames[i]`` the frame
    ``tokens[i]`` was first emitted at, along the path that dominated when hypotheses merged;
    ``extras["words"]`` holds (word, frame of its first unit, frame of its last unit).
    """

    def __init__(
        self,
        vocab: Vocabulary,
        lexicon: Mapping[str, Sequence[tuple[int, ...]]],
        beam_width: int = 16,
        lm: NGramLM | None = None,
        alpha: float = 0.5,
        beta: float = 1.0,
        word_sep: int | None = None,
        sep_required: bool = False,
        token_min_logprob: float | None = -10.0,
        beam_prune_logprob: float | None = -10.0,
        oov_logprob: float = -20.0,
        recombine: bool = True,
    ) -> None:
        if beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, got {beam_width}")
        if beam_prune_logprob is not None and beam_prune_logprob > 0:
            raise ValueError(f"beam_prune_logprob must be negative or None, got {beam_prune_logprob}")
        if word_sep is not None and not 0 < word_sep < len(vocab):
            raise ValueError(f"word_sep must be a unit id other than blank, got {word_sep}")
        if sep_required and word_sep is None:
            raise ValueError("sep_required needs a word_sep")
        for word, prons in lexicon.items():
            if not prons:
                raise ValueError(f"lexicon word {word!r} has no pronunciation")
            for pron in prons:
                if not pron or any(not 0 < u < len(vocab) or u == word_sep for u in pron):
                    raise ValueError(f"lexicon word {word!r}: pronunciation {tuple(pron)} must be unit ids "
                                     f"1 .. {len(vocab) - 1} without the separator")
        compiled = compiled_lm(lm) if lm is not None else None
        if lm is not None and compiled is None:
            raise ValueError(f"{lm.path}: the lexicon decoder needs an ARPA LM small enough to compile, "
                             "not a KenLM binary")
        self.vocab, self.beam_width, self.lm, self.word_sep = vocab, beam_width, lm, word_sep
        self.alpha, self.beta, self.oov_logprob = alpha, beta, oov_logprob
        self.words = sorted(lexicon)
        self.trie = build_lexicon_trie(self.words, lexicon)
        if compiled is None:
            self._ngram = no_compiled_tables()[:6]
            self._word_lm = np.full(len(self.words), -1, np.int64)
        else:
            t = compiled.tables
            self._ngram = (t.keys, t.slot_node, t.prob, t.backoff, t.suffix, t.extended)
            # Transcripts are upper case; an LM may be lower case.
            ids = [compiled.word_id(w) for w in self.words]
            self._word_lm = np.array([i if i >= 0 else compiled.word_id(w.lower()) for i, w in zip(ids, self.words)],
                                     np.int64).reshape(-1)
        self._smeared = self._smeared_unigrams(compiled)
        self._lookahead = alpha * self._smeared
        settings = np.zeros(1, LEXICON_SETTINGS)
        for name, value in {
            "width": beam_width, "sep": -1 if word_sep is None else word_sep, "sep_required": sep_required,
            "min_logprob": -math.inf if token_min_logprob is None else token_min_logprob,
            "beam_prune": -math.inf if beam_prune_logprob is None else beam_prune_logprob,
            "use_lm": lm is not None, "alpha": alpha, "beta": beta, "oov_logprob": oov_logprob,
            "lm_begin": 0 if compiled is None else compiled.begin, "lm_eos": 0 if compiled is None else compiled.eos,
            "unk_prob": 0.0 if compiled is None else compiled.tables.unk_prob, "recombine": recombine,
            "max_words": int(np.diff(self.trie.word_start).max(initial=0)),
        }.items():
            settings[name] = value
        self._settings = settings

    def with_weights(self, alpha: float, beta: float) -> LexiconBeamSearchDecoder:
        """A copy with LM weight ``alpha`` and word bonus ``beta``, for sweeps over them: it
        shares this decoder's trie and LM tables."""
        other = copy.copy(self)
        other.alpha, other.beta = alpha, beta
        other._lookahead = alpha * self._smeared
        other._settings = self._settings.copy()
        other._settings["alpha"], other._settings["beta"] = alpha, beta
        return other

    def _smeared_unigrams(self, compiled) -> np.ndarray:
        """(nodes,) the best unigram ln P among the words below each trie node (``alpha``
        times it is the lookahead); 0 at the root and without an LM."""
        n_nodes = len(self.trie.parent)
        if compiled is None:
            return np.zeros(n_nodes)
        unigram = np.array([score_word(compiled.tables, 0, i)[0] * LOG_10 if i >= 0 else self.oov_logprob
                            for i in self._word_lm])
        best = np.full(n_nodes, -math.inf)
        starts, ids = self.trie.word_start, self.trie.word_ids
        for node in range(n_nodes - 1, 0, -1):  # children before parents
            if starts[node + 1] > starts[node]:
                best[node] = max(best[node], unigram[ids[starts[node]: starts[node + 1]]].max())
            parent = self.trie.parent[node]
            best[parent] = max(best[parent], best[node])
        best[0] = 0.0
        return best

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[Hypothesis]:
        """The best hypothesis per utterance. log_probs: (B, T, V); lengths: (B,)."""
        if log_probs.shape[-1] != len(self.vocab):
            raise ValueError(f"log_probs has {log_probs.shape[-1]} units, the vocabulary {len(self.vocab)}")
        lp = np.ascontiguousarray(log_probs.detach().float().cpu().numpy())  # (B, T, V)
        lengths = [min(int(n), lp.shape[1]) for n in lengths.cpu().tolist()]
        return [self._decode_one(lp[b], n) for b, n in enumerate(lengths)]

    def _decode_one(self, lp: np.ndarray, n_frames: int) -> Hypothesis:
        """The best hypothesis of one utterance: lp (T, V), of which the first ``n_frames`` count."""
        trie = self.trie
        hist, _, rec, acoustic, final, recs, _, hist_word, hist_lm = lexicon_search(
            lp, n_frames, self._settings, trie.child_start, trie.child_unit, trie.child_node, trie.word_start,
            trie.word_ids, self._lookahead, self._word_lm, *self._ngram)
        complete = bool(np.isfinite(final).any())
        if complete:
            best = int(np.argmax(final))
            score = float(final[best])
        else:  # none ends between words: the best one's closed words
            partial = acoustic + hist_lm[hist]
            best = int(np.argmax(partial)) if len(partial) else -1
            score = float(partial[best]) if best >= 0 else -math.inf
        chain, closed = trace(recs, int(rec[best]) if best >= 0 else -1, complete, self._settings[0]["sep"])
        tokens = tuple(recs[chain, UNIT].tolist())
        frames = tuple(recs[chain, FRAME].tolist())
        words = [(self.words[hist_word[h]], first, last) for h, first, last in closed.tolist()]
        extras = {"words": words, "acoustic_score": float(acoustic[best]) if best >= 0 else -math.inf,
                  "complete": complete}
        return Hypothesis(" ".join(w for w, _, _ in words), tokens, frames, score, extras)
