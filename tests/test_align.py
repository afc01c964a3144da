"""Word timings from CTC log-probabilities: where each word of a hypothesis starts and ends."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from asr.align import align_words
from asr.decode import GreedyDecoder
from asr.hypothesis import Hypothesis
from asr.text import Vocabulary

VOCAB = Vocabulary()


def test_align_words_on_hand_made_log_probs() -> None:
    h, i, y, o = (VOCAB.encode(c)[0] for c in "HIYO")
    space = VOCAB.space
    # frames:  0  1  2  3  4  5  6  7  8      9  10 11 12 13 14 15
    path = [0, h, h, 0, i, 0, 0, 0, space, 0, 0, y, o, o, o, 0]
    probs = torch.full((len(path), len(VOCAB)), 0.01)
    for t, token in enumerate(path):
        probs[t, token] = 0.9 if t != 13 else 0.6  # a less sure frame inside O's run
    log_probs = (probs / probs.sum(-1, keepdim=True)).log()
    hyp = GreedyDecoder(VOCAB)(log_probs[None], torch.tensor([len(path)]))[0]
    words = align_words(hyp, log_probs, VOCAB, frame_seconds=0.03, offset=10.0)
    assert [w.text for w in words] == ["HI", "YO"]
    assert words[0].start == pytest.approx(10.03) and words[0].end == pytest.approx(10.15)  # frames 1..4
    assert words[1].start == pytest.approx(10.33) and words[1].end == pytest.approx(10.45)  # frames 11..14
    p = float(probs[1, h] / probs[1].sum())
    assert words[0].confidence == pytest.approx(p) and 0 <= words[1].confidence <= 1
    # A repeated letter after a blank is a new letter, and a word ends at its own last letter.
    hyp = Hypothesis("OO", (o, o), (1, 3))
    one_hot = torch.full((5, len(VOCAB)), -10.0)
    for t, token in enumerate([0, o, 0, o, 0]):
        one_hot[t, token] = 0.0
    (word,) = align_words(hyp, one_hot.log_softmax(-1), VOCAB, frame_seconds=0.03)
    assert (word.start, word.end) == pytest.approx((0.03, 0.12))


def _spiked(frames: int, spikes: dict[int, str]) -> torch.Tensor:
    """(frames, V) log-probs: blank at every frame but ``spikes`` (frame -> letter)."""
    log_probs = torch.full((frames, len(VOCAB)), -10.0)
    log_probs[:, 0] = 0.0
    for frame, letter in spikes.items():
        log_probs[frame, VOCAB.encode(letter)[0]], log_probs[frame, 0] = 0.0, -10.0
    return log_probs.log_softmax(-1)


def test_align_words_snaps_edges_to_sound_and_splits_at_silence() -> None:
    log_probs = _spiked(60, {10: "A", 14: "B", 30: "C"})
    loud = np.zeros(60, bool)
    loud[5:21] = loud[29:41] = True  # 8 silent 30 ms frames (SILENCE_SPLIT_SECONDS) between B and C
    hyp = GreedyDecoder(VOCAB)(log_probs[None], torch.tensor([60]))[0]
    assert hyp.text == "ABC"
    without = align_words(hyp, log_probs, VOCAB, frame_seconds=0.03)
    assert [(w.text, w.start, w.end) for w in without] == [("ABC", pytest.approx(0.3), pytest.approx(0.93))]
    words = align_words(hyp, log_probs, VOCAB, frame_seconds=0.03, loud=loud)
    assert [w.text for w in words] == ["AB", "C"]
    # AB: back to the first loud frame (5), on to the last (20). C: back to frame 29; forward
    # only 0.2 s (7 frames) although the sound goes on.
    assert (words[0].start, words[0].end) == pytest.approx((0.15, 0.63))
    assert (words[1].start, words[1].end) == pytest.approx((0.87, 1.14))


def test_a_letter_emitted_in_silence_stays_with_its_word() -> None:
    """A bidirectional model may spike an utterance's first letter in the silence before it
    ("T ... HE"): far from any sound, the letter is not split off as a word of its own."""
    log_probs = _spiked(60, {2: "T", 30: "H", 33: "E"})
    loud = np.zeros(60, bool)
    loud[28:40] = True  # the word's sound; the T at frame 2 is 0.78 s before it
    hyp = GreedyDecoder(VOCAB)(log_probs[None], torch.tensor([60]))[0]
    words = align_words(hyp, log_probs, VOCAB, frame_seconds=0.03, loud=loud)
    assert [w.text for w in words] == ["THE"]
    assert (words[0].start, words[0].end) == pytest.approx((0.84, 1.2))  # its sound, not the stray T
    loud[0:6] = True  # the same T, heard: a word of its own
    assert [w.text for w in align_words(hyp, log_probs, VOCAB, frame_seconds=0.03, loud=loud)] == ["T", "HE"]
