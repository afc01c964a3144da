"""Seeded generator of everyday English sentences for the synthetic corpus.

A small probabilistic grammar (statements in eight tenses, questions, commands, weather,
numbers, comparisons and two-clause sentences) over curated word lists grouped by class
and meaning, so that verbs take sensible objects and time expressions agree with the tense.
Within each list, words earlier in the list are drawn more often (Zipf-like), which gives
the text the skewed word frequencies that let an n-gram language model help.

Sentences come out normalised like LibriSpeech transcripts: upper case, apostrophes, single
spaces. The word lists are the only source of words, so the corpus is the same on every
machine.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

MIN_WORDS = 3
MAX_WORDS = 15
# Word weights fall as 1 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT. Larger offsets flatten
# the lists: more distinct words in a small corpus, but a less predictable text (held-out
# trigram perplexity about 150 at 1, 210 at 8, for 2,400 training sentences).
ZIPF_OFFSET = 1
# Steeper than natural text (~1): a model trained for ten CPU-minutes hears each common word
# often enough to learn its spelling. 4,000 sentences still hold ~1,260 distinct words (11,000: ~1,700), and
# the share of test words seen fewer than 10 times in training falls from 18% to 9%.
ZIPF_EXPONENT = 1.6
# A request the grammar cannot satisfy (too many sentences for a narrow length range)
# fails after this many draws per sentence instead of looping for ever.
MAX_DRAWS_PER_SENTENCE = 200

# --- Word lists -------------------------------------------------------------------------
_PEOPLE = """man woman child boy girl friend baby person kid neighbor stranger visitor guest
    customer tourist passenger family lady gentleman teenager adult classmate roommate
    partner boyfriend girlfriend"""
_KIN = """mother father sister brother son daughter wife husband uncle aunt cousin
    grandmother grandfather parent nephew niece mom dad grandma grandpa"""
_JOBS = """teacher doctor student nurse driver worker farmer cook waiter pilot artist singer
    dancer writer player manager officer soldier guard captain king queen prince princess
    lawyer judge engineer scientist baker butcher dentist fisherman gardener hunter
    musician painter poet sailor secretary shopkeeper tailor actor author chef clerk coach
    professor policeman mailman cashier plumber carpenter mechanic librarian photographer
    reporter waitress actress builder cleaner"""
# Nouns by meaning; the letter is the category code that verb frames refer to.
# Within a list, commoner words come first.
_NOUNS = {
    "P": " ".join((_PEOPLE, _KIN, _JOBS)),
    "A": """dog cat bird horse cow pig sheep chicken duck fish mouse rabbit lion tiger bear
        wolf fox monkey elephant snake frog goat deer owl eagle bee spider ant butterfly
        whale dolphin shark turtle camel zebra giraffe kangaroo penguin parrot squirrel
        donkey goose puppy kitten lamb calf bull crow pigeon swan snail worm mosquito
        beetle crab hamster""",
    "F": """apple banana orange egg sandwich cake cookie potato tomato carrot onion pizza
        pie lemon peach pear grape strawberry cherry melon pineapple sausage biscuit muffin
        pancake hamburger cucumber mushroom bean nut peanut olive salad snack candy cracker
        pickle bagel lime plum watermelon cabbage pumpkin coconut berry doughnut pepper
        noodle cupcake""",
    "D": """water milk coffee tea juice bread rice soup cheese butter sugar salt honey meat
        pasta cereal chocolate jam flour oil soda lemonade yogurt cream toast popcorn
        garlic corn beef pork bacon broccoli spinach""",
    "U": """money music homework furniture luggage soap medicine advice news information
        paper wood glue shampoo toothpaste""",
    "M": "breakfast lunch dinner supper",
    "S": "football soccer tennis basketball baseball golf chess hockey volleyball cards",
    "O": """book cup plate bowl glass bottle box bag key phone computer table chair bed
        door window lamp clock watch picture letter pen pencil notebook map ticket card
        gift ball toy doll kite umbrella wallet purse camera radio television basket bucket
        brush comb mirror towel blanket pillow sofa couch desk shelf drawer cupboard fork
        knife spoon pot pan kettle jar candle envelope stamp newspaper magazine dictionary
        calendar coin battery button ring necklace bracelet ladder hammer rope tent guitar
        piano drum violin trumpet flute backpack suitcase helmet photo poster package vase
        tray mug napkin cushion fan heater fridge oven stove sink bell flag sign board note
        list screen keyboard printer charger speaker puzzle balloon present medal
        trophy crayon sticker ribbon hose shovel bench fence gate carpet curtain
        floor wall roof""",
    "C": """shirt dress coat hat shoe sock jacket sweater skirt scarf glove boot belt tie
        cap uniform suit blouse vest raincoat sandal slipper costume apron""",
    "V": """car bus train bike bicycle boat ship plane taxi truck van motorcycle scooter
        tractor ambulance helicopter subway ferry""",
    "L": """house school park shop store market station office kitchen garden room bedroom
        bathroom library hospital church bank restaurant cafe hotel airport beach farm zoo
        museum cinema theater city town village street road bridge hall classroom
        playground stadium gym pool factory castle apartment building garage basement attic
        bakery pharmacy supermarket bookstore cafeteria hallway yard backyard studio palace
        tower temple mall square harbor corner highway camp cottage barn""",
    "N": """tree flower river lake sea ocean mountain hill forest field sky sun moon star
        cloud rock stone leaf island valley desert wave cave storm rainbow seed branch bush
        rose pond stream puddle""",
    "B": """hand head arm leg foot eye ear nose mouth tooth back finger toe knee shoulder
        neck face heart stomach throat lip tongue elbow thumb chin""",
    "E": """party meeting game match lesson class story question answer problem idea plan
        trip holiday vacation birthday wedding concert movie film show song joke dream job
        test exam message picnic race contest festival interview speech secret
        invitation adventure mistake visit walk break call""",
}
_IRREGULAR_PLURALS = dict(
    pair.split(":")
    for pair in """man:men woman:women child:children person:people gentleman:gentlemen
    fisherman:fishermen policeman:policemen mailman:mailmen sheep:sheep fish:fish
    mouse:mice wolf:wolves deer:deer goose:geese calf:calves potato:potatoes
    tomato:tomatoes mosquito:mosquitoes knife:knives shelf:shelves leaf:leaves wife:wives
    scarf:scarves foot:feet tooth:teeth stomach:stomachs""".split()
)
_NAMES = """james john robert michael william david richard thomas daniel matthew
    anthony mark paul steven andrew peter george edward brian kevin jason ryan jacob eric
    adam henry jack sam ben tom alex max leo oscar harry charlie oliver lucas noah ethan
    liam owen luke simon frank carl victor martin
    mary linda susan sarah karen nancy lisa emma olivia sophia anna emily grace lucy
    alice rose kate laura helen amy julia rachel maria hannah chloe ella mia zoe ruby
    lily sophie clara jane ellen nina diana fiona martha alison rebecca paula""".split()

# Verbs as base/subjects/frames. Subjects: P people, A animals. Frames: an upper-case
# letter takes an object of that noun category; x intransitive; m motion to a place;
# t that-clause; g two objects (a person and a thing); i to-infinitive; p put-on-place.
# An underscore joins a particle (look_at, pick_up).
_VERBS = """
    eat/PA/FDMx drink/PA/Dx have/P/FDMOAE go/PA/mx come/PA/mx see/PA/PAOVNL
    like/PA/FDOCPAESi want/PA/FDOCVi need/P/FDUOCVi make/P/FMOEg take/P/OFVP buy/P/FDUOCVg
    get/P/FDOCVE give/P/g find/PA/OFCAP know/P/PLt think/P/t say/P/t tell/P/gt
    love/P/FDOCPAESi look_at/P/PAONL look_for/P/PAO watch/P/PASEV cook/P/FDMx bake/P/Fx
    sell/P/FOCVA read/P/OEUx write/P/OEx play/PA/SEx help/P/Px call/P/Px meet/P/Px
    visit/P/PL open/P/O close/P/O clean/P/OLVCx wash/P/OFCVBx bring/P/FDOCPg
    carry/PA/OFP hate/P/FDEi leave/P/OLx forget/P/OEix remember/P/PEOt hear/PA/PAEUx
    try/P/FDi start/P/Eix finish/P/EMUx begin/P/Ei stop/P/Vx win/P/Ex lose/P/OEx
    enjoy/P/EMUS miss/P/PVE catch/PA/VAO throw/P/Og walk/PA/Amx run/PA/mx drive/P/Vmx
    ride/P/VA fly/PA/mx swim/PA/mx travel/P/mx arrive/PA/x return/P/Omx move/P/Omx
    sit/PA/x stand/P/x sleep/PA/x wake_up/P/x work/P/x rest/PA/x wait/PA/x
    wait_for/PA/PVE listen_to/P/PEU talk_to/P/P talk/P/x talk_about/P/EPL laugh/P/x
    laugh_at/P/PE smile/P/x cry/P/x shout/P/x sing/P/Ex dance/P/x jump/PA/x fall/PA/x
    grow/P/Fx live/P/x stay/PA/x agree/P/x argue/P/x complain/P/x worry/P/x relax/P/x
    hurry/P/mx study/P/x learn/P/Eix teach/P/Px draw/P/OANx paint/P/OLx ask/P/PE
    answer/P/EOP send/P/Og show/P/Og fix/P/OV repair/P/OV break/P/OBx
    cut/P/FDOB drop/P/OF pick_up/P/OFU put/P/p hold/P/OAP hide/PA/OFx keep/P/OAF
    believe/P/Pt hope/P/ti taste/P/FD bark/A/x bite/A/PO chase/PA/APV feed/P/AP
    follow/PA/PAV hug/P/PA pay/P/Px pay_for/P/FOCM borrow/P/OVU lend/P/g share/P/FDO
    order/P/FDM serve/P/FDMP prepare/P/FM boil/P/DF fry/P/F peel/P/F slice/P/FD mix/P/D
    pour/P/D fill/P/O check/P/OE count/P/AO choose/P/OCF wear/P/C change/P/C
    try_on/P/C put_on/P/C take_off/P/C fold/P/C dry/P/OCB brush/P/B touch/P/OAB
    decorate/P/L plant/P/N water/P/N pick/P/NF collect/P/O explore/P/LN enter/P/L
    reach/P/L cross/P/LN search_for/P/OAP practice/P/SEx join/P/E cancel/P/E plan/P/E
    organize/P/E attend/P/E celebrate/P/Ex understand/P/EPt explain/P/E describe/P/PLO
    discuss/P/E repeat/P/E measure/P/O deliver/P/OFU receive/P/OU print/P/O use/P/OVU
    own/P/OVA rent/P/VL steal/P/OFVU protect/P/PAL rescue/P/PA hunt/PA/A scare/PA/PA
    surprise/P/P lock/P/OV unlock/P/OV turn_on/P/O turn_off/P/O lift/P/O shake/P/O
    wave/P/x point_at/P/PAO smell/PA/FN whistle/P/x snore/P/x nod/P/x burn/P/F tidy/P/L
    sweep/P/L wipe/P/O sew/P/C fetch/PA/O guess/P/tx notice/P/PAOt recognize/P/P
    forgive/P/P trust/P/P blame/P/P warn/P/P remind/P/P greet/P/P welcome/P/P
    accept/P/E decide/P/it promise/P/it offer/P/g pretend/P/i refuse/P/i shut/P/O
    spill/P/D dig/PA/x blow_out/P/O fight/PA/x light/P/O sting/A/P hurt/P/Bx speak/P/x
    speak_to/P/P hit/P/O kick/P/O push/P/OV pull/P/OV climb/PA/N build/P/OL
    kiss/P/PA thank/P/P invite/P/P marry/P/P wake/P/PA dream/P/x knock/P/x cough/P/x
    sneeze/P/x breathe/PA/x yawn/P/x
