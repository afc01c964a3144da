"""Text for the synthetic corpus and its language model, drawn from offline sources.

Three sources, each installable by package name and each with its own role:

- **WordNet** (Debian ``wordnet-base``; WordNet 3.0 licence, use and redistribution
  allowed): ~48,000 usage examples ("the team is a unit") and ~137,000 gloss phrases.
  The acoustic training text and the general language model come from here.
- **fortunes** (Debian ``fortunes``; free to redistribute): quips, proverbs and quotations
  in everyday English. Only the general-English **dev and test** sets come from here, so
  the test measures English the model never read, from a source training never draws on.
- **the sentence generator** (:mod:`asr.corpora.synthetic.sentences`): questions, commands,
  times and numbers that the other two lack; a minor share of the training text.

Every sentence passes through ``asr.text.normalize_text``, the normaliser scoring uses.
"""

from __future__ import annotations

import heapq
import random
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from asr.corpora.synthetic.sentences import generate_sentences
from asr.errors import UserError
from asr.text import normalize_text

WORDNET_DIR = Path("/usr/share/wordnet")
FORTUNES_DIR = Path("/usr/share/games/fortunes")
DICTIONARY = Path("/usr/share/dict/words")  # Debian wamerican: the everyday-word filter of test sentences
WORDNET_PARTS = ("noun", "verb", "adj", "adv")
# fortune files of everyday prose; left out: computing jargon (computers, linux, perl, debian,
# knghtbrd), pictures (ascii-art), foreign phrases (translate-me), verse laid out in columns
# (songs-poems, tao), dialogue scripts (art, startrek, riddles) and nonsense (zippy).
FORTUNE_FILES = ("cookie", "drugs", "education", "ethnic", "food", "fortunes", "goedel", "humorists", "kids",
                 "law", "literature", "love", "magic", "medicine", "men-women", "miscellaneous", "news",
                 "people", "pets", "platitudes", "politics", "science", "sports", "wisdom", "work")
MIN_WORDS, MAX_WORDS = 3, 15
# Training text selection: words among the most frequent in English (by wordfreq) are worth
# covering first; a model that never heard HOWEVER or MAYBE cannot spell them.
FREQUENT_WORDS = 8000
FREQUENT_WEIGHT = 10.0
_QUOTED = re.compile(r'"([^"]+)"')
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(]?[A-Z])")
_VOWEL = re.compile(r"[AEIOUY]")


class TextSourceError(UserError, RuntimeError):
    """A text source is not installed or holds nothing usable."""


def _missing(path: Path, package: str) -> TextSourceError:
    return TextSourceError(f"{path} not found: install it with 'sudo apt-get install {package}' (Debian/Ubuntu)")


def speakable(sentence: str, min_words: int = MIN_WORDS, max_words: int = MAX_WORDS) -> bool:
    """A normalised sentence that espeak-ng reads as written: a sensible length, and every
    word of two or more letters has a vowel (espeak spells ``TV`` or ``NSA`` letter by letter,
    which its transcript would not say)."""
    words = sentence.split()
    return min_words <= len(words) <= max_words and all(len(w) == 1 or _VOWEL.search(w) for w in words)


def _unique(sentences: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(s for s in sentences if s))


