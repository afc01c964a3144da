"""Seeded generator of everyday English sentences for the synthetic corpus.

A small probabilistic grammar (statements in eight tenses, questions, commands, weather,
numbers, comparisons and two-clause sentences) over curated word lists grouped by class
and meaning (:mod:`asr.corpora.synthetic.lexicon`), so that verbs take sensible objects
and time expressions agree with the tense. Statements and the phrases every sentence is
made of are built in :mod:`asr.corpora.synthetic.phrases`; the other kinds of sentence here.

Sentences come out normalised like LibriSpeech transcripts: upper case, apostrophes, single
spaces.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

from asr.corpora.synthetic.lexicon import Noun, lexicon, plural
from asr.corpora.synthetic.phrases import (
    ADJECTIVES_FOR,
    CONTRACTED_BE,
    CONTRACTED_HAVE,
    CONTRACTED_WILL,
    FUTURE,
    MODAL,
    MODALS,
    PAST,
    PAST_PROGRESSIVE,
    PRESENT,
    PROGRESSIVE,
    SUBJECT_PRONOUNS,
    TENSE_WEIGHTS,
    TENSES,
    article,
    clause,
    clock_time,
    complement,
    noun_phrase,
    pick_frame,
    pick_verb,
    place,
    random_number,
    subject_phrase,
    time_expression,
    to_be,
)

MIN_WORDS = 3
MAX_WORDS = 15
# A request the grammar cannot satisfy (too many sentences for a narrow length range)
# fails after this many draws per sentence instead of looping for ever.
MAX_DRAWS_PER_SENTENCE = 200


def _question(rng: random.Random) -> list[str]:
    verb = pick_verb(rng, "P", 1)
    frame = pick_frame(rng, verb, 1)
    subject, agreement = subject_phrase(rng, "P")
    rest = complement(rng, verb, frame, 1)
    r = rng.random()
    if r < 0.3:
        aux = rng.choice((("does" if agreement == "3s" else "do"), "did", "will", "can", "could",
                          "should", "would"))
        return [aux] + subject + [verb.base] + rest + _time_or_nothing(rng, PAST if aux == "did" else MODAL)
    if r < 0.45:
        return [to_be(agreement, past=rng.random() < 0.3)] + subject + [verb.ing] + rest
    if r < 0.55:
        return ["has" if agreement == "3s" else "have"] + subject + ["ever"] + [verb.participle] + rest
    if r < 0.8:
        wh = rng.choice(("where", "when", "why", "how"))
        aux = rng.choice((("does" if agreement == "3s" else "do"), "did", "will", "can"))
        return [wh, aux] + subject + [verb.base] + rest
    if r < 0.9 and frame in "FDOCVU":
        aux = rng.choice(("did", "will", "can", "should"))
        return ["what", aux] + subject + [verb.base] + ([verb.particle] if verb.particle else [])
    return ["who", verb.past] + rest + _time_or_nothing(rng, PAST)


def _time_or_nothing(rng: random.Random, tense: int) -> list[str]:
    return time_expression(rng, tense) if rng.random() < 0.3 else []


def _fixed_question(rng: random.Random) -> list[str]:
    """Questions that are not a subject-verb inversion of a clause."""
    lex = lexicon()
    category = rng.choice("FOACV")
    noun: Noun = lex.nouns[category].pick(rng)
    return rng.choice((
        lambda: ["how", "many", noun.plural, "do", "we", "need"],
        lambda: ["how", "many", noun.plural, rng.choice(("did", "do", "can")), "you",
                 rng.choice(("see", "buy", "find", "have", "want", "count"))],
        lambda: ["how", "much", lex.nouns["D"].pick(rng).singular, "do", "you", "want"],
        lambda: ["how", "old", "is", rng.choice(lex.possessives), lex.kin.pick(rng)],
        lambda: ["how", "far", "is", "the", lex.nouns["L"].pick(rng).singular, "from", "here"],
        lambda: ["what", "time", "does", "the", lex.nouns["L"].pick(rng).singular,
                 rng.choice(("open", "close"))],
        lambda: ["whose", noun.singular, "is", "this"],
        lambda: ["which", noun.singular, "do", "you", "like", "best"],
        lambda: ["is", "there", article(noun.singular), noun.singular, rng.choice(lex.place_prepositions)]
        + place(rng),
        lambda: ["are", "there", "any", noun.plural] + [rng.choice(lex.place_prepositions)] + place(rng),
        lambda: ["where", "is", "the", noun.singular],
        lambda: ["where", "are", rng.choice(lex.possessives), noun.plural],
        lambda: ["what's", "your", rng.choice(("favorite", "best")), noun.singular],
        lambda: ["where's", rng.choice(lex.possessives), lex.kin.pick(rng)],
    ))()


def _command(rng: random.Random) -> list[str]:
    lex = lexicon()
    verb = pick_verb(rng, "P", 1)
    frame = pick_frame(rng, verb, 1)
    rest = complement(rng, verb, frame, 1)
    r = rng.random()
    if r < 0.4:
        return ["please", verb.base] + rest + (["now"] if rng.random() < 0.2 else [])
    if r < 0.6:
        return ["don't", verb.base] + rest + _time_or_nothing(rng, FUTURE)
    if r < 0.85:
        return ["let's", verb.base] + rest + _time_or_nothing(rng, FUTURE)
    return [verb.base] + rest + [lex.manner.pick(rng)]


def _linking_verb(rng: random.Random, agreement: str, tense: int) -> list[str]:
    """``is``, ``was``, ``will be``; sometimes feel, look or seem in the same tense."""
    verb = rng.choice(("be", "be", "be", "feel", "look", "seem"))
    if tense == FUTURE:
        return ["will", verb]
    if verb == "be":
        return [to_be(agreement, past=tense == PAST)]
    if tense == PAST:
        return [verb + "ed" if verb != "feel" else "felt"]
    return [verb + "s" if agreement == "3s" else verb]


def _description(rng: random.Random) -> list[str]:
    """Copular sentences: what someone or something is like, or where it is."""
    lex = lexicon()
    tense = rng.choices((PRESENT, PAST, FUTURE), weights=(6, 3, 1))[0]
    degree = [rng.choice(lex.degree)] if rng.random() < 0.3 else []
    r = rng.random()
    if r < 0.3:
        subject, agreement = subject_phrase(rng, "P")
        return subject + _linking_verb(rng, agreement, tense) + degree \
            + [lex.adjectives["person"].pick(rng)] + _time_or_nothing(rng, tense)
    if r < 0.55:
        category = rng.choice("OCVLNFE")
        subject, agreement = noun_phrase(rng, category, adjective_p=0.0)
        be = ["will", "be"] if tense == FUTURE else [to_be(agreement, past=tense == PAST)]
        group = rng.choice(ADJECTIVES_FOR[category])
        return subject + be + degree + [lex.adjectives[group].pick(rng)]
    if r < 0.65:
        subject, agreement = noun_phrase(rng, rng.choice("FD"), adjective_p=0.0)
        sense = rng.choice(("taste", "smell"))
        verb = {PRESENT: [sense + "s" if agreement == "3s" else sense], PAST: [sense.rstrip("e") + "ed"],
                FUTURE: ["will", sense]}[tense]
        return subject + verb + degree + [lex.adjectives["food"].pick(rng)]
    past = tense == PAST
    if r < 0.8:
        where = [rng.choice(lex.thing_prepositions)] + (
            place(rng) if rng.random() < 0.6 else ["the", lex.nouns["O"].pick(rng).singular])
        noun: Noun = lex.nouns[rng.choice("OAFC")].pick(rng)
        if rng.random() < 0.3:
            there = ["there's"] if not past and rng.random() < 0.5 else ["there", to_be("3s", past)]
            return there + [article(noun.singular), noun.singular] + where
        if rng.random() < 0.3:
            amount = random_number(rng, 2, 12) if rng.random() < 0.6 else [rng.choice(("some", "many", "no"))]
            return ["there", to_be("pl", past)] + amount + [noun.plural] + where
        thing, agreement = noun_phrase(rng, "OAFC"[rng.randrange(4)], adjective_p=0.2)
        return thing + [to_be(agreement, past)] + where
    subject, agreement = subject_phrase(rng, "P")
    job = lex.jobs.pick(rng)
    if agreement == "pl":
        return subject + [rng.choice(("want", "wanted")), "to", "be", plural(job)]
    verb = rng.choice(([to_be(agreement, past)], ["became"], [to_be(agreement, past), "going", "to", "be"]))
    return subject + verb + [article(job), job]


def _weather(rng: random.Random) -> list[str]:
    lex = lexicon()
    tense = rng.choice((PRESENT, PAST, FUTURE, PROGRESSIVE))
    kind = rng.choice(("rain", "snow"))
    adjective = lex.adjectives["weather"].pick(rng)
    form = {
        PRESENT: rng.choice((["it's", adjective], ["it", "is", adjective],
                             ["the", "weather", "is", adjective])),
        PAST: rng.choice((["it", kind + "ed"], ["it", "was", adjective],
                          ["the", "weather", "was", adjective])),
        FUTURE: rng.choice((["it", "will", kind], ["it", "will", "be", adjective],
                            ["it's", "going", "to", kind])),
        PROGRESSIVE: rng.choice((["it's", kind + "ing"], ["it", "is", kind + "ing"])),
    }[tense]
    second = lex.adjectives["weather"].pick(rng)
    extra = [rng.choice(("and", "but")), second] if second != adjective and rng.random() < 0.15 else []
    return form + extra + time_expression(rng, tense)


def _numbers(rng: random.Random) -> list[str]:
    lex = lexicon()
    noun: Noun = lex.nouns[rng.choice("FOCA")].pick(rng)
    return rng.choice((
        lambda: ["the", noun.singular, "costs"] + random_number(rng) + ["dollars"],
        lambda: random_number(rng, 2, 12) + [noun.plural, "cost"] + random_number(rng) + ["dollars", "and"]
        + random_number(rng, 2, 99) + ["cents"],
        lambda: [rng.choice(lex.possessives), lex.kin.pick(rng), "is"] + random_number(rng, 2, 99) + ["years", "old"],
        lambda: [lex.names.pick(rng), "is"] + random_number(rng, 2, 99) + ["years", "old"],
        lambda: ["the", lex.nouns["V"].pick(rng).singular, rng.choice(("leaves", "left", "arrives", "arrived")),
                 "at"] + clock_time(rng),
        lambda: ["we", "waited", "for"] + random_number(rng, 2, 59) + [rng.choice(("minutes", "hours"))],
        lambda: ["it", rng.choice(("takes", "took")), "about"] + random_number(rng, 2, 59) + ["minutes", "to", "get",
                 "to", "the", lex.nouns["L"].pick(rng).singular],
        lambda: [rng.choice(lex.possessives), "office", "is", "on", "the", rng.choice(lex.ordinals[:-1]), "floor"],
        lambda: ["this", "is", rng.choice(lex.possessives), rng.choice(lex.ordinals),
                 lex.nouns["E"].pick(rng).singular],
        lambda: ["there", "are"] + random_number(rng, 2, 999) + [noun.plural, "in"] + place(rng),
        lambda: ["i", "counted"] + random_number(rng, 2, 99) + [noun.plural] + _time_or_nothing(rng, PAST),
    ))()


def _comparison(rng: random.Random) -> list[str]:
    lex = lexicon()
    (_, comparative, superlative), categories = lex.comparisons.pick(rng)
    category = rng.choice(categories)
    past = rng.random() < 0.3
    if rng.random() < 0.4:
        # Superlatives name their noun: "this is the biggest house in the town".
        first = [lex.names.pick(rng)] if category == "P" else [rng.choice(("this", "that", "it"))]
        where = ["in", "the", rng.choice(("world", lex.nouns["L"].pick(rng).singular))]
        return first + [to_be("3s", past), "the", superlative, lex.nouns[category].pick(rng).singular] + where
    if category == "P" and rng.random() < 0.5:
        first, agreement = [lex.names.pick(rng)], "3s"
        second = [rng.choice(lex.possessives), lex.kin.pick(rng)]
    else:
        first, agreement = noun_phrase(rng, category, adjective_p=0)
        second = [rng.choice(("the", "the", "my", "your", "this", "that")),
                  lex.nouns[category].pick(rng).singular]
    return first + [to_be(agreement, past), comparative, "than"] + second


# Subordinating word, then the tenses of the subordinate and the main clause.
_SUBORDINATES = (("when", PAST, PAST), ("after", PAST, PAST), ("before", PAST, PAST),
                 ("while", PAST_PROGRESSIVE, PAST), ("if", PRESENT, FUTURE), ("when", PRESENT, FUTURE),
                 ("until", PRESENT, FUTURE))


def _two_clauses(rng: random.Random) -> list[str]:
    if rng.random() < 0.5:
        tense = rng.choices(TENSES, weights=TENSE_WEIGHTS)[0]
        return clause(rng, 1, tense) + [rng.choice(("and", "but", "so", "because"))] + clause(rng, 1, tense)
    word, first, second = rng.choice(_SUBORDINATES)
    return [word] + clause(rng, 1, first) + clause(rng, 1, second)


_SENTENCE_KINDS: tuple[Callable[[random.Random], list[str]], ...] = (
    clause, _question, _fixed_question, _command, _description, _weather, _numbers,
    _comparison, _two_clauses,
)
_SENTENCE_WEIGHTS = (40, 13, 5, 7, 13, 3, 5, 4, 10)


# --- Public API -------------------------------------------------------------------------
def generate_sentence(rng: random.Random) -> str:
    """One sentence drawn from the grammar, normalised (upper case, no punctuation)."""
    kind = rng.choices(_SENTENCE_KINDS, weights=_SENTENCE_WEIGHTS)[0]
    return " ".join(kind(rng)).upper()


def generate_sentences(n: int, seed: int, min_words: int = MIN_WORDS,
                       max_words: int = MAX_WORDS) -> list[str]:
    """``n`` distinct sentences of ``min_words``..``max_words`` words, the same for a seed.

    Raises ``ValueError`` when the grammar cannot produce that many distinct sentences
    in the length range.
    """
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words} and {max_words}")
    rng = random.Random(seed)
    sentences: dict[str, None] = {}
    for _ in range(max(n, 1) * MAX_DRAWS_PER_SENTENCE):
        if len(sentences) == n:
            break
        sentence = generate_sentence(rng)
        if min_words <= sentence.count(" ") + 1 <= max_words:
            sentences[sentence] = None
    if len(sentences) < n:
        raise ValueError(
            f"could only make {len(sentences)} distinct sentences of {min_words}-{max_words} words, not {n}"
        )
    return list(sentences)


@cache
def vocabulary() -> frozenset[str]:
    """Every word (upper case) that the generator can produce."""
    lex = lexicon()
    words: set[str] = set(lex.template_words)
    for nouns in lex.nouns.values():
        words.update(n.singular for n in nouns.items)
        words.update(n.plural for n in nouns.items if n.plural)
    for verb in lex.verbs.items:
        words.update((verb.base, verb.third, verb.past, verb.participle, verb.ing))
        words.update(verb.particle.split())
    for adjectives in lex.adjectives.values():
        words.update(adjectives.items)
    words.update(w for forms, _ in lex.comparisons.items for w in forms[1:])
    words.update(lex.names.items, (name + "'s" for name in lex.names.items))
    words.update(lex.manner.items, lex.frequency, lex.degree, lex.ones, lex.tens, lex.ordinals, lex.months,
                 lex.seasons, lex.weekdays, (day + "s" for day in lex.weekdays), lex.parts_of_day, lex.periods,
                 (unit + "s" for unit in lex.units), lex.person_objects, lex.possessives, lex.containers,
                 lex.place_prepositions, lex.thing_prepositions)
    words.update(p for p, _ in SUBJECT_PRONOUNS)
    words.update(w for destination in lex.destinations for w in destination.split("_"))
    words.update(w for pair in MODALS for form in pair for w in form.split())
    words.update(CONTRACTED_BE.values(), CONTRACTED_WILL.values(), CONTRACTED_HAVE.values())
    return frozenset(w.upper() for w in words)
