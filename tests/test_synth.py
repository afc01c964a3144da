"""The sentence generator and the espeak-ng corpus synthesiser."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.synthetic import corpus as synth
from asr.corpora.synthetic.corpus import CorpusMismatchError, EspeakNotFoundError, SynthConfig, synthesize_corpus
from asr.corpora.synthetic.sentences import generate_sentences, vocabulary
from asr.text import normalize_text

TINY = SynthConfig(text="generator", train_utterances=6, dev_utterances=2, test_utterances=2,
                   test_indomain_utterances=2, test_engine_utterances=0, train_speakers=2, dev_speakers=1,
                   test_speakers=1, test_indomain_speakers=1, test_engine_speakers=0, seed=3, jobs=2)
COUNTS = {"train": 6, "dev": 2, "test": 2, "test-indomain": 2, "test-engine": 0}
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def test_sentences_are_deterministic_per_seed() -> None:
    assert generate_sentences(50, seed=7) == generate_sentences(50, seed=7)
    assert generate_sentences(50, seed=7) != generate_sentences(50, seed=8)
    assert generate_sentences(20, seed=7) == generate_sentences(50, seed=7)[:20]


def test_sentences_are_distinct_normalised_and_3_to_15_words() -> None:
    sentences = generate_sentences(2000, seed=0)
    assert len(set(sentences)) == 2000
    assert all(normalize_text(s) == s for s in sentences)
    lengths = Counter(len(s.split()) for s in sentences)
    assert min(lengths) == 3 and max(lengths) == 15
    assert 5 <= sum(n * c for n, c in lengths.items()) / 2000 <= 9  # mean words per sentence


def test_word_range_is_respected_and_impossible_requests_fail() -> None:
    assert all(5 <= len(s.split()) <= 7 for s in generate_sentences(100, seed=1, min_words=5, max_words=7))
    with pytest.raises(ValueError, match="distinct sentences"):
        generate_sentences(5, seed=1, min_words=40, max_words=50)


def test_vocabulary_is_broad_and_covers_every_generated_word() -> None:
    words = vocabulary()
    assert len(words) >= 1000
    assert all(normalize_text(w) == w and " " not in w for w in words)
    used = {w for s in generate_sentences(5000, seed=2) for w in s.split()}
    assert used <= words
    assert len(used) >= 1000
    assert {"DON'T", "O'CLOCK", "CHILDREN", "WENT", "TWENTY"} <= used


def test_text_is_predictable_enough_for_an_ngram_lm() -> None:
    """A bigram model of training text beats a unigram model on held-out text by far."""
    sentences = [["<s>"] + s.split() + ["</s>"] for s in generate_sentences(3000, seed=4)]
    train, held_out = sentences[:2500], sentences[2500:]
    unigrams = Counter(w for s in train for w in s[1:])
    bigrams = Counter(p for s in train for p in zip(s, s[1:]))
    contexts = Counter(a for s in train for a in s[:-1])
    total, size = sum(unigrams.values()), len(unigrams) + 1

    def unigram(w: str) -> float:
        return (unigrams[w] + 1) / (total + size)

    def bigram(a: str, w: str) -> float:
        return 0.7 * (bigrams[a, w] / contexts[a] if contexts[a] else 0.0) + 0.3 * unigram(w)

    pairs = [p for s in held_out for p in zip(s, s[1:])]
    unigram_ppl = math.exp(-sum(math.log(unigram(w)) for _, w in pairs) / len(pairs))
    bigram_ppl = math.exp(-sum(math.log(bigram(a, w)) for a, w in pairs) / len(pairs))
    assert bigram_ppl < 0.7 * unigram_ppl


def test_config_rejects_impossible_settings() -> None:
    with pytest.raises(ValueError):
        SynthConfig(dev_utterances=2, dev_speakers=3)
    with pytest.raises(ValueError):
        SynthConfig(noise=1.5)
    with pytest.raises(ValueError):
        SynthConfig(pitch=(50, 120))
    with pytest.raises(ValueError, match="test-engine speaks test's sentences"):
        SynthConfig(test_utterances=10)
    with pytest.raises(ValueError):
        SynthConfig(warp=(1.1, 0.9))


def test_missing_espeak_gives_one_line_install_hint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EspeakNotFoundError) as error:
        synthesize_corpus(tmp_path / "corpus", TINY, progress=False)
    message = str(error.value)
    assert "\n" not in message
    assert "apt-get install espeak-ng" in message and "brew install espeak-ng" in message


def _read_corpus(root: Path) -> dict[str, dict[str, str]]:
    """split -> {utterance id: text}, from the transcripts."""
    corpus: dict[str, dict[str, str]] = {}
    for split in synth.SPLITS:
        corpus[split] = {}
        for trans in sorted((root / split).glob("*/*/*.trans.txt")):
            lines = trans.read_text().splitlines()
            assert lines == sorted(lines)
            for line in lines:
                utterance_id, text = line.split(" ", 1)
                corpus[split][utterance_id] = text
    return corpus


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, synth.SynthReport]:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    root = tmp_path_factory.mktemp("synth") / "corpus"
    return root, synthesize_corpus(root, TINY, progress=False)


@needs_espeak
def test_tiny_corpus_has_librispeech_layout_and_16khz_flac(
    tiny_corpus: tuple[Path, synth.SynthReport],
) -> None:
    root, report = tiny_corpus
    assert report.utterances == COUNTS
    assert report.failures == () and not report.already_done
    corpus = _read_corpus(root)
    seconds = 0.0
    for split, utterances in corpus.items():
        assert len(utterances) == TINY.utterances(split)
        flacs = sorted((root / split).glob("*/*/*.flac"))
        assert sorted(f.stem for f in flacs) == sorted(utterances)
        for flac in flacs:
            speaker, chapter, _ = flac.stem.split("-")
            assert re.fullmatch(r"\d+-\d+-\d{4}", flac.stem)
            assert flac.parent == root / split / speaker / chapter
            info = sf.info(flac)
            assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
            audio, _ = sf.read(flac)
            assert 0.5 < len(audio) / 16_000 < 15 and 0.5 < np.abs(audio).max() <= 0.91
            seconds += len(audio) / 16_000
        assert all(normalize_text(t) == t for t in utterances.values())
    assert report.audio_seconds == pytest.approx(seconds, abs=0.01)


@needs_espeak
def test_speakers_and_sentences_do_not_cross_splits(tiny_corpus: tuple[Path, synth.SynthReport]) -> None:
    root, _ = tiny_corpus
    corpus = _read_corpus(root)
    rows = [[f.strip() for f in line.split("|")] for line in (root / "SPEAKERS.TXT").read_text().splitlines()
            if not line.startswith(";")]
    assert len(rows) == 5
    by_split = {split: {(voice, variant) for _, _, subset, voice, variant, *_ in rows if subset == split}
                for split in corpus}
    pairs = [pair for split in corpus for pair in by_split[split]]
    assert len(pairs) == len(set(pairs)) == 5  # no voice and variant pair in two splits
    # and no variant that speaks outside training speaks in it, in any accent
    train_variants = {variant for _, variant in by_split["train"]}
    assert not train_variants & {variant for split in synth.SPLITS[1:] for _, variant in by_split[split]}
    # perturbations reach training speakers alone
    assert all(r[7:] == ["1.000", "1.000", "0.00", "0.0"] for r in rows if r[2] != "train")
    ids = {split: {u.split("-")[0] for u in corpus[split]} for split in corpus}
    assert sum(map(len, ids.values())) == len(set().union(*ids.values()))
    assert ids == {split: {r[0] for r in rows if r[2] == split} for split in corpus}
    texts = [t for utterances in corpus.values() for t in utterances.values()]
    assert len(set(texts)) == len(texts)


@needs_espeak
def test_rerun_is_a_no_op_and_other_settings_are_refused(tiny_corpus: tuple[Path, synth.SynthReport]) -> None:
    root, _ = tiny_corpus
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    report = synthesize_corpus(root, replace(TINY, jobs=1), progress=False)
    assert report.already_done and report.utterances == COUNTS
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before
    with pytest.raises(CorpusMismatchError):
        synthesize_corpus(root, replace(TINY, seed=4), progress=False)


@needs_espeak
def test_output_does_not_depend_on_jobs(tiny_corpus: tuple[Path, synth.SynthReport], tmp_path: Path) -> None:
    root, _ = tiny_corpus
    synthesize_corpus(tmp_path, replace(TINY, jobs=1), progress=False)
    flacs = sorted(p.relative_to(root) for p in root.rglob("*.flac"))
    assert flacs == sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.flac"))
    for flac in flacs:
        assert np.array_equal(sf.read(root / flac)[0], sf.read(tmp_path / flac)[0])


@needs_espeak
def test_a_failed_utterance_is_reported_and_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = replace(TINY, jobs=1)  # in-process, so the patched espeak call is the one used
    real = synth._espeak_wav

    def fail_once(espeak: str, text: str, speaker: synth.Speaker) -> tuple[np.ndarray, int]:
        if speaker.subset == "dev":
            raise subprocess.CalledProcessError(1, espeak, stderr=b"simulated failure")
        return real(espeak, text, speaker)

    monkeypatch.setattr(synth, "_espeak_wav", fail_once)
    report = synthesize_corpus(tmp_path, config, progress=False)
    assert report.utterances == {**COUNTS, "dev": 0} and len(report.failures) == 2
    assert _read_corpus(tmp_path)["dev"] == {}

    monkeypatch.setattr(synth, "_espeak_wav", real)
    report = synthesize_corpus(tmp_path, config, progress=False)
    assert not report.already_done and report.failures == ()
    assert report.utterances == COUNTS
    assert synthesize_corpus(tmp_path, config, progress=False).already_done
