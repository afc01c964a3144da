"""The words of the sentence generator: the lists in ``words/*.txt``, inflected and weighted.

A list file holds entries separated by white space; ``#`` starts a comment and a ``[name]``
line starts a section. Within a list, words earlier in the list are drawn more often
(Zipf-like), which gives the text the skewed word frequencies that let an n-gram language
model help. The files ship with the package and are the only source of words, so the corpus
is the same on every machine; each is read once.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources

# Word weights fall as 1 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT. Larger offsets flatten
# the lists: more distinct words in a small corpus, but a less predictable text (held-out
# trigram perplexity about 150 at 1, 210 at 8, for 2,400 training sentences).
ZIPF_OFFSET = 1
# Steeper than natural text (~1): a model trained for ten CPU-minutes hears each common word
# often enough to learn its spelling. 4,000 sentences still hold ~1,260 distinct words (11,000: ~1,700), and
# the share of test words seen fewer than 10 times in training falls from 18% to 9%.
ZIPF_EXPONENT = 1.6
UNCOUNTABLE = "DUMS"  # noun categories without a plural: food and drink, other stuff, meals, sports


@cache
def word_lists(name: str) -> dict[str, tuple[str, ...]]:
    """The lists of ``words/NAME.txt`` by section, in file order; entries before the first
    section are under ``""``."""
    lists: dict[str, list[str]] = {"": []}
    section = ""
    text = (resources.files(__package__) / "words" / f"{name}.txt").read_text(encoding="utf-8")
    for line in text.splitlines():
        line = line.partition("#")[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            lists[section] = []
        else:
            lists[section] += line.split()
    return {key: tuple(entries) for key, entries in lists.items()}


@dataclass(frozen=True)
class Noun:
    singular: str
    plural: str | None  # None for uncountable nouns


@dataclass(frozen=True)
class Verb:
    base: str
    third: str
    past: str
    participle: str
    ing: str
    particle: str
    subjects: str  # who can do it: P people, A animals
    frames: str  # what can follow it (see words/verbs.txt)


class WeightedList:
    """Words with Zipf-like weights by list position."""

    def __init__(self, items: Iterable) -> None:
        self.items = tuple(items)
        weights = (1.0 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT for rank in range(len(self.items)))
        self.cum_weights = tuple(itertools.accumulate(weights))

    def pick(self, rng: random.Random):
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]


@cache
def _irregular_plurals() -> dict[str, str]:
    return dict(pair.split(":") for pair in word_lists("plurals")[""])


@cache
def _irregular_verbs() -> dict[str, list[str]]:
    return dict((entry.split(":")[0], entry.split(":")[1:]) for entry in word_lists("irregular_verbs")[""])


@cache
def _doubling() -> frozenset[str]:
    return frozenset(word_lists("doubling")[""])


def plural(noun: str) -> str:
    if noun in _irregular_plurals():
        return _irregular_plurals()[noun]
    if noun.endswith(("s", "x", "z", "ch", "sh")):
        return noun + "es"
    if noun.endswith("y") and noun[-2] not in "aeiou":
        return noun[:-1] + "ies"
    return noun + "s"


def _third_person(verb: str) -> str:
    if verb.endswith(("s", "x", "z", "ch", "sh", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _regular_past(verb: str) -> str:
    if verb in _doubling():
        return verb + verb[-1] + "ed"
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def _present_participle(verb: str) -> str:
    if verb in _doubling():
        return verb + verb[-1] + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _make_verb(entry: str) -> Verb:
    word, subjects, frames = entry.split("/")
    base, _, particle = word.partition("_")
    irregular = _irregular_verbs().get(base)
    past, participle = irregular[:2] if irregular else (_regular_past(base),) * 2
    third = irregular[2] if irregular and len(irregular) > 2 else _third_person(base)
    return Verb(base, third, past, participle, _present_participle(base), particle, subjects, frames)


def _make_nouns(category: str, words: Iterable[str]) -> tuple[Noun, ...]:
    countable = category not in UNCOUNTABLE
    return tuple(Noun(w, plural(w) if countable else None) for w in dict.fromkeys(words))


@dataclass(frozen=True)
class Lexicon:
    """Every word list of the generator: weighted lists to draw from, and plain ones."""

    nouns: dict[str, WeightedList]  # noun category (words/nouns.txt) -> Noun
    kin: WeightedList
    jobs: WeightedList
    names: WeightedList
    verbs: WeightedList  # Verb
    adjectives: dict[str, WeightedList]  # section of words/adjectives.txt -> adjective
    comparisons: WeightedList  # ((adjective, comparative, superlative), noun categories)
    manner: WeightedList
    frequency: tuple[str, ...]
    degree: tuple[str, ...]
    ones: tuple[str, ...]  # one .. nineteen
    tens: tuple[str, ...]  # twenty .. ninety
    ordinals: tuple[str, ...]
    weekdays: tuple[str, ...]
    months: tuple[str, ...]
    seasons: tuple[str, ...]
    parts_of_day: tuple[str, ...]
    periods: tuple[str, ...]
    units: tuple[str, ...]
    person_objects: tuple[str, ...]
    possessives: tuple[str, ...]
    containers: tuple[str, ...]
    place_prepositions: tuple[str, ...]
    thing_prepositions: tuple[str, ...]
    destinations: tuple[str, ...]  # words joined by underscores: to_school
    template_words: tuple[str, ...]  # what the grammar's templates write literally


@cache
def lexicon() -> Lexicon:
    """The generator's words, read from the package's word lists once."""
    people, nouns = word_lists("people"), word_lists("nouns")
    by_category = {"P": people["people"] + people["kin"] + people["jobs"]}
    by_category.update((category, words) for category, words in nouns.items() if category)
    comparisons = (entry.split("/") for entry in word_lists("comparisons")[""])
    adverbs, time, function = word_lists("adverbs"), word_lists("time"), word_lists("function")
    return Lexicon(
        nouns={category: WeightedList(_make_nouns(category, words)) for category, words in by_category.items()},
        kin=WeightedList(people["kin"]),
        jobs=WeightedList(people["jobs"]),
        names=WeightedList(word_lists("names")[""]),
        verbs=WeightedList(_make_verb(entry) for entry in word_lists("verbs")[""]),
        adjectives={group: WeightedList(dict.fromkeys(words))
                    for group, words in word_lists("adjectives").items() if group},
        comparisons=WeightedList((tuple(forms.split(":")), categories) for forms, categories in comparisons),
        manner=WeightedList(adverbs["manner"]),
        frequency=adverbs["frequency"],
        degree=adverbs["degree"],
        **{field: time[field] for field in ("ones", "tens", "ordinals", "weekdays", "months", "seasons",
                                            "parts_of_day", "periods", "units")},
        **{field: function[field] for field in ("person_objects", "possessives", "containers",
                                                "place_prepositions", "thing_prepositions", "destinations")},
        template_words=function["template"],
    )
