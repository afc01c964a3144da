"""Word n-gram LMs: loading, errors, fusion into the beam search, building with IRSTLM."""

import importlib.util
import math
import random
import sys
from pathlib import Path

import pytest
import torch

from asr.lm import build as lm_build
from asr.lm import load as lm_load
from asr.beam import BeamSearchDecoder
from asr.lm.build import build_arpa
from asr.lm.load import LMDependencyError, LMError, NGramLM
from asr.text import Vocabulary
from test_beam import EXACT, TINY, labeling_log_probs, random_log_probs

needs_kenlm = pytest.mark.skipif(importlib.util.find_spec("kenlm") is None, reason="kenlm is not installed")


def write_arpa(path: Path, unigrams: dict[str, float], bigrams: dict[str, float] | None = None) -> Path:
    """A tiny bigram ARPA file (KenLM reads no unigram-only model); scores are log10 and
    every unigram backs off with weight 0."""
    unigrams = {"<unk>": -3.0, "<s>": -99.0, "</s>": -1.0, **unigrams}
    bigrams = bigrams or {"</s> </s>": -1.0}  # never queried
    lines = ["\\data\\", f"ngram 1={len(unigrams)}", f"ngram 2={len(bigrams)}", "", "\\1-grams:"]
    lines += [f"{p}\t{w}\t0" for w, p in unigrams.items()]
    lines += ["", "\\2-grams:"] + [f"{p}\t{w}" for w, p in bigrams.items()]
    path.write_text("\n".join(lines + ["", "\\end\\", ""]))
    return path


def log_probs_from(rows: list[dict[str, float]], vocab: Vocabulary = TINY) -> torch.Tensor:
    """(1, T, V) log-probs from per-frame probabilities; the rest of each frame goes to blank."""
    probs = torch.full((1, len(rows), len(vocab)), 1e-6)
    for t, row in enumerate(rows):
        for token, p in row.items():
            probs[0, t, vocab.tokens.index(token)] = p
        probs[0, t, 0] = max(1e-6, 1.0 - sum(row.values()))
    return (probs / probs.sum(-1, keepdim=True)).log()


def decode_text(decoder: BeamSearchDecoder, log_probs: torch.Tensor) -> str:
    return decoder(log_probs, torch.tensor([log_probs.shape[1]]))[0].text


# "A" then a space, then A or B with equal probability.
TIED = [{"A": 0.9}, {}, {" ": 0.9}, {"A": 0.45, "B": 0.45}]


@needs_kenlm
def test_scores_are_natural_logs(tmp_path: Path) -> None:
    lm = NGramLM(write_arpa(tmp_path / "lm.arpa", {"A": -0.5, "B": -1.0}))
    assert lm.order == 2
    assert lm.words == {"A", "B"}
    logp, _ = lm.score_word(lm.begin_state(), "B")
    assert logp == pytest.approx(-1.0 * math.log(10), abs=1e-5)
    assert lm.score_sentence(["A", "B"]) == pytest.approx((-0.5 - 1.0 - 1.0) * math.log(10), abs=1e-5)


@needs_kenlm
def test_lm_with_zero_weights_changes_nothing(tmp_path: Path) -> None:
    lm = NGramLM(write_arpa(tmp_path / "lm.arpa", {"A": -0.2, "B": -2.0, "AB": -1.0}, {"A B": -0.1, "B A": -3.0}))
    log_probs = (2.0 * torch.randn(4, 30, len(TINY), generator=torch.Generator().manual_seed(0))).log_softmax(-1)
    lengths = torch.tensor([30, 30, 17, 5])
    plain = BeamSearchDecoder(TINY, beam_width=8, nbest=4).decode_nbest(log_probs, lengths)
    fused = BeamSearchDecoder(TINY, beam_width=8, nbest=4, lm=lm, alpha=0.0, beta=0.0).decode_nbest(log_probs, lengths)
    for p, f in zip(plain, fused):
        assert [(h.text, h.tokens, h.frames, h.score) for h in p] == [(h.text, h.tokens, h.frames, h.score) for h in f]