"""
# base:past:participle, with an optional fourth field for the third person singular.
_IRREGULAR_VERBS = dict(
    (entry.split(":")[0], entry.split(":")[1:])
    for entry in """eat:ate:eaten drink:drank:drunk have:had:had:has go:went:gone
    come:came:come see:saw:seen make:made:made take:took:taken buy:bought:bought
    get:got:gotten give:gave:given find:found:found know:knew:known think:thought:thought
    say:said:said tell:told:told sell:sold:sold read:read:read write:wrote:written
    meet:met:met bring:brought:brought leave:left:left forget:forgot:forgotten
    hear:heard:heard begin:began:begun win:won:won lose:lost:lost catch:caught:caught
    throw:threw:thrown run:ran:run drive:drove:driven ride:rode:ridden fly:flew:flown
    swim:swam:swum sit:sat:sat stand:stood:stood sleep:slept:slept wake:woke:woken
    fall:fell:fallen grow:grew:grown sing:sang:sung teach:taught:taught draw:drew:drawn
    send:sent:sent show:showed:shown break:broke:broken cut:cut:cut put:put:put
    hold:held:held hide:hid:hidden keep:kept:kept bite:bit:bitten feed:fed:fed
    pay:paid:paid lend:lent:lent wear:wore:worn choose:chose:chosen shake:shook:shaken
    understand:understood:understood steal:stole:stolen light:lit:lit sting:stung:stung
    hurt:hurt:hurt speak:spoke:spoken hit:hit:hit shut:shut:shut fight:fought:fought
    dig:dug:dug blow:blew:blown forgive:forgave:forgiven build:built:built
    sweep:swept:swept sew:sewed:sewn""".split()
)
# Verbs that double their last consonant before -ed and -ing.
_DOUBLING = set("""stop plan drop shop hug chat rob beg grab skip slip rub wrap run swim sit
    get cut put hit shut win begin forget dig nod""".split())

# Adjectives by the noun categories they describe.
_ADJECTIVES = {
    "person": """happy sad angry tired hungry thirsty sleepy busy ready late kind friendly
        polite rude brave clever smart shy quiet proud nervous worried excited bored
        scared lucky lonely sick healthy strong weak rich poor young old tall short
        beautiful handsome pretty calm careful honest famous funny serious lazy gentle
        patient curious cheerful grumpy wise upset surprised sorry""",
    "thing": """big small large little long short old new good bad nice great beautiful
        ugly heavy light hot cold warm clean dirty full empty soft hard sharp cheap
        expensive strange simple broken perfect wonderful terrible lovely plastic wooden
        round square flat thick thin tiny huge fancy plain shiny dusty useful precious
        favorite special red blue green yellow black white brown gray pink purple orange
        golden silver""",
    "food": """fresh hot cold sweet sour salty spicy bitter delicious tasty ripe warm
        frozen crunchy juicy creamy burnt""",
    "place": """quiet noisy busy crowded empty beautiful old new big small dark clean
        dirty cozy famous local lovely huge""",
    "event": """long short boring interesting exciting important difficult easy strange
        funny sad wonderful terrible great good bad special""",
    "weather": "sunny cloudy rainy windy foggy snowy stormy cold hot warm cool wet dry",
}
# Which adjective groups fit which noun category.
_ADJECTIVES_FOR = {
    "P": ("person",), "A": ("person", "thing"), "F": ("food",), "D": ("food",),
    "U": ("thing",), "M": ("food",), "S": ("event",), "O": ("thing",), "C": ("thing",),
    "V": ("thing",), "L": ("place",), "N": ("thing",), "B": ("thing",), "E": ("event",),
}
# adjective:comparative:superlative/noun categories it compares.
_COMPARISONS = """big:bigger:biggest/PAOVLN small:smaller:smallest/PAOVLN
    tall:taller:tallest/PN old:older:oldest/PAOVL young:younger:youngest/PA
    long:longer:longest/OVE short:shorter:shortest/PE fast:faster:fastest/PAV
    slow:slower:slowest/PAV hot:hotter:hottest/FD cold:colder:coldest/FD
    cheap:cheaper:cheapest/FOCV happy:happier:happiest/PA easy:easier:easiest/E
    heavy:heavier:heaviest/OA light:lighter:lightest/OC dark:darker:darkest/LC
    clean:cleaner:cleanest/LOV nice:nicer:nicest/PLE strong:stronger:strongest/PA
    quiet:quieter:quietest/PL busy:busier:busiest/PL sweet:sweeter:sweetest/F
    soft:softer:softest/OC good:better:best/FOLE bad:worse:worst/FE
    large:larger:largest/OLN deep:deeper:deepest/N wide:wider:widest/LN
    thick:thicker:thickest/O thin:thinner:thinnest/O high:higher:highest/N
    smart:smarter:smartest/PA funny:funnier:funniest/PE pretty:prettier:prettiest/PLN"""

_MANNER = """quickly slowly carefully quietly loudly happily sadly easily badly well hard
    fast early late suddenly gently softly politely patiently proudly nervously angrily
    calmly clearly safely seriously together alone again""".split()
_FREQUENCY = "always usually often sometimes rarely never".split()
_DEGREE = "very really quite too so rather extremely".split()

_ONES = """one two three four five six seven eight nine ten eleven twelve thirteen
    fourteen fifteen sixteen seventeen eighteen nineteen""".split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()
_ORDINALS = "first second third fourth fifth sixth seventh eighth ninth tenth last".split()
_WEEKDAYS = "monday tuesday wednesday thursday friday saturday sunday".split()
_MONTHS = """january february march april may june july august september october
    november december""".split()
_SEASONS = "spring summer autumn winter".split()
_PARTS_OF_DAY = "morning afternoon evening".split()
_PERIODS = "week month year weekend".split()
_UNITS = "minute hour day week month year".split()
_PERSON_OBJECTS = "me you him her us them".split()
_SUBJECT_PRONOUNS = (("i", "1s"), ("you", "2"), ("he", "3s"), ("she", "3s"), ("we", "pl"),
                     ("they", "pl"))
_POSSESSIVES = "my your his her our their".split()
_CONTAINERS = "cup glass bottle bowl piece bag box jar".split()
_PLACE_PREPOSITIONS = "in at near behind outside inside".split()
_THING_PREPOSITIONS = "on in under behind beside near".split()
_SHORT_DESTINATIONS = ("home", "to school", "to work", "to bed", "to church", "downtown",
                       "upstairs", "outside")
# Everything the templates write literally; vocabulary() adds these to the word lists.
_TEMPLATE_WORDS = """a an the this that these those some any many much more few several
    every another all no and but so because if when while after before until since than
    there here not to of for with from at in on about is am are was were be do does did
    will can could should must might going it what where why how who which whose let's
    please don't doesn't didn't won't isn't aren't wasn't weren't hasn't haven't can't
    couldn't shouldn't wouldn't i'm you're he's she's it's we're they're i've you've we've
    they've i'll you'll he'll she'll we'll they'll there's what's where's ago last next
    this today yesterday tomorrow tonight now soon later already just ever right moment
    o'clock half past quarter noon midnight hundred dollars cents years old far time cost
    costs took takes get world feel feels felt look looks looked seem seems seemed became
    tastes tasted smells smelled day night rain rained raining snow snowed snowing weather
    long best floor""".split()


# --- Lexicon ----------------------------------------------------------------------------
@dataclass(frozen=True)
class _Noun:
    singular: str
    plural: str | None  # None for uncountable nouns


@dataclass(frozen=True)
class _Verb:
    base: str
    third: str
    past: str
    participle: str
    ing: str
    particle: str
    subjects: str
    frames: str


class _WeightedList:
    """Words with Zipf-like weights by list position."""

    def __init__(self, items: Iterable) -> None:
        self.items = tuple(items)
        weights = (1.0 / (rank + ZIPF_OFFSET) ** ZIPF_EXPONENT for rank in range(len(self.items)))
        self.cum_weights = tuple(itertools.accumulate(weights))

    def pick(self, rng: random.Random):
        return rng.choices(self.items, cum_weights=self.cum_weights)[0]


def _plural(noun: str) -> str:
    if noun in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[noun]
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
    if verb in _DOUBLING:
        return verb + verb[-1] + "ed"
    if verb.endswith("e"):
        return verb + "d"
    if verb.endswith("y") and verb[-2] not in "aeiou":
        return verb[:-1] + "ied"
    return verb + "ed"


def _present_participle(verb: str) -> str:
    if verb in _DOUBLING:
        return verb + verb[-1] + "ing"
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    return verb + "ing"


def _make_verb(entry: str) -> _Verb:
    word, subjects, frames = entry.split("/")
    base, _, particle = word.partition("_")
    irregular = _IRREGULAR_VERBS.get(base)
    past, participle = irregular[:2] if irregular else (_regular_past(base),) * 2
    third = irregular[2] if irregular and len(irregular) > 2 else _third_person(base)
    return _Verb(base, third, past, participle, _present_participle(base), particle, subjects, frames)


def _make_nouns(category: str) -> tuple[_Noun, ...]:
    countable = category not in "DUMS"
    words = dict.fromkeys(_NOUNS[category].split())
    return tuple(_Noun(w, _plural(w) if countable else None) for w in words)


_NOUN_LISTS = {c: _WeightedList(_make_nouns(c)) for c in _NOUNS}
_KIN_LIST = _WeightedList(_KIN.split())
_JOB_LIST = _WeightedList(_JOBS.split())
_VERB_LIST = _WeightedList(_make_verb(e) for e in _VERBS.split())
_ADJECTIVE_LISTS = {g: _WeightedList(dict.fromkeys(w.split())) for g, w in _ADJECTIVES.items()}
_COMPARISON_LIST = _WeightedList(
    (tuple(forms.split(":")), cats) for forms, cats in (e.split("/") for e in _COMPARISONS.split())
)
_NAME_LIST = _WeightedList(_NAMES)
_MANNER_LIST = _WeightedList(_MANNER)

# --- Grammar ----------------------------------------------------------------------------
# Agreement classes: "1s" (I), "2" (you), "3s" (he, she, it, one thing), "pl" (we, they).
_PRESENT, _PAST, _FUTURE, _GOING_TO, _PROGRESSIVE, _PAST_PROGRESSIVE, _PERFECT, _MODAL = range(8)
_TENSES = (_PRESENT, _PAST, _FUTURE, _GOING_TO, _PROGRESSIVE, _PAST_PROGRESSIVE, _PERFECT, _MODAL)
_TENSE_WEIGHTS = (20, 26, 12, 5, 13, 4, 9, 11)
_MODALS = (("can", "can't"), ("could", "couldn't"), ("should", "shouldn't"),
           ("must", "must not"), ("might", "might not"), ("would", "wouldn't"))
_CONTRACTED_BE = {"i": "i'm", "you": "you're", "he": "he's", "she": "she's", "it": "it's",
                  "we": "we're", "they": "they're"}
_CONTRACTED_WILL = {p: p + "'ll" for p in ("i", "you", "he", "she", "we", "they")}
_CONTRACTED_HAVE = {p: p + "'ve" for p in ("i", "you", "we", "they")}
_NO_NESTING = str.maketrans("", "", "tig")


def _be(agreement: str, past: bool = False) -> str:
    if past:
        return "was" if agreement in ("1s", "3s") else "were"
    return {"1s": "am", "3s": "is"}.get(agreement, "are")


def _article(next_word: str) -> str:
    vowel_sound = next_word[0] in "aeiou" and not next_word.startswith(("uni", "use", "euro", "one"))
    return "an" if vowel_sound or next_word.startswith(("hour", "honest")) else "a"


def _number(rng: random.Random, low: int = 2, high: int = 99) -> list[str]:
    n = rng.randint(low, high)
    if n >= 100:
        head = [_ONES[n // 100 - 1], "hundred"]
        return head + (_number_words(n % 100) if n % 100 else [])
    return _number_words(n)


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n - 1]]
    return [_TENS[n // 10 - 2]] + ([_ONES[n % 10 - 1]] if n % 10 else [])


def _clock(rng: random.Random) -> list[str]:
    hour = _ONES[rng.randrange(12)]
    return rng.choice((
        [hour, "o'clock"], [hour, "o'clock"], ["half", "past", hour], ["quarter", "past", hour],
        ["quarter", "to", hour], [hour, rng.choice(("fifteen", "thirty", "forty", "fifty"))],
        ["noon"], ["midnight"],
    ))


def _time_expression(rng: random.Random, tense: int) -> list[str]:
    period, part, day = rng.choice(_PERIODS), rng.choice(_PARTS_OF_DAY), rng.choice(_WEEKDAYS)
    unit = rng.choice(_UNITS)
    options: dict[int, list[list[str]]] = {
        _PRESENT: [["every", rng.choice(_UNITS[2:] + _PARTS_OF_DAY)], ["on", day + "s"],
                  ["in", "the", part], ["at", "night"], ["in", rng.choice(_SEASONS)],
                  ["every", "day"], ["after", rng.choice(_NOUNS["M"].split())]],
        _PAST: [["yesterday"], ["last", rng.choice(_PERIODS + ["night"] + _SEASONS)],
               _number(rng, 2, 12) + [unit + "s", "ago"], ["on", day], ["in", rng.choice(_MONTHS)],
               ["this", part], ["at"] + _clock(rng), ["yesterday", part], ["last", day]],
        _FUTURE: [["tomorrow"], ["next", rng.choice(_PERIODS + _SEASONS + _WEEKDAYS)],
                 ["tonight"], ["later"], ["soon"], ["on", day], ["in"] + _number(rng, 2, 12) + [unit + "s"],
                 ["at"] + _clock(rng), ["tomorrow", part], ["this", period]],
        _PROGRESSIVE: [["now"], ["right", "now"], ["today"], ["at", "the", "moment"],
                      ["this", period], ["this", part]],
        _PAST_PROGRESSIVE: [["at"] + _clock(rng) + ["last", "night"], ["yesterday", part],
                           ["all", "day"], ["last", "night"], ["on", day, part]],
        _PERFECT: [["today"], ["this", period], ["since", day],
                  ["since", rng.choice(_MONTHS)], ["for"] + _number(rng, 2, 12) + [unit + "s"],
                  ["before"], ["for", "a", "long", "time"]],
        _MODAL: [["tomorrow"], ["today"], ["later"], ["next", period],
                ["on", day], ["tonight"]],
    }
    options[_GOING_TO] = options[_FUTURE]
    return rng.choice(options[tense])


def _noun_phrase(rng: random.Random, category: str, plural: bool | None = None,
                 adjective_p: float = 0.3) -> tuple[list[str], str]:
    """An NP of a noun category and its agreement class."""
    noun: _Noun = _NOUN_LISTS[category].pick(rng)
    if category == "S" or (category == "M" and rng.random() < 0.6):
        return [noun.singular], "3s"
    if plural is None:
        plural = noun.plural is not None and rng.random() < 0.35
    plural = plural and noun.plural is not None
    adjective = []
    if rng.random() < adjective_p:
        group = rng.choice(_ADJECTIVES_FOR[category])
        adjective = [_ADJECTIVE_LISTS[group].pick(rng)]
    head = adjective + [noun.plural if plural else noun.singular]
    r = rng.random()
    if noun.plural is None:
        if r < 0.45:
            determiner = ["the"]
        elif r < 0.75:
            determiner = [rng.choice(("some", "more", "no", "this", "that"))]
        elif r < 0.9 or category != "D":
            determiner = [rng.choice(_POSSESSIVES)]
        else:
            determiner = ["a", rng.choice(_CONTAINERS), "of"]
        return determiner + head, "3s"
    if plural:
        if r < 0.35:
            determiner = ["the"]
        elif r < 0.55:
            determiner = _number(rng, 2, 20)
        elif r < 0.75:
            determiner = [rng.choice(_POSSESSIVES)]
        elif r < 0.8:
            determiner = [_NAME_LIST.pick(rng) + "'s"]
        else:
            determiner = [rng.choice(("some", "these", "those", "many", "few", "several", "all", "the"))]
        return determiner + head, "pl"
    if r < 0.4:
        determiner = ["the"]
    elif r < 0.65:
        determiner = [_article(head[0])]
    elif r < 0.85:
        determiner = [rng.choice(_POSSESSIVES)]
    elif r < 0.9:
        determiner = [_NAME_LIST.pick(rng) + "'s"]
    else:
        determiner = [rng.choice(("this", "that", "every", "another", "one"))]
    return determiner + head, "3s"


def _subject(rng: random.Random, kinds: str) -> tuple[list[str], str]:
    if "A" in kinds and ("P" not in kinds or rng.random() < 0.2):
        return _noun_phrase(rng, "A")
    r = rng.random()
    if r < 0.35:
        word, agreement = rng.choice(_SUBJECT_PRONOUNS)
        return [word], agreement
    if r < 0.6:
        return [_NAME_LIST.pick(rng)], "3s"
    if r < 0.65:
        return [_NAME_LIST.pick(rng), "and", rng.choice((_NAME_LIST.pick(rng), "i"))], "pl"
    if r < 0.8:
        return [rng.choice(_POSSESSIVES), _KIN_LIST.pick(rng)], "3s"
    return _noun_phrase(rng, "P")


def _person_object(rng: random.Random) -> list[str]:
    r = rng.random()
    if r < 0.35:
        return [rng.choice(_PERSON_OBJECTS)]
    if r < 0.65:
        return [_NAME_LIST.pick(rng)]
    return _noun_phrase(rng, "P")[0]


def _place(rng: random.Random) -> list[str]:
    return ["the"] + ([_ADJECTIVE_LISTS["place"].pick(rng)] if rng.random() < 0.15 else []) \
        + [_NOUN_LISTS["L"].pick(rng).singular]


def _complement(rng: random.Random, verb: _Verb, frame: str, depth: int,
                tense: int | None = None) -> list[str]:
    """What follows the verb for one of its frames; ``tense`` is the main verb's."""
    particle = [verb.particle] if verb.particle else []
    if frame == "x":
        return particle
    if frame == "m":
        if rng.random() < 0.25:
            return particle + rng.choice(_SHORT_DESTINATIONS).split()
        return particle + ["to"] + _place(rng)
    if frame == "t":
        # Reported speech after a past verb stays in the past ("said that she was late").
        reported = rng.choice((_PAST, _PAST, _PAST_PROGRESSIVE)) if tense in (_PAST, _PAST_PROGRESSIVE) else None
        return particle + (["that"] if rng.random() < 0.5 else []) + _clause(rng, depth + 1, reported)
    if frame == "i":
        return particle + ["to"] + _infinitive(rng, depth + 1)
    if frame == "g":
        thing = _noun_phrase(rng, rng.choice("OOFCE"))[0]
        if rng.random() < 0.3:
            return particle + thing + [rng.choice(("to", "for"))] + _person_object(rng)
        return particle + _person_object(rng) + thing
    if frame == "p":
        where = _noun_phrase(rng, rng.choice("OL"), plural=False, adjective_p=0.1)[0]
        return _noun_phrase(rng, "O")[0] + [rng.choice(_THING_PREPOSITIONS)] + where
    if frame == "P":
        return particle + _person_object(rng)
    return particle + _noun_phrase(rng, frame)[0]


