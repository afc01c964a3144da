"""The compiled n-gram LM (asr/beam/ngram.py): KenLM's scores, the same search results as
scoring through KenLM in Python, and its cache file beside the ARPA file."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("kenlm")

from asr.beam import BeamSearchDecoder
from asr.beam.ngram import CACHE_SUFFIX, CompiledLM, compiled_lm
from asr.lm.load import NGramLM
from asr.text import Vocabulary

VOCAB = Vocabulary(("<blank>", " ", "A", "B", "C"))
# A trigram LM with backoff weights, a 3-gram whose 2-gram suffix (B C) is absent, 2-grams
# that no 3-gram extends, and <unk>.
ARPA = """\\data\\
ngram 1=7
ngram 2=7
ngram 3=4

\\1-grams:
-1.5\t<unk>\t0
-99\t<s>\t-0.4
-0.9\t</s>\t0
-0.6\tA\t-0.3
-0.8\tB\t-0.25
-1.1\tC\t-0.15
-1.0\tAB\t-0.05

\\2-grams:
-0.3\t<s> A\t-0.2
-0.5\tA B\t-0.1
-0.7\tB A\t0
-0.4\tA </s>
-0.45\tC A\t-0.12
-0.6\t<s> C\t-0.07
-0.9\tAB C

\\3-grams:
-0.1\t<s> A B
-0.2\tA B C
-0.15\tC A B
-0.25\t<s> C A

\\end\\
"""


@pytest.fixture
def arpa(tmp_path: Path) -> Path:
    path = tmp_path / "lm.arpa"
    path.write_text(ARPA)
    return path


def test_every_score_is_kenlms(arpa: Path) -> None:
    kenlm_lm, compiled = NGramLM(arpa), CompiledLM(arpa)
    words = ["A", "B", "C", "AB", "NOTAWORD"]
    for length in range(5):
        for sentence in itertools.product(words, repeat=length):
            ours, theirs = compiled.begin, kenlm_lm.begin_state()
            for word in sentence:
                expected, theirs = kenlm_lm.score_word(theirs, word)
                got, ours = compiled.score(ours, word)
                assert got == pytest.approx(expected, abs=1e-5), (sentence, word)
            assert compiled.end_score(ours) == pytest.approx(kenlm_lm.end_score(theirs), abs=1e-5), sentence


def _random_log_probs(seed: int, batch: int, frames: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (2.0 * torch.randn(batch, frames, len(VOCAB), generator=generator)).log_softmax(-1)


@pytest.mark.parametrize("options", [{}, {"restrict_to_lm_vocab": True}, {"oov_logprob": None}, {"nbest": 4},
                                     {"beam_width": 3, "alpha": 1.5, "beta": -0.5}],
                         ids=["default", "restrict", "kenlm-unk", "nbest", "narrow"])
@pytest.mark.parametrize("lower", [False, True], ids=["upper-lm", "lower-lm"])
def test_search_finds_what_it_finds_scoring_through_kenlm(arpa: Path, options: dict, lower: bool,
                                                          monkeypatch) -> None:
    if lower:
        text = ARPA.replace("AB", "ab")
        for letter in "ABC":
            text = text.replace(f"\t{letter}", f"\t{letter.lower()}").replace(f" {letter}", f" {letter.lower()}")
        arpa.write_text(text)
    options = {"beam_width": 8, "alpha": 0.8, "beta": 0.5, **options}
    log_probs, lengths = _random_log_probs(3, 6, 30), torch.tensor([30, 25, 30, 9, 30, 1])
    native = BeamSearchDecoder(VOCAB, lm=NGramLM(arpa), **options)
    assert native._compiled is not None
    got = native.decode_nbest(log_probs, lengths)
    monkeypatch.setattr("asr.beam.decoder.compiled_lm", lambda lm: None)
    through_kenlm = BeamSearchDecoder(VOCAB, lm=NGramLM(arpa), **options)
    expected = through_kenlm.decode_nbest(log_probs, lengths)
    assert [[h.text for h in hs] for hs in got] == [[h.text for h in hs] for hs in expected]
    for hs, es in zip(got, expected):
        for h, e in zip(hs, es):
            assert h.tokens == e.tokens and h.frames == e.frames
            assert h.score == pytest.approx(e.score, abs=1e-4)
    assert any(h.text for hs in got for h in hs)  # it decoded words: not vacuous


def test_tables_are_cached_beside_the_arpa_file_and_remade_when_it_changes(arpa: Path, monkeypatch) -> None:
    first = CompiledLM(arpa)
    cache = arpa.with_name(arpa.name + CACHE_SUFFIX)
    assert cache.is_file()
    monkeypatch.setattr(CompiledLM, "_compile", lambda self: pytest.fail("parsed again despite the cache"))
    again = CompiledLM(arpa)
    assert again.word_ids == first.word_ids and again.begin == first.begin
    assert all(np.array_equal(a, b, equal_nan=True) for a, b in zip(again.tables[:-1], first.tables[:-1]))
    assert again.score(again.begin, "A") == first.score(first.begin, "A")
    monkeypatch.undo()

    arpa.write_text(ARPA.replace("-0.3\t<s> A\t-0.2", "-0.35\t<s> A\t-0.2"))  # another file: remade
    changed = CompiledLM(arpa)
    assert changed.score(changed.begin, "A")[0] == pytest.approx(-0.35 * math.log(10))


def test_an_unwritable_cache_costs_only_time(arpa: Path, monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise OSError("read-only file system")

    monkeypatch.setattr("asr.beam.ngram.np.savez", refuse)
    lm = CompiledLM(arpa)
    assert not arpa.with_name(arpa.name + CACHE_SUFFIX).exists()
    assert lm.score(lm.begin, "A")[0] == pytest.approx(-0.3 * math.log(10))


def test_only_arpa_files_of_bounded_size_are_compiled(arpa: Path, monkeypatch) -> None:
    assert compiled_lm(NGramLM(arpa)) is not None
    monkeypatch.setattr("asr.beam.ngram.COMPILE_MAX_NGRAMS", 17)  # the file has 18: KenLM scores it
    lm = NGramLM(arpa)
    assert compiled_lm(lm) is None
    decoded = BeamSearchDecoder(VOCAB, lm=lm).decode_nbest(_random_log_probs(1, 1, 20), torch.tensor([20]))
    assert decoded[0][0].text is not None


def test_an_arpa_file_with_more_ngrams_than_its_header_says_is_one_lm_error(arpa: Path) -> None:
    from asr.lm.load import LMError

    arpa.write_text(ARPA.replace("ngram 3=4", "ngram 3=3"))
    with pytest.raises(LMError):  # KenLM refuses it first
        compiled_lm(NGramLM(arpa))
    with pytest.raises(ValueError, match="more 3-grams than the header's 3"):  # and so do the tables
        CompiledLM(arpa)