@needs_kenlm
def test_lm_breaks_an_acoustic_tie_in_its_favour(tmp_path: Path) -> None:
    log_probs = log_probs_from(TIED)
    prefers_a = NGramLM(write_arpa(tmp_path / "a.arpa", {"A": -0.5, "B": -0.5}, {"A A": -0.1, "A B": -2.0}))
    prefers_b = NGramLM(write_arpa(tmp_path / "b.arpa", {"A": -0.5, "B": -0.5}, {"A A": -2.0, "A B": -0.1}))
    assert decode_text(BeamSearchDecoder(TINY, beam_width=4, lm=prefers_a, alpha=1.0), log_probs) == "A A"
    assert decode_text(BeamSearchDecoder(TINY, beam_width=4, lm=prefers_b, alpha=1.0), log_probs) == "A B"


@needs_kenlm
def test_fused_score_is_acoustic_plus_weighted_lm_and_bonus(tmp_path: Path) -> None:
    lm = NGramLM(write_arpa(tmp_path / "lm.arpa", {"A": -0.5, "B": -0.7}, {"A A": -0.1, "A B": -2.0}))
    hyp = BeamSearchDecoder(TINY, beam_width=4, lm=lm, alpha=0.7, beta=0.3)(log_probs_from(TIED), torch.tensor([4]))[0]
    words = hyp.text.split()
    assert hyp.extras["lm_score"] == pytest.approx(0.7 * lm.score_sentence(words) + 0.3 * len(words), abs=1e-5)
    assert hyp.score == pytest.approx(hyp.extras["acoustic_score"] + hyp.extras["lm_score"], abs=1e-9)


@needs_kenlm
@pytest.mark.parametrize("oov_logprob", [-6.0, None])
def test_best_fused_hypothesis_matches_brute_force(tmp_path: Path, oov_logprob: float | None) -> None:
    # With a beam that keeps every prefix, the search must find the labeling with the best
    # CTC + LM + bonus score over all labelings.
    lm = NGramLM(write_arpa(tmp_path / "lm.arpa", {"A": -0.8, "AB": -0.6, "BA": -1.2},
                            {"AB A": -0.2, "A BA": -0.1, "BA </s>": -0.1}))
    alpha, beta = 0.8, 0.4
    decoder = BeamSearchDecoder(TINY, lm=lm, alpha=alpha, beta=beta, oov_logprob=oov_logprob, **EXACT)
    for seed in range(6):
        log_probs = random_log_probs(seed, 1, 5)
        best_text, best_score = None, -math.inf
        for tokens, ctc in labeling_log_probs(log_probs[0].double().numpy()).items():
            words = TINY.decode(list(tokens)).split()
            state, lm_score = lm.begin_state(), 0.0
            for word in words:
                logp, state = lm.score_word(state, word)
                lm_score += alpha * (logp if word in lm.words or oov_logprob is None else oov_logprob) + beta
            score = ctc + lm_score + alpha * lm.end_score(state)
            if score > best_score:
                best_text, best_score = " ".join(words), score
        hyp = decoder(log_probs, torch.tensor([5]))[0]
        assert hyp.text == best_text, f"seed {seed}"
        assert hyp.score == pytest.approx(best_score, abs=1e-5)


@needs_kenlm
def test_lower_case_lm_serves_an_upper_case_model(tmp_path: Path) -> None:
    lm = NGramLM(write_arpa(tmp_path / "lower.arpa", {"a": -0.5, "b": -0.5}, {"a a": -2.0, "a b": -0.1}))
    assert lm.word_case(TINY) == "lower"
    assert decode_text(BeamSearchDecoder(TINY, beam_width=4, lm=lm, alpha=1.0), log_probs_from(TIED)) == "A B"


@needs_kenlm
def test_restrict_to_lm_vocab_keeps_partial_words_inside_the_lm(tmp_path: Path) -> None:
    # Acoustically "BA" wins, then "A"; the LM only knows "AB" (and alpha = 0 mutes its scores).
    log_probs = log_probs_from([{"B": 0.7, "A": 0.3}, {"A": 0.7, "B": 0.3}])
    lm = NGramLM(write_arpa(tmp_path / "lm.arpa", {"AB": -1.0}))
    assert decode_text(BeamSearchDecoder(TINY, lm=lm, alpha=0.0, beta=0.0), log_probs) == "BA"
    restricted = BeamSearchDecoder(TINY, lm=lm, alpha=0.0, beta=0.0, restrict_to_lm_vocab=True)
    assert decode_text(restricted, log_probs) == "AB"


