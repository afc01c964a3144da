"""Lexicon-constrained CTC beam search against brute-force enumeration of every alignment."""

import itertools
import math
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import torch
from test_beam import collapse, random_log_probs
from test_lm import needs_kenlm, write_arpa

from asr.beam import LexiconBeamSearchDecoder
from asr.lm.load import NGramLM
from asr.text import Vocabulary

TINY = Vocabulary(("<blank>", " ", "A", "B"))  # units: blank 0, separator 1, A 2, B 3
SEP, A, B = 1, 2, 3
# A word that is a prefix of another (A, AB), homophones (B, BEE), a word with two
# pronunciations (BA), and a word the LM lacks (BB).
LEXICON = {"A": [(A,)], "AB": [(A, B)], "B": [(B,)], "BEE": [(B,)], "BA": [(B, A), (A, A)], "BB": [(B, B)]}
# No pruning, and every word history kept apart (recombining histories in one LM state keeps
# the best of them, not the sum over each word sequence's paths that brute force computes).
EXACT = {"beam_width": 5000, "token_min_logprob": None, "beam_prune_logprob": None, "recombine": False}


def parses(labeling: tuple[int, ...], lexicon: dict, sep: int | None) -> list[tuple[str, ...]]:
    """Every way to read ``labeling`` as words of ``lexicon`` (one entry per reading)."""
    if not labeling:
        return [()]
    out = []
    if labeling[0] == sep:
        out += parses(labeling[1:], lexicon, sep)
    for word, prons in lexicon.items():
        for pron in set(prons):
            if labeling[: len(pron)] == pron:
                out += [(word, *rest) for rest in parses(labeling[len(pron):], lexicon, sep)]
    return out


def brute_force(log_probs: np.ndarray, lexicon: dict, sep: int | None, lm_score) -> dict:
    """Score of each final state (words, last unit): ln of its CTC probability summed over
    every frame path and reading that reach it, plus ``lm_score(words)``. log_probs: (T, V)."""
    frames, n_units = log_probs.shape
    mass: dict = defaultdict(lambda: -math.inf)
    for path in itertools.product(range(n_units), repeat=frames):
        labeling = collapse(path)
        logp = float(log_probs[np.arange(frames), path].sum())
        for words in parses(labeling, lexicon, sep):
            key = (words, labeling[-1] if labeling else -1)
            mass[key] = np.logaddexp(mass[key], logp)
    return {key: m + lm_score(key[0]) for key, m in mass.items()}


def decode(decoder: LexiconBeamSearchDecoder, log_probs: torch.Tensor):
    return decoder(log_probs, torch.tensor([log_probs.shape[1]]))[0]


def peaky(units: list[int], vocab: Vocabulary = TINY) -> torch.Tensor:
    """(1, T, V) log-probs with one unit almost certain per frame."""
    logits = torch.full((1, len(units), len(vocab)), -8.0)
    logits[0, torch.arange(len(units)), torch.tensor(units)] = 8.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("sep", [SEP, None])
def test_never_emits_a_word_outside_the_lexicon(sep: int | None) -> None:
    vocab = Vocabulary()
    rng = np.random.default_rng(0)
    letters = vocab.encode("ABCDEFGH")
    lexicon = {}
    for _ in range(30):
        pron = tuple(int(u) for u in rng.choice(letters, rng.integers(1, 5)))
        lexicon[vocab.decode(list(pron))] = [pron]
    space = vocab.space if sep is not None else None
    decoder = LexiconBeamSearchDecoder(vocab, lexicon, beam_width=8, word_sep=space)
    for seed in range(40):
        log_probs = random_log_probs(seed, 2, 25, vocab, peak=3.0)
        for hyp in decoder(log_probs, torch.tensor([25, 13])):
            assert all(word in lexicon for word in hyp.text.split()), f"seed {seed}: {hyp.text!r}"
            assert [w for w, _, _ in hyp.extras["words"]] == hyp.text.split()
            # The units emitted, separators aside, spell the words one after another.
            assert vocab.decode([u for u in hyp.tokens if u != space]) == hyp.text.replace(" ", "")
            assert list(hyp.frames) == sorted(hyp.frames) and len(hyp.frames) == len(hyp.tokens)


