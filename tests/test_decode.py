import subprocess
import sys
from pathlib import Path

import torch

from asr.decode import DecodingConfig, GreedyDecoder, build_decoder
from asr.hypothesis import Decoder
from asr.text import Vocabulary

REPO = Path(__file__).resolve().parents[1]


def _one_hot_log_probs(paths: list[list[int]], vocab_size: int) -> torch.Tensor:
    longest = max(len(p) for p in paths)
    lp = torch.full((len(paths), longest, vocab_size), -20.0)
    for b, path in enumerate(paths):
        for t, token in enumerate(path):
            lp[b, t, token] = 0.0
    return lp.log_softmax(-1)


def test_greedy_collapses_repeats_and_blanks():
    vocab = Vocabulary()
    a, b, space = vocab.encode("A")[0], vocab.encode("B")[0], vocab.space
    # A A _ A B B _ _ (space) B : repeated A separated by blank stays two As.
    path = [a, a, 0, a, b, b, 0, 0, space, b]
    hyps = GreedyDecoder(vocab)(_one_hot_log_probs([path, [0, 0, b]], len(vocab)), torch.tensor([10, 3]))
    assert hyps[0].text == "AAB B"
    assert hyps[0].tokens == (a, a, b, space, b)
    assert hyps[0].frames == (0, 3, 4, 8, 9)
    assert hyps[1].text == "B"


def test_greedy_respects_lengths_and_trims_spaces():
    vocab = Vocabulary()
    a, space = vocab.encode("A")[0], vocab.space
    lp = _one_hot_log_probs([[space, a, space, space, 0, a, a]], len(vocab))
    assert GreedyDecoder(vocab)(lp, torch.tensor([4]))[0].text == "A"
    assert GreedyDecoder(vocab)(lp, torch.tensor([7]))[0].text == "A A"


def test_both_decoders_are_decoders():
    vocab = Vocabulary()
    lp = _one_hot_log_probs([[0, vocab.encode("A")[0]]], len(vocab))
    for name in ("greedy", "beam"):
        decoder = build_decoder(vocab, DecodingConfig(name, beam_width=4))
        assert isinstance(decoder, Decoder)
        assert decoder(lp, torch.tensor([2]))[0].text == "A"


def test_importing_decode_loads_neither_numba_nor_kenlm():
    # The CLI's greedy paths import asr.decode; importing numba takes about half a second.
    code = "import sys, asr.decode; print(sorted({'numba', 'kenlm'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