def _infinitive(rng: random.Random, depth: int) -> list[str]:
    verb = _pick_verb(rng, "P", depth)
    return [verb.base] + _complement(rng, verb, _pick_frame(rng, verb, depth), depth)


def _frames(verb: _Verb, depth: int) -> str:
    # Nested clauses take no further clause, infinitive or second object: that bounds the
    # recursion and keeps sentences within MAX_WORDS most of the time.
    return verb.frames if depth == 0 else verb.frames.translate(_NO_NESTING)


def _pick_verb(rng: random.Random, subject_kind: str, depth: int) -> _Verb:
    while True:
        verb: _Verb = _VERB_LIST.pick(rng)
        if subject_kind in verb.subjects and _frames(verb, depth):
            return verb


def _pick_frame(rng: random.Random, verb: _Verb, depth: int) -> str:
    return rng.choice(_frames(verb, depth))


def _verb_group(rng: random.Random, verb: _Verb, subject: list[str], agreement: str,
                tense: int, negative: bool) -> list[str]:
    """Subject and verb group, e.g. ``she hasn't eaten``; contractions where natural."""
    pronoun = subject[0] if len(subject) == 1 else ""
    contract = rng.random() < 0.4
    if tense == _PRESENT:
        if negative:
            return subject + ["doesn't" if agreement == "3s" else "don't", verb.base]
        adverb = [rng.choice(_FREQUENCY)] if rng.random() < 0.2 else []
        return subject + adverb + [verb.third if agreement == "3s" else verb.base]
    if tense == _PAST:
        return subject + (["didn't", verb.base] if negative else [verb.past])
    if tense == _FUTURE:
        if negative:
            return subject + ["won't", verb.base]
        if contract and pronoun in _CONTRACTED_WILL:
            return [_CONTRACTED_WILL[pronoun], verb.base]
        return subject + ["will", verb.base]
    if tense in (_PROGRESSIVE, _GOING_TO):
        tail = [verb.ing] if tense == _PROGRESSIVE else ["going", "to", verb.base]
        if contract and pronoun in _CONTRACTED_BE:
            return [_CONTRACTED_BE[pronoun]] + (["not"] if negative else []) + tail
        be = _be(agreement)
        if negative:
            return subject + ([be, "not"] if be == "am" else [be + "n't"]) + tail
        return subject + [be] + tail
    if tense == _PAST_PROGRESSIVE:
        be = _be(agreement, past=True)
        return subject + [be + "n't" if negative else be, verb.ing]
    if tense == _PERFECT:
        have = "has" if agreement == "3s" else "have"
        if negative:
            return subject + [have + "n't", verb.participle]
        adverb = [rng.choice(("already", "just", "never", "often"))] if rng.random() < 0.3 else []
        if contract and pronoun in _CONTRACTED_HAVE:
            return [_CONTRACTED_HAVE[pronoun]] + adverb + [verb.participle]
        return subject + [have] + adverb + [verb.participle]
    modal = rng.choice(_MODALS)
    return subject + modal[1].split() + [verb.base] if negative else subject + [modal[0], verb.base]


