"""The English corpus's text: coverage of training, and test sets held out by source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from asr.corpora.synthetic import english
from asr.corpora.synthetic.corpus import SynthConfig
from asr.corpora.synthetic.speakers import make_speakers
from asr.corpora.synthetic.english import (
    english_splits,
    fortune_text,
    frequent_words,
    lm_text,
    select_covering,
    speakable,
    wordnet_text,
)
from asr.corpora.synthetic.sentences import generate_sentences
from asr.text import normalize_text

REPO = Path(__file__).resolve().parents[1]
DEMO = SynthConfig()  # the demo corpus is made with the defaults


@pytest.fixture(scope="module")
def sources() -> None:
    try:
        wordnet_text()
        fortune_text()
    except english.TextSourceError as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def demo_text(sources: None) -> english.SplitText:
    return english_splits(*(DEMO.utterances(s) for s in ("train", "dev", "test", "test-indomain")), seed=DEMO.seed,
                          min_words=DEMO.min_words, max_words=DEMO.max_words)


def test_demo_training_text_covers_english(demo_text: english.SplitText) -> None:
    words = {w for s in demo_text.train for w in s.split()}
    assert len(words) >= 20_000
    top = frequent_words(5000)
    assert len(top) == 5000 and all(re.fullmatch(r"[A-Z']+", w) for w in top)
    assert sum(w in words for w in top) / len(top) >= 0.95


def test_general_test_set_shares_no_sentence_and_no_source_with_training(demo_text: english.SplitText) -> None:
    fortunes = set(fortune_text())
    examples, glosses = wordnet_text()
    wordnet = set(examples) | set(glosses)
    generated = set(generate_sentences(len(demo_text.train), DEMO.seed, DEMO.min_words, DEMO.max_words))
    general = demo_text.dev + demo_text.test
    assert len(demo_text.test) == DEMO.test_utterances and len(demo_text.dev) == DEMO.dev_utterances
    assert len(set(general)) == len(general)
    # dev and test come from the fortunes only, training never draws on them
    assert set(general) <= fortunes and not set(general) & (wordnet | generated)
    assert set(demo_text.train) <= wordnet | generated and not set(demo_text.train) & fortunes
    # the in-domain test holds out sentences of training's own sources
    assert set(demo_text.test_indomain) <= wordnet | generated
    assert not set(demo_text.test_indomain) & set(demo_text.train)
    assert all(normalize_text(s) == s and speakable(s, DEMO.min_words, DEMO.max_words)
               for s in demo_text.train + demo_text.test_indomain)


def test_lm_text_is_large_and_holds_no_test_sentence(demo_text: english.SplitText) -> None:
    tests = demo_text.test + demo_text.test_indomain
    text = lm_text(tests)
    assert len(text) >= 100_000 and len({w for s in text for w in s.split()}) >= 50_000
    assert not set(text) & set(tests)
    assert not set(text) & set(fortune_text())  # nor anything else from the general test's source


def test_recipe_lm_text_holds_no_test_sentence() -> None:
    """The LM the recipe built (when the demo has run) left out every test sentence on disk."""
    lm_file = REPO / "data" / "synthetic" / "lm" / "general.txt"
    manifests = [REPO / "data" / "synthetic" / "manifests" / f"{s}.jsonl" for s in ("test", "test-indomain")]
    if not lm_file.is_file() or not all(m.is_file() for m in manifests):
        pytest.skip("the synthetic recipe's LM stages have not run here")
    tests = {json.loads(line)["text"] for m in manifests for line in m.read_text().splitlines()}
    lm_sentences = set(lm_file.read_text().splitlines())
    assert tests and not lm_sentences & tests


def test_test_voices_never_speak_in_training() -> None:
    speakers = [s for s in make_speakers(DEMO) if s.engine == "espeak"]
    train = {s.variant for s in speakers if s.subset == "train"}
    for split in ("dev", "test", "test-indomain"):
        group = [s for s in speakers if s.subset == split]
        assert len(group) == DEMO.speakers(split) and not {s.variant for s in group} & train
    pairs = [(s.voice, s.variant) for s in speakers]
    assert len(pairs) == len(set(pairs))


def test_covering_selection_prefers_frequent_words_and_is_deterministic() -> None:
    pool = ["THE CAT SAT", "THE CAT SAT DOWN", "ZYGOTE QUORUM XYLEM", "HOWEVER MAYBE YES", "A B C", "THE DOG"]
    first = select_covering(pool, 2, seed=1, cover_share=1.0)
    assert first == select_covering(pool, 2, seed=1, cover_share=1.0)
    assert "HOWEVER MAYBE YES" in first  # three frequent words outweigh three rare ones
    assert len(select_covering(pool, 5, seed=1)) == 5 and len(set(select_covering(pool, 6, seed=2))) == 6


def test_speakable_refuses_what_espeak_would_spell() -> None:
    assert speakable("THE CAT SAT ON A MAT")
    assert not speakable("WATCH TV NOW")  # espeak says "tee vee"
    assert not speakable("TOO SHORT")
    assert not speakable(" ".join(["WORD"] * 21))


def test_a_missing_text_source_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from asr.cli import main

    monkeypatch.setattr(english, "WORDNET_DIR", tmp_path / "no-wordnet")
    assert main(["synth", "--out", str(tmp_path / "corpus"), "--train", "400", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "data.noun not found" in err[0] and "apt-get install wordnet-base" in err[0]
    assert not (tmp_path / "corpus").exists()
