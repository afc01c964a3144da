"""What a model emits: characters, word pieces or phones (``text.units`` in the config).

- **chars**: the 28 characters of normalised transcripts; greedy decoding spells words.
- **bpe**: sentencepiece word pieces (unigram or BPE) trained on the training transcripts
  (:func:`train_sentencepiece`); greedy decoding still gives words.
- **phones**: phones from a pronunciation lexicon (``WORD p1 p2 ...`` lines, several
  pronunciations a word), with ``|`` between words. A manifest row may carry the exact
  phones spoken (``phones``, as the synthetic corpus writes them); otherwise a row's words
  are looked up in the lexicon. Words come back only through a lexicon search, which the
  checkpoint's own lexicon makes possible without any other file.

:func:`vocabulary_for` builds the :class:`~asr.text.Vocabulary` a config asks for; it
travels inside every checkpoint with its sentencepiece model or lexicon.
"""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from asr.bounds import at_least, check, one_of
from asr.errors import UserError
from asr.io import atomic_write
from asr.text import BLANK, UNITS, WORD_SEP, Vocabulary

PIECE_TYPES = ("unigram", "bpe")


@dataclass(frozen=True)
class TextConfig:
    units: str = "chars"  # chars | bpe | phones
    bpe_model: str = ""  # bpe: a sentencepiece model file (asr units bpe makes one)
    bpe_size: int = 256  # bpe: the pieces a recipe's sentencepiece model is made with
    lexicon: str = ""  # phones: a lexicon file ("WORD p1 p2 ..." lines); its phones are the vocabulary

    def __post_init__(self) -> None:
        check(self, {"units": one_of(*UNITS), "bpe_size": at_least(8)})


class UnitsError(UserError, ValueError):
    """A sentencepiece model or lexicon that cannot be used."""


def read_lexicon(path: str | Path) -> list[tuple[str, tuple[str, ...]]]:
    """(word, phones) pairs of a lexicon file, in file order; blank lines are skipped."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UnitsError(f"{path}: no such lexicon file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise UnitsError(f"{path}: cannot read the lexicon ({err})") from None
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise UnitsError(f"{path}:{number}: a lexicon line is a word and its phones, got {line!r}")
        if WORD_SEP in fields[1:]:
            raise UnitsError(f"{path}:{number}: {WORD_SEP!r} separates words and cannot be a phone")
        entries.append((fields[0], tuple(fields[1:])))
    if not entries:
        raise UnitsError(f"{path}: the lexicon is empty")
    return entries


def lexicon_lines(entries: Iterable[tuple[str, tuple[str, ...]]]) -> list[str]:
    """``WORD p1 p2 ...`` lines, as :func:`read_lexicon` reads them: in the entries' order,
    repeats dropped, since a word's first pronunciation is what training learns for rows
    without phones (CMUdict lists the commonest first)."""
    return list(dict.fromkeys(f"{word} {' '.join(phones)}" for word, phones in entries))


def vocabulary_for(config: TextConfig) -> Vocabulary:
    """The vocabulary ``config`` asks for, with its sentencepiece model or lexicon inside."""
    if config.units == "chars":
        return Vocabulary()
    # Checked here, not in TextConfig: a config names its units before a recipe makes their file.
    if config.units == "bpe" and not config.bpe_model:
        raise UnitsError("text.units = 'bpe' needs text.bpe_model, a sentencepiece model (asr units bpe makes one)")
    if config.units == "phones" and not config.lexicon:
        raise UnitsError("text.units = 'phones' needs text.lexicon, a pronunciation lexicon (asr units lexicon "
                         "makes one)")
    if config.units == "bpe":
        path = Path(config.bpe_model)
        try:
            model = path.read_bytes()
        except OSError as err:
            raise UnitsError(f"{path}: cannot read the sentencepiece model ({err.strerror or err})") from None
        return pieces_vocabulary(model, str(path))
    entries = read_lexicon(config.lexicon)
    phones = sorted({p for _, pron in entries for p in pron})
    return Vocabulary((BLANK, WORD_SEP, *phones), "phones", lexicon=tuple(lexicon_lines(entries)))


def pieces_vocabulary(model: bytes, source: str = "sentencepiece model") -> Vocabulary:
    """A word-piece vocabulary: the blank, then the model's pieces in its own id order."""
    import sentencepiece

    try:
        processor = sentencepiece.SentencePieceProcessor(model_proto=model)
    except (RuntimeError, TypeError, OSError) as err:
        raise UnitsError(f"{source}: not a sentencepiece model ({' '.join(str(err).split())[:120]})") from None
    pieces = tuple(processor.id_to_piece(i) for i in range(processor.get_piece_size()))
    return Vocabulary((BLANK, *pieces), "bpe", pieces_model=model)