def _adjuncts(rng: random.Random, tense: int, frame: str) -> list[str]:
    words: list[str] = []
    if rng.random() < 0.2:
        words += [_MANNER_LIST.pick(rng)]
    if frame not in "mtip" and rng.random() < 0.25:
        words += [rng.choice(_PLACE_PREPOSITIONS)] + _place(rng)
    elif rng.random() < 0.08:
        words += ["with"] + _person_object(rng)
    if rng.random() < 0.4:
        words += _time_expression(rng, tense)
    return words


def _clause(rng: random.Random, depth: int = 0, tense: int | None = None) -> list[str]:
    """A full statement: subject, verb group, complement and adjuncts."""
    if tense is None:
        tense = rng.choices(_TENSES, weights=_TENSE_WEIGHTS)[0]
    kind = "P" if rng.random() < 0.85 else "A"
    verb = _pick_verb(rng, kind, depth)
    subject, agreement = _subject(rng, kind if kind in verb.subjects else "P")
    # Animals take no clauses or infinitives: frame choice as if nested.
    frame = _pick_frame(rng, verb, depth if kind == "P" else 1)
    words = _verb_group(rng, verb, subject, agreement, tense, negative=rng.random() < 0.15)
    words += _complement(rng, verb, frame, depth, tense)
    return words + (_adjuncts(rng, tense, frame) if depth == 0 else [])


