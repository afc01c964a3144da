"""The phrases the sentence generator builds sentences from: numbers and times, noun phrases,
subjects and objects, verb groups in eight tenses, and the clause that holds them.

Agreement classes: "1s" (I), "2" (you), "3s" (he, she, it, one thing), "pl" (we, they).
"""

from __future__ import annotations

import random

from asr.corpora.synthetic.lexicon import Noun, Verb, lexicon

PRESENT, PAST, FUTURE, GOING_TO, PROGRESSIVE, PAST_PROGRESSIVE, PERFECT, MODAL = range(8)
TENSES = (PRESENT, PAST, FUTURE, GOING_TO, PROGRESSIVE, PAST_PROGRESSIVE, PERFECT, MODAL)
TENSE_WEIGHTS = (20, 26, 12, 5, 13, 4, 9, 11)
MODALS = (("can", "can't"), ("could", "couldn't"), ("should", "shouldn't"),
          ("must", "must not"), ("might", "might not"), ("would", "wouldn't"))
CONTRACTED_BE = {"i": "i'm", "you": "you're", "he": "he's", "she": "she's", "it": "it's",
                 "we": "we're", "they": "they're"}
CONTRACTED_WILL = {p: p + "'ll" for p in ("i", "you", "he", "she", "we", "they")}
CONTRACTED_HAVE = {p: p + "'ve" for p in ("i", "you", "we", "they")}
SUBJECT_PRONOUNS = (("i", "1s"), ("you", "2"), ("he", "3s"), ("she", "3s"), ("we", "pl"),
                    ("they", "pl"))
# Which adjective groups (words/adjectives.txt) fit which noun category (words/nouns.txt).
ADJECTIVES_FOR = {
    "P": ("person",), "A": ("person", "thing"), "F": ("food",), "D": ("food",),
    "U": ("thing",), "M": ("food",), "S": ("event",), "O": ("thing",), "C": ("thing",),
    "V": ("thing",), "L": ("place",), "N": ("thing",), "B": ("thing",), "E": ("event",),
}
_NO_NESTING = str.maketrans("", "", "tig")


def to_be(agreement: str, past: bool = False) -> str:
    if past:
        return "was" if agreement in ("1s", "3s") else "were"
    return {"1s": "am", "3s": "is"}.get(agreement, "are")


def article(next_word: str) -> str:
    vowel_sound = next_word[0] in "aeiou" and not next_word.startswith(("uni", "use", "euro", "one"))
    return "an" if vowel_sound or next_word.startswith(("hour", "honest")) else "a"


