"""CTC prefix beam search against brute-force enumeration of all alignments."""

import importlib.util
import inspect
import itertools
import math
import pickle
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.beam import BeamSearchDecoder, kernel, tables
from asr.decode import GreedyDecoder
from asr.hypothesis import Hypothesis
from asr.lm.load import NGramLM
from asr.text import Vocabulary

TINY = Vocabulary(("<blank>", " ", "A", "B"))
# Wide enough to keep every prefix of these tiny inputs, and no pruning: the search is exact.
EXACT = {"beam_width": 2000, "token_top_k": None, "token_min_logprob": None, "blank_skip_threshold": None,
         "beam_prune_logprob": None}


def random_log_probs(seed: int, batch: int, frames: int, vocab: Vocabulary = TINY, peak: float = 1.5) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (peak * torch.randn(batch, frames, len(vocab), generator=generator)).log_softmax(-1)  # (B, T, V)


def peaky_log_probs(seed: int, batch: int, frames: int, vocab: Vocabulary) -> torch.Tensor:
    """One token takes almost all the mass in each frame; blank most often."""
    rng = np.random.default_rng(seed)
    ids = np.where(rng.random((batch, frames)) < 0.6, 0, rng.integers(1, len(vocab), (batch, frames)))
    logits = np.full((batch, frames, len(vocab)), -4.0) + rng.normal(0, 0.5, (batch, frames, len(vocab)))
    np.put_along_axis(logits, ids[..., None], 8.0, axis=-1)
    return torch.from_numpy(logits).float().log_softmax(-1)


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out, previous = [], None
    for token in path:
        if token != previous and token != 0:
            out.append(token)
        previous = token
    return tuple(out)


def labeling_log_probs(log_probs: np.ndarray) -> dict[tuple[int, ...], float]:
    """ln P(labeling) for every labeling, by summing over all paths. log_probs: (T, V)."""
    frames, n_tokens = log_probs.shape
    totals: dict[tuple[int, ...], float] = defaultdict(lambda: -math.inf)
    for path in itertools.product(range(n_tokens), repeat=frames):
        logp = float(log_probs[np.arange(frames), path].sum())
        labeling = collapse(path)
        totals[labeling] = np.logaddexp(totals[labeling], logp)
    return totals


@pytest.mark.parametrize("frames", [1, 3, 5, 6])
def test_best_labeling_matches_brute_force(frames: int) -> None:
    decoder = BeamSearchDecoder(TINY, nbest=5, **EXACT)
    for seed in range(12):
        log_probs = random_log_probs(seed, 1, frames)
        totals = labeling_log_probs(log_probs[0].double().numpy())
        ranked = sorted(totals.items(), key=lambda kv: -kv[1])
        nbest = decoder.decode_nbest(log_probs, torch.tensor([frames]))[0]
        assert nbest[0].tokens == ranked[0][0], f"seed {seed}"
        assert nbest[0].score == pytest.approx(ranked[0][1], abs=1e-5)
        # Every n-best entry carries its labeling's exact CTC log-probability.
        for hyp in nbest:
            assert hyp.score == pytest.approx(totals[hyp.tokens], abs=1e-5)


def test_batch_with_lengths_decodes_each_utterance_alone() -> None:
    decoder = BeamSearchDecoder(TINY, **EXACT)
    log_probs = random_log_probs(7, 3, 6)
    lengths = torch.tensor([6, 2, 4])
    batch = decoder(log_probs, lengths)
    for b, n in enumerate(lengths.tolist()):
        alone = decoder(log_probs[b : b + 1, :n], torch.tensor([n]))[0]
        assert batch[b] == alone
        totals = labeling_log_probs(log_probs[b, :n].double().numpy())
        assert batch[b].tokens == max(totals, key=totals.get)


def test_nbest_is_sorted_and_distinct() -> None:
    decoder = BeamSearchDecoder(TINY, beam_width=8, nbest=6, token_min_logprob=None, blank_skip_threshold=None,
                                beam_prune_logprob=None)
    for nbest in decoder.decode_nbest(random_log_probs(3, 4, 12), torch.tensor([12, 12, 9, 5])):
        assert 1 <= len(nbest) <= 6
        scores = [h.score for h in nbest]
        assert scores == sorted(scores, reverse=True)
        assert len({h.text for h in nbest}) == len(nbest)


def test_hypothesis_fields() -> None:
    # Frames A A _ B _ space A: tokens A, B, space, A emitted at frames 0, 3, 5, 6.
    vocab = TINY
    ids = [2, 2, 0, 3, 0, 1, 2]
    log_probs = torch.full((1, len(ids), len(vocab)), -9.0)
    log_probs[0, torch.arange(len(ids)), torch.tensor(ids)] = 0.0
    log_probs = log_probs.log_softmax(-1)
    hyp = BeamSearchDecoder(vocab, beam_width=4)(log_probs, torch.tensor([len(ids)]))[0]
    assert isinstance(hyp, Hypothesis)
    assert hyp.text == "AB A"
    assert hyp.tokens == (2, 3, 1, 2)
    assert hyp.frames == (0, 3, 5, 6)