def wordnet_text(root: Path | None = None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """WordNet's usage examples and gloss phrases, normalised and deduplicated, in file order.

    A synset line ends ``| gloss; "example"; "example"``; a gloss is split at semicolons.
    """
    return _wordnet_text(Path(root or WORDNET_DIR))


@lru_cache(maxsize=4)
def _wordnet_text(root: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    examples: list[str] = []
    glosses: list[str] = []
    for part in WORDNET_PARTS:
        path = Path(root) / f"data.{part}"
        if not path.is_file():
            raise _missing(path, "wordnet-base")
        with open(path, encoding="latin-1") as f:
            for line in f:
                if line.startswith(" ") or "|" not in line:
                    continue  # the licence header lines start with spaces
                gloss = line.split("|", 1)[1]
                examples.extend(normalize_text(q) for q in _QUOTED.findall(gloss))
                glosses.extend(normalize_text(g) for g in _QUOTED.sub(" ", gloss).split(";"))
    return tuple(_unique(examples)), tuple(_unique(glosses))


def _fortune_sentences(entry: str) -> Iterator[str]:
    """The sentences of one fortune, without its attribution ("-- Mark Twain") lines."""
    lines = [ln for ln in entry.splitlines() if not ln.strip().startswith(("--", "- "))]
    prose = " ".join(ln.strip() for ln in lines)
    for sentence in _SENTENCE_END.split(prose):
        yield normalize_text(sentence)


@lru_cache(maxsize=1)
def dictionary_words(path: Path = DICTIONARY) -> frozenset[str]:
    """Lower-case entries of the system word list (no names), upper-cased, plus ``I``."""
    if not Path(path).is_file():
        raise _missing(Path(path), "wamerican")
    with open(path, encoding="utf-8", errors="replace") as f:
        return frozenset(w.strip().upper() for w in f if w.strip() and w.strip().islower()) | {"I"}


def fortune_text(root: Path | None = None) -> tuple[str, ...]:
    """Everyday sentences from the fortune files: speakable, and every word a lower-case entry of
    the system dictionary (which leaves out names, foreign words and typos), deduplicated."""
    return _fortune_text(Path(root or FORTUNES_DIR))


@lru_cache(maxsize=4)
def _fortune_text(root: Path) -> tuple[str, ...]:
    words = dictionary_words()
    sentences: list[str] = []
    for name in FORTUNE_FILES:
        path = Path(root) / name
        if not path.is_file():
            raise _missing(path, "fortunes")
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            sentences.extend(s for s in _fortune_sentences(entry)
                             if speakable(s, 4, 16) and all(w in words for w in s.split()))
    return tuple(_unique(sentences))


@dataclass(frozen=True)
class SplitText:
    """The sentences of every split of an English corpus."""

    train: list[str]
    dev: list[str]
    test: list[str]
    test_indomain: list[str]


@lru_cache(maxsize=2)
def frequent_words(n: int) -> tuple[str, ...]:
    """The ``n`` most frequent English words by ``wordfreq``, upper-cased, letters and
    apostrophes only, most frequent first."""
    import wordfreq

    words = (w.upper() for w in wordfreq.top_n_list("en", 2 * n + 1000))
    return tuple(w for w in words if re.fullmatch(r"[A-Z']+", w))[:n]


def select_covering(pool: list[str], n: int, seed: int, cover_share: float = 0.85) -> list[str]:
    """``n`` sentences of ``pool``: ``cover_share`` of them picked greedily for the most
    words not yet covered, a word among English's ``FREQUENT_WORDS`` most frequent counting
    ``FREQUENT_WEIGHT`` times any other, so common words are covered first and breadth
    comes after; the rest drawn at random, which keeps the text's natural word frequencies.
    Deterministic for a seed."""
    frequent = set(frequent_words(FREQUENT_WORDS))
    words = [frozenset(s.split()) for s in pool]
    norms = [len(s.split()) ** 0.5 for s in pool]  # longer sentences need more new words per pick
    weight = {w: FREQUENT_WEIGHT if w in frequent else 1.0 for ws in words for w in ws}
    rng = random.Random(seed)
    order = list(range(len(pool)))
    rng.shuffle(order)
    covered: set[str] = set()
    chosen: list[int] = []

    def gain(i: int) -> float:
        return sum(weight[w] for w in words[i] if w not in covered) / norms[i]

    # Lazy greedy: a sentence's gain only falls as words get covered, so a stale heap
    # entry is an upper bound; recompute it when it surfaces and push it back if it fell.
    heap = [(-gain(i), k, i) for k, i in enumerate(order)]
    heapq.heapify(heap)
    n_cover = round(n * cover_share)
    while heap and len(chosen) < n_cover:
        negative, k, i = heapq.heappop(heap)
        fresh = gain(i)
        if heap and fresh < -heap[0][0] - 1e-12 and fresh < -negative - 1e-12:
            heapq.heappush(heap, (-fresh, k, i))
            continue
        if fresh <= 0:
            break
        chosen.append(i)
        covered.update(words[i])
    taken = set(chosen)
    rest = [i for i in order if i not in taken]
    chosen += rest[: n - len(chosen)]
    return [pool[i] for i in chosen]


def english_splits(train: int, dev: int, test: int, test_indomain: int, seed: int, min_words: int = MIN_WORDS,
                   max_words: int = MAX_WORDS, generator_share: float = 0.15) -> SplitText:
    """Sentences for an English corpus: training and in-domain test text from WordNet (and
    the generator), general-English dev and test text from the fortunes."""
    examples, glosses = wordnet_text()
    n_generated = round(train * generator_share)
    wanted = n_generated + round(test_indomain * generator_share)
    # A sentence that the fortunes share with WordNet or the generator ("TIME IS MONEY")
    # belongs to neither side: the general sets and training share no source at all.
    in_fortunes = set(fortune_text())
    generated = [s for s in generate_sentences(wanted + 100, seed, min_words, max_words) if s not in in_fortunes]
    generated = generated[:wanted]
    pool = _unique(s for s in examples + glosses if speakable(s, min_words, max_words) and s not in in_fortunes)
    elsewhere = set(examples) | set(glosses) | set(generated)
    fortunes = [s for s in fortune_text() if s not in elsewhere]
    rng = random.Random(seed)
    rng.shuffle(fortunes)
    if dev + test > len(fortunes):
        raise TextSourceError(f"the fortunes hold {len(fortunes)} usable sentences, fewer than dev + test = {dev + test}")
    held_out = random.Random(seed + 1).sample(range(len(pool)), test_indomain - round(test_indomain * generator_share))
    held = set(held_out)
    indomain = [pool[i] for i in held_out] + generated[n_generated:]
    remaining = [s for i, s in enumerate(pool) if i not in held]
    wordnet_train = select_covering(remaining, train - n_generated, seed)
    in_train = set(wordnet_train)
    train_text = wordnet_train + [s for s in generated[:n_generated] if s not in in_train]
    random.Random(seed + 2).shuffle(train_text)
    random.Random(seed + 3).shuffle(indomain)
    return SplitText(train_text, fortunes[:dev], fortunes[dev : dev + test], indomain)


def lm_text(exclude: Iterable[str] = ()) -> list[str]:
    """The general-English LM's text: every WordNet example and gloss phrase (~180,000
    sentences, ~55,000 words), less any sentence in ``exclude`` (the test sets) and any that
    the fortunes, the general test's source, also hold."""
    examples, glosses = wordnet_text()
    banned = set(exclude) | set(fortune_text())
    return [s for s in _unique(examples + glosses) if s not in banned]