def random_number(rng: random.Random, low: int = 2, high: int = 99) -> list[str]:
    lex = lexicon()
    n = rng.randint(low, high)
    if n >= 100:
        head = [lex.ones[n // 100 - 1], "hundred"]
        return head + (_number_words(n % 100) if n % 100 else [])
    return _number_words(n)


def _number_words(n: int) -> list[str]:
    lex = lexicon()
    if n < 20:
        return [lex.ones[n - 1]]
    return [lex.tens[n // 10 - 2]] + ([lex.ones[n % 10 - 1]] if n % 10 else [])


def clock_time(rng: random.Random) -> list[str]:
    lex = lexicon()
    hour = lex.ones[rng.randrange(12)]
    return rng.choice((
        [hour, "o'clock"], [hour, "o'clock"], ["half", "past", hour], ["quarter", "past", hour],
        ["quarter", "to", hour], [hour, rng.choice(("fifteen", "thirty", "forty", "fifty"))],
        ["noon"], ["midnight"],
    ))


def time_expression(rng: random.Random, tense: int) -> list[str]:
    lex = lexicon()
    period, part, day = rng.choice(lex.periods), rng.choice(lex.parts_of_day), rng.choice(lex.weekdays)
    unit = rng.choice(lex.units)
    options: dict[int, list[list[str]]] = {
        PRESENT: [["every", rng.choice(lex.units[2:] + lex.parts_of_day)], ["on", day + "s"],
                 ["in", "the", part], ["at", "night"], ["in", rng.choice(lex.seasons)],
                 ["every", "day"], ["after", rng.choice(lex.nouns["M"].items).singular]],
        PAST: [["yesterday"], ["last", rng.choice((*lex.periods, "night", *lex.seasons))],
              random_number(rng, 2, 12) + [unit + "s", "ago"], ["on", day], ["in", rng.choice(lex.months)],
              ["this", part], ["at"] + clock_time(rng), ["yesterday", part], ["last", day]],
        FUTURE: [["tomorrow"], ["next", rng.choice(lex.periods + lex.seasons + lex.weekdays)],
                ["tonight"], ["later"], ["soon"], ["on", day],
                ["in"] + random_number(rng, 2, 12) + [unit + "s"],
                ["at"] + clock_time(rng), ["tomorrow", part], ["this", period]],
        PROGRESSIVE: [["now"], ["right", "now"], ["today"], ["at", "the", "moment"],
                     ["this", period], ["this", part]],
        PAST_PROGRESSIVE: [["at"] + clock_time(rng) + ["last", "night"], ["yesterday", part],
                          ["all", "day"], ["last", "night"], ["on", day, part]],
        PERFECT: [["today"], ["this", period], ["since", day],
                 ["since", rng.choice(lex.months)], ["for"] + random_number(rng, 2, 12) + [unit + "s"],
                 ["before"], ["for", "a", "long", "time"]],
        MODAL: [["tomorrow"], ["today"], ["later"], ["next", period],
               ["on", day], ["tonight"]],
    }
    options[GOING_TO] = options[FUTURE]
    return rng.choice(options[tense])


def noun_phrase(rng: random.Random, category: str, plural: bool | None = None,
                adjective_p: float = 0.3) -> tuple[list[str], str]:
    """An NP of a noun category and its agreement class."""
    lex = lexicon()
    noun: Noun = lex.nouns[category].pick(rng)
    if category == "S" or (category == "M" and rng.random() < 0.6):
        return [noun.singular], "3s"
    if plural is None:
        plural = noun.plural is not None and rng.random() < 0.35
    plural = plural and noun.plural is not None
    adjective = []
    if rng.random() < adjective_p:
        group = rng.choice(ADJECTIVES_FOR[category])
        adjective = [lex.adjectives[group].pick(rng)]
    head = adjective + [noun.plural if plural else noun.singular]
    r = rng.random()
    if noun.plural is None:
        if r < 0.45:
            determiner = ["the"]
        elif r < 0.75:
            determiner = [rng.choice(("some", "more", "no", "this", "that"))]
        elif r < 0.9 or category != "D":
            determiner = [rng.choice(lex.possessives)]
        else:
            determiner = ["a", rng.choice(lex.containers), "of"]
        return determiner + head, "3s"
    if plural:
        if r < 0.35:
            determiner = ["the"]
        elif r < 0.55:
            determiner = random_number(rng, 2, 20)
        elif r < 0.75:
            determiner = [rng.choice(lex.possessives)]
        elif r < 0.8:
            determiner = [lex.names.pick(rng) + "'s"]
        else:
            determiner = [rng.choice(("some", "these", "those", "many", "few", "several", "all", "the"))]
        return determiner + head, "pl"
    if r < 0.4:
        determiner = ["the"]
    elif r < 0.65:
        determiner = [article(head[0])]
    elif r < 0.85:
        determiner = [rng.choice(lex.possessives)]
    elif r < 0.9:
        determiner = [lex.names.pick(rng) + "'s"]
    else:
        determiner = [rng.choice(("this", "that", "every", "another", "one"))]
    return determiner + head, "3s"


def subject_phrase(rng: random.Random, kinds: str) -> tuple[list[str], str]:
    lex = lexicon()
    if "A" in kinds and ("P" not in kinds or rng.random() < 0.2):
        return noun_phrase(rng, "A")
    r = rng.random()
    if r < 0.35:
        word, agreement = rng.choice(SUBJECT_PRONOUNS)
        return [word], agreement
    if r < 0.6:
        return [lex.names.pick(rng)], "3s"
    if r < 0.65:
        return [lex.names.pick(rng), "and", rng.choice((lex.names.pick(rng), "i"))], "pl"
    if r < 0.8:
        return [rng.choice(lex.possessives), lex.kin.pick(rng)], "3s"
    return noun_phrase(rng, "P")


def person_object(rng: random.Random) -> list[str]:
    lex = lexicon()
    r = rng.random()
    if r < 0.35:
        return [rng.choice(lex.person_objects)]
    if r < 0.65:
        return [lex.names.pick(rng)]
    return noun_phrase(rng, "P")[0]


def place(rng: random.Random) -> list[str]:
    lex = lexicon()
    return ["the"] + ([lex.adjectives["place"].pick(rng)] if rng.random() < 0.15 else []) \
        + [lex.nouns["L"].pick(rng).singular]


def complement(rng: random.Random, verb: Verb, frame: str, depth: int,
               tense: int | None = None) -> list[str]:
    """What follows the verb for one of its frames; ``tense`` is the main verb's."""
    lex = lexicon()
    particle = [verb.particle] if verb.particle else []
    if frame == "x":
        return particle
    if frame == "m":
        if rng.random() < 0.25:
            return particle + rng.choice(lex.destinations).split("_")
        return particle + ["to"] + place(rng)
    if frame == "t":
        # Reported speech after a past verb stays in the past ("said that she was late").
        reported = rng.choice((PAST, PAST, PAST_PROGRESSIVE)) if tense in (PAST, PAST_PROGRESSIVE) else None
        return particle + (["that"] if rng.random() < 0.5 else []) + clause(rng, depth + 1, reported)
    if frame == "i":
        return particle + ["to"] + _infinitive(rng, depth + 1)
    if frame == "g":
        thing = noun_phrase(rng, rng.choice("OOFCE"))[0]
        if rng.random() < 0.3:
            return particle + thing + [rng.choice(("to", "for"))] + person_object(rng)
        return particle + person_object(rng) + thing
    if frame == "p":
        where = noun_phrase(rng, rng.choice("OL"), plural=False, adjective_p=0.1)[0]
        return noun_phrase(rng, "O")[0] + [rng.choice(lex.thing_prepositions)] + where
    if frame == "P":
        return particle + person_object(rng)
    return particle + noun_phrase(rng, frame)[0]


def _infinitive(rng: random.Random, depth: int) -> list[str]:
    verb = pick_verb(rng, "P", depth)
    return [verb.base] + complement(rng, verb, pick_frame(rng, verb, depth), depth)


def _frames(verb: Verb, depth: int) -> str:
    # Nested clauses take no further clause, infinitive or second object: that bounds the
    # recursion and keeps sentences within MAX_WORDS most of the time.
    return verb.frames if depth == 0 else verb.frames.translate(_NO_NESTING)


def pick_verb(rng: random.Random, subject_kind: str, depth: int) -> Verb:
    lex = lexicon()
    while True:
        verb: Verb = lex.verbs.pick(rng)
        if subject_kind in verb.subjects and _frames(verb, depth):
            return verb


def pick_frame(rng: random.Random, verb: Verb, depth: int) -> str:
    return rng.choice(_frames(verb, depth))


def _verb_group(rng: random.Random, verb: Verb, subject: list[str], agreement: str,
                tense: int, negative: bool) -> list[str]:
    """Subject and verb group, e.g. ``she hasn't eaten``; contractions where natural."""
    lex = lexicon()
    pronoun = subject[0] if len(subject) == 1 else ""
    contract = rng.random() < 0.4
    if tense == PRESENT:
        if negative:
            return subject + ["doesn't" if agreement == "3s" else "don't", verb.base]
        adverb = [rng.choice(lex.frequency)] if rng.random() < 0.2 else []
        return subject + adverb + [verb.third if agreement == "3s" else verb.base]
    if tense == PAST:
        return subject + (["didn't", verb.base] if negative else [verb.past])
    if tense == FUTURE:
        if negative:
            return subject + ["won't", verb.base]
        if contract and pronoun in CONTRACTED_WILL:
            return [CONTRACTED_WILL[pronoun], verb.base]
        return subject + ["will", verb.base]
    if tense in (PROGRESSIVE, GOING_TO):
        tail = [verb.ing] if tense == PROGRESSIVE else ["going", "to", verb.base]
        if contract and pronoun in CONTRACTED_BE:
            return [CONTRACTED_BE[pronoun]] + (["not"] if negative else []) + tail
        be = to_be(agreement)
        if negative:
            return subject + ([be, "not"] if be == "am" else [be + "n't"]) + tail
        return subject + [be] + tail
    if tense == PAST_PROGRESSIVE:
        be = to_be(agreement, past=True)
        return subject + [be + "n't" if negative else be, verb.ing]
    if tense == PERFECT:
        have = "has" if agreement == "3s" else "have"
        if negative:
            return subject + [have + "n't", verb.participle]
        adverb = [rng.choice(("already", "just", "never", "often"))] if rng.random() < 0.3 else []
        if contract and pronoun in CONTRACTED_HAVE:
            return [CONTRACTED_HAVE[pronoun]] + adverb + [verb.participle]
        return subject + [have] + adverb + [verb.participle]
    modal = rng.choice(MODALS)
    return subject + modal[1].split() + [verb.base] if negative else subject + [modal[0], verb.base]


def _adjuncts(rng: random.Random, tense: int, frame: str) -> list[str]:
    lex = lexicon()
    words: list[str] = []
    if rng.random() < 0.2:
        words += [lex.manner.pick(rng)]
    if frame not in "mtip" and rng.random() < 0.25:
        words += [rng.choice(lex.place_prepositions)] + place(rng)
    elif rng.random() < 0.08:
        words += ["with"] + person_object(rng)
    if rng.random() < 0.4:
        words += time_expression(rng, tense)
    return words


def clause(rng: random.Random, depth: int = 0, tense: int | None = None) -> list[str]:
    """A full statement: subject, verb group, complement and adjuncts."""
    if tense is None:
        tense = rng.choices(TENSES, weights=TENSE_WEIGHTS)[0]
    kind = "P" if rng.random() < 0.85 else "A"
    verb = pick_verb(rng, kind, depth)
    subject, agreement = subject_phrase(rng, kind if kind in verb.subjects else "P")
    # Animals take no clauses or infinitives: frame choice as if nested.
    frame = pick_frame(rng, verb, depth if kind == "P" else 1)
    words = _verb_group(rng, verb, subject, agreement, tense, negative=rng.random() < 0.15)
    words += complement(rng, verb, frame, depth, tense)
    return words + (_adjuncts(rng, tense, frame) if depth == 0 else [])