def _question(rng: random.Random) -> list[str]:
    verb = _pick_verb(rng, "P", 1)
    frame = _pick_frame(rng, verb, 1)
    subject, agreement = _subject(rng, "P")
    rest = _complement(rng, verb, frame, 1)
    r = rng.random()
    if r < 0.3:
        aux = rng.choice((("does" if agreement == "3s" else "do"), "did", "will", "can", "could",
                          "should", "would"))
        return [aux] + subject + [verb.base] + rest + _time_or_nothing(rng, _PAST if aux == "did" else _MODAL)
    if r < 0.45:
        return [_be(agreement, past=rng.random() < 0.3)] + subject + [verb.ing] + rest
    if r < 0.55:
        return ["has" if agreement == "3s" else "have"] + subject + ["ever"] + [verb.participle] + rest
    if r < 0.8:
        wh = rng.choice(("where", "when", "why", "how"))
        aux = rng.choice((("does" if agreement == "3s" else "do"), "did", "will", "can"))
        return [wh, aux] + subject + [verb.base] + rest
    if r < 0.9 and frame in "FDOCVU":
        aux = rng.choice(("did", "will", "can", "should"))
        return ["what", aux] + subject + [verb.base] + ([verb.particle] if verb.particle else [])
    return ["who", verb.past] + rest + _time_or_nothing(rng, _PAST)


