import pytest

from asr.metrics import ErrorCounts, char_errors, corpus_errors, word_errors


@pytest.mark.parametrize(
    ("ref", "hyp", "sub", "dele", "ins"),
    [
        ("THE CAT SAT", "THE CAT SAT", 0, 0, 0),
        ("THE CAT SAT", "THE BAT SAT", 1, 0, 0),
        ("THE CAT SAT ON THE MAT", "THE CAT ON MAT", 0, 2, 0),
        ("A B", "A X B Y", 0, 0, 2),
        ("A B C D", "X A B", 0, 2, 1),  # hand alignment: ins X, A=A, B=B, del C, del D
        ("ONE TWO THREE", "", 0, 3, 0),
    ],
)
def test_word_counts_against_hand_alignment(ref, hyp, sub, dele, ins):
    counts = word_errors(ref, hyp)
    assert (counts.substitutions, counts.deletions, counts.insertions) == (sub, dele, ins)
    assert counts.reference_length == len(ref.split())


def test_rates_and_sums():
    words, chars = corpus_errors([("A B C D", "A B C D"), ("E F", "E G H")])
    assert words == ErrorCounts(1, 0, 1, 6)
    assert words.rate == pytest.approx(2 / 6)
    # "E F" -> "E G H": chars E,|,F vs E,|,G,|,H: one substitution, two insertions.
    assert char_errors("E F", "E G H") == ErrorCounts(1, 0, 2, 3)
    assert chars.reference_length == 7 + 3


def test_empty_reference():
    assert word_errors("", "").rate == 0.0
    assert word_errors("", "A").insertions == 1
