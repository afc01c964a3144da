"""``asr units``: what a model emits other than characters, made from training text."""

from __future__ import annotations

import argparse
from pathlib import Path

from asr.cli.args import whole


def add_units(sub) -> None:
    p = sub.add_parser("units", help="word-piece models and phone lexicons for text.units = bpe | phones")
    units_sub = p.add_subparsers(dest="units_command", required=True, metavar="KIND")
    p = units_sub.add_parser("bpe", help="train a sentencepiece word-piece model on a manifest's transcripts")
    p.add_argument("--manifest", required=True, nargs="+", help="training manifest(s)")
    p.add_argument("--size", type=whole(8, 100_000), default=256, help="pieces (default 256)")
    p.add_argument("--type", default="unigram", choices=("unigram", "bpe"), help="sentencepiece model type")
    p.add_argument("--out", required=True, help="the model file to write (e.g. data/bpe256.model)")
    p.set_defaults(func=run_units_bpe)
    p = units_sub.add_parser("lexicon", help="a phone lexicon from espeak-ng (words alone, and as manifests' "
                             "phones say them in running speech), or with --cmudict from CMUdict in ARPAbet")
    p.add_argument("--words", nargs="+", required=True,
                   help="where the words the lexicon covers come from: text files (e.g. the LM's text), "
                        "manifests (.jsonl: their transcripts) or ARPA LMs (.arpa, .arpa.gz: their 1-grams)")
    p.add_argument("--cmudict", action="store_true",
                   help="ARPAbet (stress dropped) from CMUdict, every pronunciation of a word; words it lacks "
                        "from espeak-ng's en-us voice mapped to ARPAbet (LibriSpeech; --manifest and --voices "
                        "do not apply)")
    p.add_argument("--manifest", nargs="*", default=[],
                   help="manifests with phones (asr prepare of the synthetic corpus): their pronunciations "
                        "in context are added, and only their phones are used")
    p.add_argument("--voices", nargs="+", default=None, help="espeak-ng voices (default: the corpus's 8 accents)")
    p.add_argument("--jobs", type=whole(1, 64), default=2, help="espeak-ng processes at once (default 2)")
    p.add_argument("--out", required=True, help="the lexicon to write (WORD p1 p2 ... lines)")
    p.set_defaults(func=run_units_lexicon)


def run_units_bpe(args: argparse.Namespace) -> int:
    from asr.data import read_manifest
    from asr.units import train_sentencepiece

    texts = [u.text for m in args.manifest for u in read_manifest(m) if u.text]
    out = train_sentencepiece(texts, args.size, args.out, args.type)
    print(f"wrote {out}: {args.size} {args.type} pieces from {len(texts)} transcripts")
    return 0


def _lexicon_words(paths: list[str]) -> set[str]:
    """The normalised words of text files, manifests' transcripts and ARPA LMs' 1-grams."""
    from asr.data import read_manifest
    from asr.lm.load import read_arpa_unigrams
    from asr.text import normalize_text
    from asr.units import UnitsError

    words: set[str] = set()
    for path in paths:
        if path.endswith(".jsonl"):
            words.update(w for u in read_manifest(path) for w in u.text.split())
            continue
        try:
            if path.endswith((".arpa", ".arpa.gz")):
                words.update(w for word in read_arpa_unigrams(Path(path)) for w in normalize_text(word).split())
                continue
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    words.update(normalize_text(line).split())
        except OSError as err:
            raise UnitsError(f"{path}: cannot read the word list ({err.strerror or err})") from None
    return words


def run_units_lexicon(args: argparse.Namespace) -> int:
    from asr.io import atomic_write
    from asr.units import UnitsError, lexicon_lines

    if args.cmudict and (args.manifest or args.voices):
        raise UnitsError("--cmudict writes ARPAbet; --manifest and --voices give espeak-ng phones: drop them")
    words = _lexicon_words(args.words)
    if args.cmudict:
        entries, note = _cmudict_entries(words)
    else:
        entries, note = _espeak_entries(words, args)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, what="lexicon") as f:
        f.write("\n".join(lexicon_lines(entries)) + "\n")
    print(f"wrote {args.out}: {len(entries)} pronunciations of {len({w for w, _ in entries})} words "
          f"({len(words)} asked for, {note})")
    return 0


def _espeak_entries(words: set[str], args: argparse.Namespace) -> tuple[list, str]:
    from asr.corpora.synthetic.espeak import VOICES
    from asr.data import read_manifest
    from asr.units import espeak_lexicon

    rows = [(u.text, u.phones) for m in args.manifest for u in read_manifest(m) if u.phones]
    return espeak_lexicon(words, args.voices or VOICES, rows, jobs=args.jobs), f"{len(rows)} rows with phones"


def _cmudict_entries(words: set[str]) -> tuple[list, str]:
    from asr.cmudict_lexicon import cmudict_lexicon

    lexicon = cmudict_lexicon(words)
    shown = "; ".join(f"{w}: {why}" for w, why in list(lexicon.left_out.items())[:5])
    note = f"{lexicon.from_cmudict} from CMUdict, {lexicon.from_espeak} from espeak-ng, {len(lexicon.left_out)} left out"
    return lexicon.entries, note + (f": {shown}{' ...' if len(lexicon.left_out) > 5 else ''}" if shown else "")