def _time_or_nothing(rng: random.Random, tense: int) -> list[str]:
    return _time_expression(rng, tense) if rng.random() < 0.3 else []


def _fixed_question(rng: random.Random) -> list[str]:
    """Questions that are not a subject-verb inversion of a clause."""
    category = rng.choice("FOACV")
    noun: _Noun = _NOUN_LISTS[category].pick(rng)
    return rng.choice((
        lambda: ["how", "many", noun.plural, "do", "we", "need"],
        lambda: ["how", "many", noun.plural, rng.choice(("did", "do", "can")), "you",
                 rng.choice(("see", "buy", "find", "have", "want", "count"))],
        lambda: ["how", "much", _NOUN_LISTS["D"].pick(rng).singular, "do", "you", "want"],
        lambda: ["how", "old", "is", rng.choice(_POSSESSIVES), _KIN_LIST.pick(rng)],
        lambda: ["how", "far", "is", "the", _NOUN_LISTS["L"].pick(rng).singular, "from", "here"],
        lambda: ["what", "time", "does", "the", _NOUN_LISTS["L"].pick(rng).singular,
                 rng.choice(("open", "close"))],
        lambda: ["whose", noun.singular, "is", "this"],
        lambda: ["which", noun.singular, "do", "you", "like", "best"],
        lambda: ["is", "there", _article(noun.singular), noun.singular, rng.choice(_PLACE_PREPOSITIONS)]
        + _place(rng),
        lambda: ["are", "there", "any", noun.plural] + [rng.choice(_PLACE_PREPOSITIONS)] + _place(rng),
        lambda: ["where", "is", "the", noun.singular],
        lambda: ["where", "are", rng.choice(_POSSESSIVES), noun.plural],
        lambda: ["what's", "your", rng.choice(("favorite", "best")), noun.singular],
        lambda: ["where's", rng.choice(_POSSESSIVES), _KIN_LIST.pick(rng)],
    ))()