def _check_against_brute_force(decoder: LexiconBeamSearchDecoder, sep: int | None, lm_score, frames: int) -> None:
    for seed in range(10):
        log_probs = random_log_probs(seed, 1, frames, peak=2.0)
        scores = brute_force(log_probs[0].double().numpy(), LEXICON, sep, lm_score)
        best = max(scores.values())
        hyp = decode(decoder, log_probs)
        assert hyp.score == pytest.approx(best, abs=1e-4), f"seed {seed}"
        winners = {" ".join(words) for (words, _), s in scores.items() if s > best - 1e-6}
        assert hyp.text in winners, f"seed {seed}"


@pytest.mark.parametrize("sep", [SEP, None])
@pytest.mark.parametrize("frames", [1, 4, 6])
def test_best_matches_brute_force_without_lm(sep: int | None, frames: int) -> None:
    decoder = LexiconBeamSearchDecoder(TINY, LEXICON, beta=0.7, word_sep=sep, **EXACT)
    _check_against_brute_force(decoder, sep, lambda words: 0.7 * len(words), frames)


@needs_kenlm
@pytest.mark.parametrize("sep", [SEP, None])
def test_best_matches_brute_force_with_lm(tmp_path: Path, sep: int | None) -> None:
    arpa = write_arpa(tmp_path / "lm.arpa", {"A": -0.6, "AB": -1.2, "B": -0.9, "BEE": -1.5, "BA": -1.0},
                      {"<s> BEE": -0.3, "A B": -0.2, "BEE A": -0.1, "AB </s>": -0.2, "B </s>": -1.5})
    lm, alpha, beta, oov = NGramLM(arpa), 0.8, 0.4, -6.0

    def lm_score(words: tuple[str, ...]) -> float:
        state, total = lm.begin_state(), 0.0
        for word in words:
            logp, state = lm.score_word(state, word)
            total += alpha * (logp if word in lm else oov) + beta
        return total + alpha * lm.end_score(state)

    decoder = LexiconBeamSearchDecoder(TINY, LEXICON, lm=lm, alpha=alpha, beta=beta, word_sep=sep, oov_logprob=oov,
                                       **EXACT)
    _check_against_brute_force(decoder, sep, lm_score, 6)


@needs_kenlm
def test_homophones_are_told_apart_by_the_lm(tmp_path: Path) -> None:
    lexicon = {"B": [(B,)], "BEE": [(B,)]}
    for favoured in ("B", "BEE"):
        other = "BEE" if favoured == "B" else "B"
        lm = NGramLM(write_arpa(tmp_path / f"{favoured}.arpa", {favoured: -0.2, other: -2.0}))
        assert decode(LexiconBeamSearchDecoder(TINY, lexicon, lm=lm), peaky([0, B, 0])).text == favoured


def test_every_pronunciation_is_read() -> None:
    vocab = Vocabulary(("<blank>", " ", "A", "B", "C"))
    lexicon = {"X": [(2, 3), (4,)], "Y": [(3,)]}
    decoder = LexiconBeamSearchDecoder(vocab, lexicon)
    assert decode(decoder, peaky([0, 4, 0], vocab)).text == "X"
    assert decode(decoder, peaky([2, 3, 0], vocab)).text == "X"
    hyp = decode(decoder, peaky([0, 3, 3, 0, 4, 0, 2, 3], vocab))
    assert hyp.text == "Y X X"
    assert hyp.tokens == (3, 4, 2, 3) and hyp.frames == (1, 4, 6, 7)
    assert hyp.extras["words"] == [("Y", 1, 1), ("X", 4, 4), ("X", 6, 7)]


@pytest.mark.parametrize("units", [[A, 0, B], [A, SEP, B], [SEP, A, SEP, 0, SEP, B, SEP], [A, A, 0, B, B]])
def test_the_separator_is_optional_between_words(units: list[int]) -> None:
    lexicon = {"A": [(A,)], "B": [(B,)]}
    hyp = decode(LexiconBeamSearchDecoder(TINY, lexicon, word_sep=SEP), peaky(units))
    assert hyp.text == "A B"
    assert hyp.extras["words"][0][0] == "A" and hyp.extras["complete"]