@needs_kenlm
def test_missing_and_malformed_files_raise_one_line(tmp_path: Path) -> None:
    with pytest.raises(LMError, match="missing.arpa") as missing:
        NGramLM(tmp_path / "missing.arpa")
    (tmp_path / "bad.arpa").write_text("this is not\nan ARPA file\n")
    with pytest.raises(LMError, match="bad.arpa") as malformed:
        NGramLM(tmp_path / "bad.arpa")
    for err in (missing, malformed):
        assert "\n" not in str(err.value)


@needs_kenlm
def test_vocabulary_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    digits = NGramLM(write_arpa(tmp_path / "digits.arpa", {"1": -1.0, "2-3": -1.0, "A": -1.0}))
    with pytest.raises(LMError, match="cannot emit: '-' '1' '2' '3'"):
        BeamSearchDecoder(TINY, lm=digits)
    mixed = NGramLM(write_arpa(tmp_path / "mixed.arpa", {"Ab": -1.0, "ba": -1.0, "B": -1.0}))
    with pytest.raises(LMError, match="mixed case") as err:
        BeamSearchDecoder(TINY, lm=mixed)
    assert "\n" not in str(err.value)


def test_missing_kenlm_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kenlm", None)  # makes `import kenlm` fail
    with pytest.raises(LMDependencyError, match="pip install") as err:
        NGramLM(tmp_path / "lm.arpa")
    assert "\n" not in str(err.value)


def test_missing_irstlm_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lm_build, "_IRSTLM_HOMES", ())
    monkeypatch.setenv("IRSTLM", str(tmp_path))
    monkeypatch.setenv("PATH", str(tmp_path))
    (tmp_path / "text.txt").write_text("A B\n")
    with pytest.raises(LMDependencyError, match="apt-get install irstlm"):
        build_arpa(tmp_path / "text.txt", 2, tmp_path / "lm.arpa")


def _has_irstlm() -> bool:
    try:
        lm_build._irstlm_home()
    except LMDependencyError:
        return False
    return True


@pytest.mark.skipif(not _has_irstlm(), reason="IRSTLM is not installed")
@pytest.mark.parametrize("smoothing", ["improved-kneser-ney", "witten-bell"])
def test_build_arpa_with_irstlm(tmp_path: Path, smoothing: str) -> None:
    # Random sentences, so that counts of counts are like real text's (modified Kneser-Ney needs them).
    rng = random.Random(0)
    words = "THE CAT DOG SAT RAN ON A MAT LOG AND IT'S HOME".split()
    sentences = [" ".join(rng.choices(words, k=rng.randint(2, 8))) for _ in range(100)]
    sentences += ["THE CAT SAT ON THE MAT"] * 10
    text = tmp_path / "text.txt"
    text.write_text("\n".join(sentences) + "\n\n")
    out = build_arpa(text, 3, tmp_path / "lm" / "lm.arpa", smoothing=smoothing)
    assert out == tmp_path / "lm" / "lm.arpa"
    assert out.read_text().lstrip().startswith("\\data\\")
    assert lm_load.read_arpa_unigrams(out) == set(words)
    if importlib.util.find_spec("kenlm") is not None:
        lm = NGramLM(out)
        assert lm.order == 3
        assert lm.score_sentence("THE CAT SAT ON THE MAT".split()) > lm.score_sentence("MAT THE ON SAT CAT THE".split())
    with pytest.raises(LMError, match="empty"):
        (tmp_path / "empty.txt").write_text("\n")
        build_arpa(tmp_path / "empty.txt", 3, tmp_path / "empty.arpa")


def _has_build_binary() -> bool:
    try:
        lm_build.find_build_binary()
    except LMDependencyError:
        return False
    return True


needs_build_binary = pytest.mark.skipif(not _has_build_binary() or importlib.util.find_spec("kenlm") is None,
                                        reason="KenLM's build_binary or the kenlm module is not installed")