def _command(rng: random.Random) -> list[str]:
    verb = _pick_verb(rng, "P", 1)
    frame = _pick_frame(rng, verb, 1)
    rest = _complement(rng, verb, frame, 1)
    r = rng.random()
    if r < 0.4:
        return ["please", verb.base] + rest + (["now"] if rng.random() < 0.2 else [])
    if r < 0.6:
        return ["don't", verb.base] + rest + _time_or_nothing(rng, _FUTURE)
    if r < 0.85:
        return ["let's", verb.base] + rest + _time_or_nothing(rng, _FUTURE)
    return [verb.base] + rest + [_MANNER_LIST.pick(rng)]


def _linking_verb(rng: random.Random, agreement: str, tense: int) -> list[str]:
    """``is``, ``was``, ``will be``; sometimes feel, look or seem in the same tense."""
    verb = rng.choice(("be", "be", "be", "feel", "look", "seem"))
    if tense == _FUTURE:
        return ["will", verb]
    if verb == "be":
        return [_be(agreement, past=tense == _PAST)]
    if tense == _PAST:
        return [verb + "ed" if verb != "feel" else "felt"]
    return [verb + "s" if agreement == "3s" else verb]


def _description(rng: random.Random) -> list[str]:
    """Copular sentences: what someone or something is like, or where it is."""
    tense = rng.choices((_PRESENT, _PAST, _FUTURE), weights=(6, 3, 1))[0]
    degree = [rng.choice(_DEGREE)] if rng.random() < 0.3 else []
    r = rng.random()
    if r < 0.3:
        subject, agreement = _subject(rng, "P")
        return subject + _linking_verb(rng, agreement, tense) + degree \
            + [_ADJECTIVE_LISTS["person"].pick(rng)] + _time_or_nothing(rng, tense)
    if r < 0.55:
        category = rng.choice("OCVLNFE")
        subject, agreement = _noun_phrase(rng, category, adjective_p=0.0)
        be = ["will", "be"] if tense == _FUTURE else [_be(agreement, past=tense == _PAST)]
        group = rng.choice(_ADJECTIVES_FOR[category])
        return subject + be + degree + [_ADJECTIVE_LISTS[group].pick(rng)]
    if r < 0.65:
        subject, agreement = _noun_phrase(rng, rng.choice("FD"), adjective_p=0.0)
        sense = rng.choice(("taste", "smell"))
        verb = {_PRESENT: [sense + "s" if agreement == "3s" else sense], _PAST: [sense.rstrip("e") + "ed"],
                _FUTURE: ["will", sense]}[tense]
        return subject + verb + degree + [_ADJECTIVE_LISTS["food"].pick(rng)]
    past = tense == _PAST
    if r < 0.8:
        where = [rng.choice(_THING_PREPOSITIONS)] + (
            _place(rng) if rng.random() < 0.6 else ["the", _NOUN_LISTS["O"].pick(rng).singular])
        noun: _Noun = _NOUN_LISTS[rng.choice("OAFC")].pick(rng)
        if rng.random() < 0.3:
            there = ["there's"] if not past and rng.random() < 0.5 else ["there", _be("3s", past)]
            return there + [_article(noun.singular), noun.singular] + where
        if rng.random() < 0.3:
            amount = _number(rng, 2, 12) if rng.random() < 0.6 else [rng.choice(("some", "many", "no"))]
            return ["there", _be("pl", past)] + amount + [noun.plural] + where
        thing, agreement = _noun_phrase(rng, "OAFC"[rng.randrange(4)], adjective_p=0.2)
        return thing + [_be(agreement, past)] + where
    subject, agreement = _subject(rng, "P")
    job = _JOB_LIST.pick(rng)
    if agreement == "pl":
        return subject + [rng.choice(("want", "wanted")), "to", "be", _plural(job)]
    verb = rng.choice(([_be(agreement, past)], ["became"], [_be(agreement, past), "going", "to", "be"]))
    return subject + verb + [_article(job), job]


