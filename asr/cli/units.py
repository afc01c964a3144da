"""``asr units``: what a model emits other than characters, made from training text."""

from __future__ import annotations

import argparse

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
    p = units_sub.add_parser("lexicon", help="a phone lexicon from espeak-ng: words alone, and as manifests' "
                             "phones say them in running speech")
    p.add_argument("--words", nargs="+", required=True,
                   help="text files whose words the lexicon covers (e.g. the LM's text)")
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


def run_units_lexicon(args: argparse.Namespace) -> int:
    from asr.corpora.synthetic.espeak import VOICES
    from asr.data import read_manifest
    from asr.io import atomic_write
    from asr.text import normalize_text
    from asr.units import UnitsError, espeak_lexicon, lexicon_lines

    words = set()
    for path in args.words:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                for line in f:
                    words.update(normalize_text(line).split())
        except OSError as err:
            raise UnitsError(f"{path}: cannot read the word list ({err.strerror or err})") from None
    rows = [(u.text, u.phones) for m in args.manifest for u in read_manifest(m) if u.phones]
    entries = espeak_lexicon(words, args.voices or VOICES, rows, jobs=args.jobs)
    with atomic_write(args.out) as f:
        f.write("\n".join(lexicon_lines(entries)) + "\n")
    print(f"wrote {args.out}: {len(entries)} pronunciations of {len({w for w, _ in entries})} words "
          f"({len(words)} asked for, {len(rows)} rows with phones)")
    return 0