def test_greedy_and_beam_agree_on_peaky_input() -> None:
    vocab = Vocabulary()
    log_probs = peaky_log_probs(0, 8, 60, vocab)
    lengths = torch.tensor([60, 55, 60, 40, 60, 1, 60, 30])
    greedy = GreedyDecoder(vocab)(log_probs, lengths)
    beam = BeamSearchDecoder(vocab, beam_width=8, blank_skip_threshold=None)(log_probs, lengths)
    for g, b in zip(greedy, beam):
        assert (b.text, b.tokens, b.frames) == (g.text, g.tokens, g.frames)
        assert b.score >= g.score - 1e-4  # a labeling's probability includes its best path's


@pytest.mark.parametrize(
    "options",
    [
        {"token_top_k": 1},
        {"token_top_k": 3, "token_min_logprob": -2.0},
        {"token_min_logprob": -0.5},
        {"blank_skip_threshold": 0.5},
        {"beam_width": 1},
        {"beam_prune_logprob": -1.0},
    ],
)
def test_pruning_options_decode(options: dict) -> None:
    vocab = Vocabulary()
    log_probs = random_log_probs(1, 3, 40, vocab, peak=3.0)
    hyps = BeamSearchDecoder(vocab, **options)(log_probs, torch.tensor([40, 20, 0]))
    assert len(hyps) == 3
    assert all(math.isfinite(h.score) for h in hyps[:2])
    assert hyps[2].text == "" and hyps[2].tokens == ()
    for h in hyps:
        assert len(h.tokens) == len(h.frames) and list(h.frames) == sorted(h.frames)


def test_blank_skip_keeps_the_result_on_peaky_input() -> None:
    vocab = Vocabulary()
    log_probs = peaky_log_probs(4, 6, 80, vocab)
    lengths = torch.full((6,), 80)
    exact = BeamSearchDecoder(vocab, beam_width=8, blank_skip_threshold=None)(log_probs, lengths)
    skipping = BeamSearchDecoder(vocab, beam_width=8, blank_skip_threshold=0.999)(log_probs, lengths)
    for e, s in zip(exact, skipping):
        assert (s.text, s.tokens, s.frames) == (e.text, e.tokens, e.frames)
        assert s.score == pytest.approx(e.score, abs=1e-2)


def test_rejects_bad_options() -> None:
    with pytest.raises(ValueError):
        BeamSearchDecoder(TINY, beam_width=0)
    with pytest.raises(ValueError):
        BeamSearchDecoder(TINY, restrict_to_lm_vocab=True)
    with pytest.raises(ValueError):
        BeamSearchDecoder(TINY)(torch.zeros(1, 3, 5), torch.tensor([3]))


def test_a_copy_or_a_pickled_decoder_decodes_the_same() -> None:
    decoder = BeamSearchDecoder(TINY, beam_width=6, nbest=3)
    log_probs, lengths = random_log_probs(5, 3, 20), torch.tensor([20, 14, 3])
    expected = decoder.decode_nbest(log_probs, lengths)
    assert pickle.loads(pickle.dumps(decoder)).decode_nbest(log_probs, lengths) == expected
    assert decoder.with_weights(2.0, -1.0).decode_nbest(log_probs, lengths) == expected  # no LM: weights unused


@pytest.mark.skipif(importlib.util.find_spec("kenlm") is None, reason="kenlm is not installed")
def test_growing_and_renewed_lm_caches_change_no_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from test_lm import write_arpa  # test_lm imports this module

    lm = NGramLM(write_arpa(tmp_path / "lm.arpa", {"A": -0.8, "AB": -0.6, "BA": -1.2}, {"A AB": -0.2, "AB BA": -0.3}))
    log_probs, lengths = random_log_probs(9, 4, 40), torch.tensor([40, 33, 40, 17])
    options = {"beam_width": 8, "nbest": 3, "lm": lm, "alpha": 0.8, "beta": 0.5}
    expected = BeamSearchDecoder(TINY, **options).decode_nbest(log_probs, lengths)
    # A tiny hash table that must grow mid-utterance, and a cache renewed on every call.
    monkeypatch.setattr("asr.beam.cache._HASH_SIZE", 2)
    monkeypatch.setattr("asr.beam.cache._RESET_AT", 0)
    decoder = BeamSearchDecoder(TINY, **options)
    assert decoder.decode_nbest(log_probs, lengths) == expected
    first_cache = decoder._cache
    assert decoder.decode_nbest(log_probs, lengths) == expected
    assert decoder._cache is not first_cache


def test_search_hands_each_group_to_the_kernel_by_field_name() -> None:
    # search() passes each group's arrays on in field order; _search must name them so.
    parameters = list(inspect.signature(kernel._search.py_func).parameters)
    groups = [*tables.Prefixes._fields, *tables.Beam._fields, *tables.WordTable._fields]
    assert parameters == ["lp", "n_frames", "settings", *groups, "pending", "counters", *tables.CompiledTables._fields]
    with pytest.raises(TypeError, match="vocab_known"):
        tables.make_settings(width=4)