def _weather(rng: random.Random) -> list[str]:
    tense = rng.choice((_PRESENT, _PAST, _FUTURE, _PROGRESSIVE))
    kind = rng.choice(("rain", "snow"))
    adjective = _ADJECTIVE_LISTS["weather"].pick(rng)
    form = {
        _PRESENT: rng.choice((["it's", adjective], ["it", "is", adjective],
                              ["the", "weather", "is", adjective])),
        _PAST: rng.choice((["it", kind + "ed"], ["it", "was", adjective],
                           ["the", "weather", "was", adjective])),
        _FUTURE: rng.choice((["it", "will", kind], ["it", "will", "be", adjective],
                             ["it's", "going", "to", kind])),
        _PROGRESSIVE: rng.choice((["it's", kind + "ing"], ["it", "is", kind + "ing"])),
    }[tense]
    second = _ADJECTIVE_LISTS["weather"].pick(rng)
    extra = [rng.choice(("and", "but")), second] if second != adjective and rng.random() < 0.15 else []
    return form + extra + _time_expression(rng, tense)


def _numbers(rng: random.Random) -> list[str]:
    noun: _Noun = _NOUN_LISTS[rng.choice("FOCA")].pick(rng)
    return rng.choice((
        lambda: ["the", noun.singular, "costs"] + _number(rng) + ["dollars"],
        lambda: _number(rng, 2, 12) + [noun.plural, "cost"] + _number(rng) + ["dollars", "and"]
        + _number(rng, 2, 99) + ["cents"],
        lambda: [rng.choice(_POSSESSIVES), _KIN_LIST.pick(rng), "is"] + _number(rng, 2, 99) + ["years", "old"],
        lambda: [_NAME_LIST.pick(rng), "is"] + _number(rng, 2, 99) + ["years", "old"],
        lambda: ["the", _NOUN_LISTS["V"].pick(rng).singular, rng.choice(("leaves", "left", "arrives", "arrived")),
                 "at"] + _clock(rng),
        lambda: ["we", "waited", "for"] + _number(rng, 2, 59) + [rng.choice(("minutes", "hours"))],
        lambda: ["it", rng.choice(("takes", "took")), "about"] + _number(rng, 2, 59) + ["minutes", "to", "get",
                 "to", "the", _NOUN_LISTS["L"].pick(rng).singular],
        lambda: [rng.choice(_POSSESSIVES), "office", "is", "on", "the", rng.choice(_ORDINALS[:-1]), "floor"],
        lambda: ["this", "is", rng.choice(_POSSESSIVES), rng.choice(_ORDINALS),
                 _NOUN_LISTS["E"].pick(rng).singular],
        lambda: ["there", "are"] + _number(rng, 2, 999) + [noun.plural, "in"] + _place(rng),
        lambda: ["i", "counted"] + _number(rng, 2, 99) + [noun.plural] + _time_or_nothing(rng, _PAST),
    ))()


def _comparison(rng: random.Random) -> list[str]:
    (_, comparative, superlative), categories = _COMPARISON_LIST.pick(rng)
    category = rng.choice(categories)
    past = rng.random() < 0.3
    if rng.random() < 0.4:
        # Superlatives name their noun: "this is the biggest house in the town".
        first = [_NAME_LIST.pick(rng)] if category == "P" else [rng.choice(("this", "that", "it"))]
        where = ["in", "the", rng.choice(("world", _NOUN_LISTS["L"].pick(rng).singular))]
        return first + [_be("3s", past), "the", superlative, _NOUN_LISTS[category].pick(rng).singular] + where
    if category == "P" and rng.random() < 0.5:
        first, agreement = [_NAME_LIST.pick(rng)], "3s"
        second = [rng.choice(_POSSESSIVES), _KIN_LIST.pick(rng)]
    else:
        first, agreement = _noun_phrase(rng, category, adjective_p=0)
        second = [rng.choice(("the", "the", "my", "your", "this", "that")),
                  _NOUN_LISTS[category].pick(rng).singular]
    return first + [_be(agreement, past), comparative, "than"] + second


# Subordinating word, then the tenses of the subordinate and the main clause.
_SUBORDINATES = (("when", _PAST, _PAST), ("after", _PAST, _PAST), ("before", _PAST, _PAST),
                 ("while", _PAST_PROGRESSIVE, _PAST), ("if", _PRESENT, _FUTURE), ("when", _PRESENT, _FUTURE),
                 ("until", _PRESENT, _FUTURE))


def _two_clauses(rng: random.Random) -> list[str]:
    if rng.random() < 0.5:
        tense = rng.choices(_TENSES, weights=_TENSE_WEIGHTS)[0]
        return _clause(rng, 1, tense) + [rng.choice(("and", "but", "so", "because"))] + _clause(rng, 1, tense)
    word, first, second = rng.choice(_SUBORDINATES)
    return [word] + _clause(rng, 1, first) + _clause(rng, 1, second)


_SENTENCE_KINDS: tuple[Callable[[random.Random], list[str]], ...] = (
    _clause, _question, _fixed_question, _command, _description, _weather, _numbers,
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


@lru_cache(maxsize=1)
def vocabulary() -> frozenset[str]:
    """Every word (upper case) that the generator can produce."""
    words: set[str] = set(_TEMPLATE_WORDS)
    for nouns in _NOUN_LISTS.values():
        words.update(n.singular for n in nouns.items)
        words.update(n.plural for n in nouns.items if n.plural)
    for verb in _VERB_LIST.items:
        words.update((verb.base, verb.third, verb.past, verb.participle, verb.ing))
        words.update(verb.particle.split())
    for adjectives in _ADJECTIVES.values():
        words.update(adjectives.split())
    words.update(w for forms, _ in _COMPARISON_LIST.items for w in forms[1:])
    words.update(_NAMES)
    words.update(name + "'s" for name in _NAMES)
    words.update(_MANNER + _FREQUENCY + _DEGREE + _ONES + _TENS + _ORDINALS + _MONTHS + _SEASONS)
    words.update(_WEEKDAYS + [d + "s" for d in _WEEKDAYS] + _PARTS_OF_DAY + _PERIODS)
    words.update([u + "s" for u in _UNITS] + _PERSON_OBJECTS + _POSSESSIVES + _CONTAINERS)
    words.update(p for p, _ in _SUBJECT_PRONOUNS)
    words.update(_PLACE_PREPOSITIONS + _THING_PREPOSITIONS)
    words.update(w for d in _SHORT_DESTINATIONS for w in d.split())
    words.update(w for pair in _MODALS for form in pair for w in form.split())
    words.update(_CONTRACTED_BE.values(), _CONTRACTED_WILL.values(), _CONTRACTED_HAVE.values())
    return frozenset(w.upper() for w in words)