@needs_build_binary
def test_binary_lm_scores_and_decodes_as_its_arpa(tmp_path: Path) -> None:
    arpa = write_arpa(tmp_path / "lm.arpa", {"A": -0.4, "B": -0.9, "AB": -1.3, "BA": -2.1},
                      {"<s> A": -0.2, "A B": -0.3, "B A": -1.7, "AB </s>": -0.1, "A A": -2.5})
    binary = lm_build.build_binary(arpa, tmp_path / "lm" / "lm.bin")
    assert binary == tmp_path / "lm" / "lm.bin"
    assert [p.name for p in binary.parent.iterdir()] == ["lm.bin"]  # no partial file left behind
    from_arpa, from_binary = NGramLM(arpa), NGramLM(binary)
    assert from_binary.order == from_arpa.order == 2
    assert from_binary.words == from_arpa.words == {"A", "B", "AB", "BA"}
    rng = random.Random(0)
    for _ in range(200):
        words = rng.choices(["A", "B", "AB", "BA", "C", "<unk>"], k=rng.randint(0, 6))
        assert from_binary.score_sentence(words) == pytest.approx(from_arpa.score_sentence(words), abs=1e-4)
    # Knowing the words, the decoder searches the same way with either file.
    log_probs = (2.0 * torch.randn(3, 25, len(TINY), generator=torch.Generator().manual_seed(1))).log_softmax(-1)
    lengths = torch.tensor([25, 20, 9])
    hyps = [BeamSearchDecoder(TINY, beam_width=8, nbest=3, lm=lm, alpha=0.8, beta=0.5).decode_nbest(log_probs, lengths)
            for lm in (from_arpa, from_binary)]
    for a, b in zip(*hyps):
        assert [h.text for h in a] == [h.text for h in b]
        assert [h.score for h in a] == pytest.approx([h.score for h in b], abs=1e-3)


@needs_kenlm
def test_binary_words_are_read_only_from_kenlm_binaries(tmp_path: Path) -> None:
    arpa = write_arpa(tmp_path / "lm.arpa", {"A": -0.5})
    assert lm_load.read_binary_words(arpa) is None
    (tmp_path / "short.bin").write_bytes(b"mmap lm")
    assert lm_load.read_binary_words(tmp_path / "short.bin") is None


@needs_kenlm
def test_built_arpa_has_no_positive_log_probability(tmp_path: Path) -> None:
    # IRSTLM rounds some probabilities of 1 above it (1.12261e-07 in a 4-gram of the general-English
    # text); the kenlm module refuses such a file.
    raw = write_arpa(tmp_path / "raw.arpa", {"A": -0.5, "B": -1.0}, {"A B": 1.12261e-07, "B A": -0.3})
    with pytest.raises(LMError, match="Positive log probability"):
        NGramLM(raw)
    lm_build._copy_clamping_positive_logprobs(raw, tmp_path / "lm.arpa")
    lm = NGramLM(tmp_path / "lm.arpa")
    assert lm.score_word(lm.score_word(lm.begin_state(), "A")[1], "B")[0] == 0.0
    changed = [(a, b) for a, b in zip(raw.read_text().splitlines(), (tmp_path / "lm.arpa").read_text().splitlines())
               if a != b]
    assert changed == [("1.12261e-07\tA B", "0\tA B")]


def test_missing_build_binary_is_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from asr.cli import main

    monkeypatch.delenv(lm_build.KENLM_BIN_ENV, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(lm_build.sysconfig, "get_path", lambda name: str(tmp_path))
    arpa = write_arpa(tmp_path / "lm.arpa", {"A": -0.5})
    assert main(["lm", "binary", "--arpa", str(arpa), "--out", str(tmp_path / "lm.bin")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "build_binary is not installed" in err[0]
    assert "bash scripts/build_kenlm.sh" in err[0] and "KENLM_BIN" in err[0]
    assert not (tmp_path / "lm.bin").exists()


def test_build_binary_is_found_in_kenlm_bin_and_its_failure_is_one_line(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    tools = tmp_path / "kenlm" / "bin"
    tools.mkdir(parents=True)
    fake = tools / "build_binary"
    fake.write_text("#!/bin/sh\necho 'Reading lm.arpa' >&2\necho 'util/file.cc:42 in Fail threw: disk full' >&2\n"
                    "for last; do :; done\necho partial > \"$last\"\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv(lm_build.KENLM_BIN_ENV, str(tools))
    assert lm_build.find_build_binary() == fake
    arpa = write_arpa(tmp_path / "lm.arpa", {"A": -0.5})
    with pytest.raises(LMError, match="lm.arpa: build_binary failed: .*disk full") as err:
        lm_build.build_binary(arpa, tmp_path / "out" / "lm.bin")
    assert "\n" not in str(err.value)
    assert list((tmp_path / "out").iterdir()) == []  # neither the output nor its partial file
    (tmp_path / "text.txt").write_text("A B\n")
    with pytest.raises(LMError, match="not an ARPA file"):
        lm_build.build_binary(tmp_path / "text.txt", tmp_path / "out" / "lm.bin")
