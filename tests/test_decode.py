import torch

from asr.decode import GreedyDecoder
from asr.text import Vocabulary


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
