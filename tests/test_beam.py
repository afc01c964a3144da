"""CTC prefix beam search against brute-force enumeration of all alignments."""

import itertools
import math
from collections import defaultdict

import numpy as np
import pytest
import torch

from asr.decode import BeamSearchDecoder, GreedyDecoder, Hypothesis
from asr.text import Vocabulary

TINY = Vocabulary(("<blank>", " ", "A", "B"))
# Wide enough to keep every prefix of these tiny inputs, and no pruning: the search is exact.
EXACT = dict(beam_width=2000, token_top_k=None, token_min_logprob=None, blank_skip_threshold=None,
             beam_prune_logprob=None)


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
        dict(token_top_k=1),
        dict(token_top_k=3, token_min_logprob=-2.0),
        dict(token_min_logprob=-0.5),
        dict(blank_skip_threshold=0.5),
        dict(beam_width=1),
        dict(beam_prune_logprob=-1.0),
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