def train_sentencepiece(texts: Iterable[str], size: int, out: str | Path, model_type: str = "unigram") -> Path:
    """Train a sentencepiece model of ``size`` pieces on normalised ``texts``; write ``out``.

    Every character of the texts is kept (coverage 1.0), so any normalised transcript
    encodes without an unknown piece.
    """
    import sentencepiece

    if size < 8 or model_type not in PIECE_TYPES:
        raise UnitsError(f"word pieces: size must be at least 8 (got {size}) and the type one of "
                         f"{', '.join(PIECE_TYPES)} (got {model_type!r})")
    out = Path(out)
    with tempfile.TemporaryDirectory() as work:
        prefix = Path(work) / "pieces"
        try:
            sentencepiece.SentencePieceTrainer.train(
                sentence_iterator=iter(list(texts)), model_prefix=str(prefix), vocab_size=size,
                model_type=model_type, character_coverage=1.0, bos_id=-1, eos_id=-1, unk_id=0,
                num_threads=1, minloglevel=2,
            )
        except RuntimeError as err:
            raise UnitsError(f"cannot train {size} word pieces on this text ({' '.join(str(err).split())[:160]})") from None
        model = (Path(str(prefix) + ".model")).read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out, "wb", what="sentencepiece model") as f:
        f.write(model)
    return out


def lexicon_table(vocab: Vocabulary) -> dict[str, list[tuple[str, ...]]]:
    """word -> its pronunciations (phones), from a phone vocabulary's lexicon."""
    table: dict[str, list[tuple[str, ...]]] = {}
    for line in vocab.lexicon:
        word, *phones = line.split()
        table.setdefault(word, []).append(tuple(phones))
    return table


def target_units(vocab: Vocabulary, text: str, phones: str = "", table: dict | None = None) -> str | None:
    """The unit string a model of ``vocab`` learns for an utterance (what :meth:`Vocabulary.encode`
    takes, and what its greedy output is scored against), or None when it has none.

    Characters and word pieces: the text. Phones: the row's own ``phones`` when it has them,
    else each word's first pronunciation in the lexicon (``table``, from :func:`lexicon_table`),
    joined by ``|``; None when a word is not in the lexicon.
    """
    if vocab.units != "phones":
        return text
    if phones:
        return phones
    table = lexicon_table(vocab) if table is None else table
    words = []
    for word in text.split():
        if word not in table:
            return None
        words.append(" ".join(table[word][0]))
    return f" {WORD_SEP} ".join(words)


def pronunciations(vocab: Vocabulary, words: Iterable[str] | None = None) -> dict[str, list[tuple[int, ...]]]:
    """word -> its unit-id sequences, what a lexicon search walks.

    Phones: the vocabulary's lexicon (``words`` ignored). Characters and word pieces: each
    of ``words`` spelled (or cut into pieces) one way.
    """
    if vocab.units == "phones":
        index = {t: i for i, t in enumerate(vocab.tokens)}
        return {word: [tuple(index[p] for p in pron) for pron in prons]
                for word, prons in lexicon_table(vocab).items()}
    if words is None:
        raise ValueError("a character or word-piece lexicon search needs its words (an LM's vocabulary)")
    table = {}
    for word in words:
        if vocab.unknown_characters(word):
            continue
        ids = vocab.encode(word)
        if vocab.units == "chars" or ids:
            table[word] = [tuple(ids)]
    return table


SPOKEN_MIN_COUNT = 3  # rows a pronunciation in running speech must be read off, to count


def spoken_pronunciations(rows: Iterable[tuple[str, str]],
                          min_count: int = SPOKEN_MIN_COUNT) -> list[tuple[str, tuple[str, ...]]]:
    """(word, phones) pairs read off (text, phones) rows whose phone string has one group per
    word: the pronunciations words have in running speech ("THE" as ``D @2``), which a
    lexicon made word by word misses. Equal counts can line up wrongly (one word merged
    into its neighbour, another said as two groups), so a pair counts only once seen in
    ``min_count`` rows."""
    counts: Counter[tuple[str, tuple[str, ...]]] = Counter()
    for text, phones in rows:
        words, groups = text.split(), phones.split(WORD_SEP)
        if phones and len(words) == len(groups):
            counts.update({(w, tuple(g.split())) for w, g in zip(words, groups) if g.split()})
    return sorted(pair for pair, n in counts.items() if n >= min_count)


def espeak_lexicon(words: Iterable[str], voices: Iterable[str], rows: Iterable[tuple[str, str]] = (),
                   jobs: int = 2) -> list[tuple[str, tuple[str, ...]]]:
    """A phone lexicon: each word as each espeak-ng voice says it alone, plus the
    pronunciations the (text, phones) ``rows`` show in running speech. Where rows are given,
    pronunciations with a phone no row holds are left out: no model could have learnt it."""
    from asr.corpora.synthetic.phonemes import phonemize_by_voice  # espeak-ng is needed only here

    rows = list(rows)
    words = sorted({w for w in words if w})
    voices = list(voices)
    said = phonemize_by_voice([(w, v) for v in voices for w in words], jobs=jobs)
    entries = {(w, tuple(p.split())) for w, p in zip(words * len(voices), said) if p and WORD_SEP not in p.split()}
    entries.update(spoken_pronunciations(rows))
    heard = {p for _, phones in rows for p in phones.split()}
    if heard:
        entries = {(w, pron) for w, pron in entries if set(pron) <= heard}
    return sorted(entries)
