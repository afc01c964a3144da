"""Commands that make or check data: synth, prepare, download, validate."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.cli.args import EXIT_PARTIAL_FAILURE, MAX_JOBS, fail, finite, whole


def add_synth(sub) -> None:
    p = sub.add_parser("synth", help="make the synthetic corpus (espeak-ng, festival, flite) in LibriSpeech layout")
    p.add_argument("--out", required=True, help="output folder (gets train/, dev/, test/, test-indomain/, test-engine/)")
    p.add_argument("--text", choices=("english", "generator"),
                   help="english (default): WordNet training text, everyday-English dev and test from the "
                   "fortune files; generator: every split from the sentence generator")
    p.add_argument("--train", type=whole(0), help="training utterances")
    p.add_argument("--dev", type=whole(0), help="dev utterances (general English)")
    p.add_argument("--test", type=whole(0), help="test utterances (general English)")
    p.add_argument("--test-indomain", type=whole(0), help="in-domain test utterances (training's sources)")
    p.add_argument("--test-engine", type=whole(0), help="test sentences spoken again by flite, a synthesizer "
                   "training never hears (default: as many as --test, at most 300; 0: none)")
    p.add_argument("--festival-share", type=finite, metavar="SHARE",
                   help="share of the training speakers that are festival voices (default 0.2; 0: espeak-ng alone)")
    p.add_argument("--warp-share", type=finite, metavar="SHARE",
                   help="share of training speakers whose vocal tract and pitch are scaled by 0.9-1.1 (default 0.3)")
    p.add_argument("--tempo-share", type=finite, metavar="SHARE",
                   help="share of training speakers sped up or slowed down by 0.85-1.15 (default 0.2)")
    p.add_argument("--room-share", type=finite, metavar="SHARE",
                   help="share of training speakers heard in a synthetic room, RT60 0.2-0.6 s (default 0.2)")
    p.add_argument("--seed", type=int)
    p.add_argument("--noise", type=finite, metavar="PROB", help="share of utterances given background noise (default 0.2)")
    p.add_argument("--jobs", type=whole(1, MAX_JOBS), help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    import dataclasses

    from asr.errors import ConfigError
    from asr.corpora.synthetic.corpus import SynthConfig, synthesize_corpus

    overrides = {k: v for k, v in {
        "text": args.text, "train_utterances": args.train, "dev_utterances": args.dev, "test_utterances": args.test,
        "test_indomain_utterances": args.test_indomain, "test_engine_utterances": args.test_engine,
        "festival_share": args.festival_share, "warp_share": args.warp_share, "tempo_share": args.tempo_share,
        "room_share": args.room_share, "seed": args.seed, "noise": args.noise, "jobs": args.jobs,
    }.items() if v is not None}
    test_engine = args.test_engine
    if test_engine is None and args.test is not None:
        test_engine = min(SynthConfig.test_engine_utterances, args.test)
    if test_engine is not None:  # as many speakers as the default, or one per utterance when fewer
        overrides["test_engine_utterances"] = test_engine
        overrides["test_engine_speakers"] = min(SynthConfig.test_engine_speakers, test_engine)
    try:
        config = dataclasses.replace(SynthConfig(), **overrides)
    except ValueError as err:
        raise ConfigError(f"synth: {err}") from None
    report = synthesize_corpus(Path(args.out), config, progress=not args.quiet)
    counts = ", ".join(f"{n} {split}" for split, n in report.utterances.items())
    state = "already complete" if report.already_done else f"made in {report.wall_seconds:.0f} s"
    print(f"corpus {args.out}: {counts} utterances, {report.audio_seconds / 3600:.2f} h of audio ({state})")
    if report.failures:
        print(f"{len(report.failures)} utterances failed and were left out: rerun to retry them", file=sys.stderr)
        return EXIT_PARTIAL_FAILURE
    return 0


def _speed_factors(text: str) -> tuple[float, ...]:
    try:
        factors = tuple(float(f) for f in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated numbers, e.g. 0.9,1.0,1.1") from None
    from asr.data import SPEED_RANGE

    low, high = SPEED_RANGE
    if not all(low <= f <= high for f in factors) or len(set(factors)) != len(factors):
        raise argparse.ArgumentTypeError(f"{text!r}: factors must be distinct and between {low:g} and {high:g}")
    return factors


def add_prepare(sub) -> None:
    p = sub.add_parser("prepare", help="corpus folders, Lhotse manifests or Kaldi data directories -> JSON-lines "
                                       "manifest, and manifests out to Lhotse and Kaldi")
    inputs = p.add_argument_group("input (one kind)")
    inputs.add_argument("dirs", nargs="*", metavar="DIR", help="LibriSpeech-layout subset folder(s) holding speaker folders")
    inputs.add_argument("--lhotse", nargs="+", metavar="MANIFEST",
                        help="Lhotse manifests: a cut set, or a recording set and a supervision set (needs lhotse)")
    inputs.add_argument("--kaldi", metavar="DATA_DIR", help="a Kaldi data directory (wav.scp, text, utt2spk, segments)")
    inputs.add_argument("--manifest", nargs="+", metavar="MANIFEST", help="asr manifests (.jsonl), to write them out "
                        "as Lhotse manifests or a Kaldi data directory")
    inputs.add_argument("--kaldi-commands", metavar="DIR", help="run the commands wav.scp pipes ('sph2pipe ... |'; a "
                        "shell runs each) and keep their audio in DIR; without it such recordings are left out")
    outputs = p.add_argument_group("output (one or more)")
    outputs.add_argument("--out", help="manifest to write (.jsonl)")
    outputs.add_argument("--to-lhotse", metavar="DIR", help="write recordings, supervisions and cuts (.jsonl.gz) "
                         "into DIR (needs lhotse)")
    outputs.add_argument("--to-kaldi", metavar="DIR", help="write a Kaldi data directory")
    p.add_argument("--jobs", type=whole(1, MAX_JOBS), help="decoding threads (default: all cores)")
    p.add_argument("--speed-perturb", type=_speed_factors, metavar="F,F,...",
                   help="also list each utterance at these speeds in --out, e.g. 0.9,1.0,1.1 (ids prefixed sp0.9-; "
                        "the audio is resampled when loaded, nothing is written to disk)")
    p.set_defaults(func=run_prepare)


def _prepare_input(args: argparse.Namespace):
    """The utterances of the one input the arguments name, and the entries skipped; or an exit code."""
    from asr.corpora.librispeech import read_librispeech

    given = [name for name, value in (("DIR", args.dirs), ("--lhotse", args.lhotse), ("--kaldi", args.kaldi),
                                      ("--manifest", args.manifest)) if value]
    if len(given) != 1:
        return fail(f"prepare: give one kind of input (LibriSpeech-layout DIR..., --lhotse, --kaldi or --manifest), "
                    f"not {' and '.join(given) or 'none'}")
    if args.kaldi_commands and not args.kaldi:
        return fail("prepare: --kaldi-commands runs a Kaldi data directory's wav.scp commands: give --kaldi DIR")
    if args.lhotse:
        from asr.corpora.lhotse_manifests import read_lhotse

        return read_lhotse(args.lhotse, jobs=args.jobs)
    if args.kaldi:
        from asr.corpora.kaldi import read_kaldi_dir

        return read_kaldi_dir(args.kaldi, commands_dir=args.kaldi_commands, jobs=args.jobs)
    if args.manifest:
        from asr.data import read_manifest

        return [u for m in args.manifest for u in read_manifest(m)], []
    utterances, skipped = [], []
    for directory in args.dirs:
        if not Path(directory).is_dir():
            return fail(f"{directory}: no such directory (expected a LibriSpeech-layout folder of speaker folders)")
        good, bad = read_librispeech(directory, jobs=args.jobs)
        utterances += good
        skipped += bad
    return utterances, skipped


def run_prepare(args: argparse.Namespace) -> int:
    from asr.data import speed_perturb, write_manifest

    if not (args.out or args.to_lhotse or args.to_kaldi):
        return fail("prepare: give --out MANIFEST.jsonl, --to-lhotse DIR or --to-kaldi DIR")
    read = _prepare_input(args)
    if isinstance(read, int):
        return read
    utterances, skipped = read
    for item in skipped:  # a LibriSpeech folder's are files skipped; Kaldi's and Lhotse's say what they left out
        print(f"asr: skipped {item}" if args.dirs else f"asr: {item}", file=sys.stderr)
    writers = []
    if args.to_kaldi:
        from asr.corpora.kaldi import write_kaldi_dir

        writers.append((args.to_kaldi, "a Kaldi data directory", write_kaldi_dir))
    if args.to_lhotse:
        from asr.corpora.lhotse_manifests import write_lhotse

        writers.append((args.to_lhotse, "Lhotse manifests", write_lhotse))
    left_out = 0
    for folder, kind, write in writers:
        count, not_written = write(utterances, folder)
        for item in not_written:
            print(f"asr: not written: {item}", file=sys.stderr)
        left_out += len(not_written)
        print(f"wrote {count} utterances to {folder} ({kind}); left out {len(not_written)}")
    if args.out:
        rows = speed_perturb(utterances, args.speed_perturb) if args.speed_perturb else utterances
        count = write_manifest(rows, args.out)
        hours = sum(u.duration for u in rows) / 3600
        factors = f" at speeds {', '.join(f'{f:g}' for f in args.speed_perturb)}" if args.speed_perturb else ""
        if args.dirs:  # files skipped, counted by reason
            found = f"skipped {len(skipped)}" + (f" ({_count_reasons(item.reason for item in skipped)})" if skipped else "")
        else:
            found = f"{len(skipped)} problem{'s' * (len(skipped) != 1)}" + (", listed above" if skipped else "")
        print(f"wrote {count} utterances ({hours:.2f} h{factors}) to {args.out}; {found}")
    return EXIT_PARTIAL_FAILURE if skipped or left_out else 0


def _count_reasons(reasons) -> str:
    """"2 x file is empty (0 bytes), 1 x cannot decode audio": reasons without their details."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = reason.split(" (", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} x {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def add_download(sub) -> None:
    p = sub.add_parser("download", help="download and unpack LibriSpeech or its LMs from OpenSLR (resumable, MD5-checked)")
    corpus = p.add_subparsers(dest="corpus", required=True, metavar="CORPUS")
    for name, helptext in (("librispeech", "LibriSpeech subsets (OpenSLR 12)"),
                           ("librispeech-lm", "LibriSpeech n-gram LMs and texts (OpenSLR 11)")):
        q = corpus.add_parser(name, help=helptext)
        if name == "librispeech":
            q.add_argument("--subsets", nargs="+", required=True, metavar="SUBSET",
                           help="e.g. train-clean-100 dev-clean dev-other test-clean test-other; "
                                "train-460 and train-960 name the usual unions")
            q.add_argument("--dest", required=True, help="folder for the tarballs; they unpack into DEST/LibriSpeech/")
        else:
            q.add_argument("--names", nargs="+", required=True, metavar="FILE",
                           help="e.g. 3-gram.pruned.1e-7.arpa.gz 3-gram.arpa.gz 4-gram.arpa.gz")
            q.add_argument("--dest", required=True, help="folder for the files")
            q.add_argument("--unzip", action="store_true", help="also decompress each .arpa.gz to .arpa")
        q.add_argument("--mirror", help="us, eu, cn, or the base URL of a server holding the files (default: openslr.org)")
        q.add_argument("--checksums", metavar="MD5SUM_TXT",
                       help="md5sum-format file replacing the built-in OpenSLR sums (for a mirror serving other files)")
        q.add_argument("--quiet", action="store_true", help="no progress bars")
        q.set_defaults(func=run_download)


def run_download(args: argparse.Namespace) -> int:
    from asr.corpora.download import read_md5sum_file
    from asr.corpora.librispeech import download_librispeech, download_librispeech_lm

    if args.checksums and not Path(args.checksums).is_file():
        return fail(f"{args.checksums}: no such checksums file (md5sum format: 'MD5  FILENAME' lines)")
    checksums = read_md5sum_file(Path(args.checksums)) if args.checksums else None
    if args.corpus == "librispeech":
        dirs = download_librispeech(args.subsets, Path(args.dest), mirror=args.mirror, checksums=checksums,
                                    progress=not args.quiet)
        for directory in dirs:
            print(directory)
    else:
        paths = download_librispeech_lm(args.names, Path(args.dest), mirror=args.mirror, checksums=checksums,
                                        progress=not args.quiet, unzip=args.unzip)
        for path in paths:
            print(path)
    return 0


def add_validate(sub) -> None:
    p = sub.add_parser("validate", help="check manifests before training (missing audio, empty text, duplicate ids, ...)")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("--jobs", type=whole(1, MAX_JOBS), help="threads reading audio headers")
    p.add_argument("--max-problems", type=whole(0), default=50, metavar="N",
                   help="print at most N problems (default 50; 0: all); all are counted")
    p.set_defaults(func=run_validate)


def run_validate(args: argparse.Namespace) -> int:
    from asr.validate import validate_manifests

    rows, problems = validate_manifests(args.manifests, jobs=args.jobs)
    for problem in problems[: args.max_problems or None]:
        print(problem, file=sys.stderr)
    if args.max_problems and len(problems) > args.max_problems:
        print(f"... and {len(problems) - args.max_problems} more", file=sys.stderr)
    if problems:
        kinds: dict[str, int] = {}
        for problem in problems:
            kinds[problem.kind] = kinds.get(problem.kind, 0) + 1
        counts = ", ".join(f"{n} {kind}" for kind, n in kinds.items())
        print(f"{len(problems)} problem(s) in {len(args.manifests)} manifest(s), {rows} rows: {counts}; "
              "fix them (or rerun asr prepare) before training", file=sys.stderr)
        return EXIT_PARTIAL_FAILURE
    print(f"ok: {rows} rows in {len(args.manifests)} manifest(s), no problems")
    return 0