def test_a_required_separator_keeps_words_apart() -> None:
    lexicon = {"A": [(A,)], "B": [(B,)], "AB": [(A, B)]}
    optional = LexiconBeamSearchDecoder(TINY, lexicon, beta=2.0, word_sep=SEP)
    required = LexiconBeamSearchDecoder(TINY, lexicon, beta=2.0, word_sep=SEP, sep_required=True)
    assert decode(optional, peaky([A, B])).text == "A B"  # two word bonuses beat one
    assert decode(required, peaky([A, B])).text == "AB"
    assert decode(required, peaky([A, SEP, B])).text == "A B"
    with pytest.raises(ValueError, match="sep_required"):
        LexiconBeamSearchDecoder(TINY, lexicon, sep_required=True)


@pytest.mark.parametrize("frames", [4, 6])
def test_best_matches_brute_force_with_a_required_separator(frames: int) -> None:
    decoder = LexiconBeamSearchDecoder(TINY, LEXICON, beta=0.7, word_sep=SEP, sep_required=True, **EXACT)
    # Brute force: readings with a word followed by another word without the separator are out.
    spelt = {word: [(*pron, SEP) for pron in prons] for word, prons in LEXICON.items()}
    for seed in range(10):
        log_probs = random_log_probs(seed, 1, frames, peak=2.0)
        lp = log_probs[0].double().numpy()
        # The last word may end the utterance without the separator: a final separator frame
        # would change the alignments, so read every labeling both with and without one more SEP.
        scores: dict = defaultdict(lambda: -math.inf)
        for path in itertools.product(range(4), repeat=frames):
            labeling = collapse(path)
            logp = float(lp[np.arange(frames), path].sum())
            readings = parses(labeling, spelt, SEP)
            if labeling and labeling[-1] != SEP:
                readings += parses((*labeling, SEP), spelt, SEP)
            for words in readings:
                key = (words, labeling[-1] if labeling else -1)
                scores[key] = np.logaddexp(scores[key], logp)
        best = max(m + 0.7 * len(k[0]) for k, m in scores.items())
        assert decode(decoder, log_probs).score == pytest.approx(best, abs=1e-4), f"seed {seed}"


def test_without_a_separator_its_unit_is_never_emitted() -> None:
    lexicon = {"A": [(A,)], "B": [(B,)]}
    hyp = decode(LexiconBeamSearchDecoder(TINY, lexicon), peaky([A, SEP, B]))
    assert hyp.text == "A B" and SEP not in hyp.tokens


def test_all_blank_input_gives_empty_text() -> None:
    for sep in (SEP, None):
        hyp = decode(LexiconBeamSearchDecoder(TINY, LEXICON, word_sep=sep), peaky([0] * 5))
        assert (hyp.text, hyp.tokens, hyp.frames) == ("", (), ())
        assert hyp.score == pytest.approx(0.0, abs=1e-3)
    hyp = LexiconBeamSearchDecoder(TINY, LEXICON)(torch.zeros(1, 0, 4), torch.tensor([0]))[0]
    assert (hyp.text, hyp.score) == ("", 0.0)


def test_ending_inside_a_word_falls_back_to_the_closed_words() -> None:
    decoder = LexiconBeamSearchDecoder(TINY, {"AB": [(A, B)]}, beam_width=1)
    hyp = decode(decoder, peaky([A, B, 0, A]))
    assert (hyp.text, hyp.tokens, hyp.extras["complete"]) == ("AB", (A, B), False)
    assert decode(decoder, peaky([A])).text == ""


def test_rejects_bad_lexicons_and_options() -> None:
    with pytest.raises(ValueError, match="separator"):
        LexiconBeamSearchDecoder(TINY, {"A": [(A, SEP)]}, word_sep=SEP)
    with pytest.raises(ValueError, match="pronunciation"):
        LexiconBeamSearchDecoder(TINY, {"A": [()]})
    with pytest.raises(ValueError, match="pronunciation"):
        LexiconBeamSearchDecoder(TINY, {"A": []})
    with pytest.raises(ValueError, match="beam_width"):
        LexiconBeamSearchDecoder(TINY, {"A": [(A,)]}, beam_width=0)
