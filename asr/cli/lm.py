"""Commands for word n-gram LMs: lm build, lm binary, lm text, and tune-lm."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr.cli.args import EXIT_PARTIAL_FAILURE, MAX_BEAM, MAX_JOBS, add_model_args, check_writable, whole


def add_lm(sub) -> None:
    from asr.lm.build import SMOOTHINGS  # light: the LM toolkits load only when used

    p = sub.add_parser("lm", help="word n-gram language models")
    lm_sub = p.add_subparsers(dest="lm_command", required=True, metavar="LM_COMMAND")
    p = lm_sub.add_parser("build", help="estimate an ARPA n-gram LM from text with IRSTLM")
    p.add_argument("--text", required=True, help="training text: one normalised sentence per line")
    p.add_argument("--order", type=whole(2, 6), default=3,
                   help="n-gram order, 2-6 (KenLM as built by pip reads up to 6; default 3)")
    p.add_argument("--out", required=True, help="ARPA file to write")
    p.add_argument("--smoothing", default=SMOOTHINGS[0], choices=SMOOTHINGS, help=f"default {SMOOTHINGS[0]}")
    p.add_argument("--prune-singletons", action="store_true",
                   help="drop n-grams (above unigrams) seen once: a smaller LM that loads faster")
    p.set_defaults(func=run_lm_build)
    p = lm_sub.add_parser("binary", help="convert an ARPA LM to a KenLM binary, which loads in seconds")
    p.add_argument("--arpa", required=True, help="ARPA file to convert (.gz allowed)")
    p.add_argument("--out", required=True, help="KenLM binary to write (.bin); --lm options read it like the ARPA file")
    p.set_defaults(func=run_lm_binary)
    p = lm_sub.add_parser("text", help="write the general-English LM text (WordNet's examples and glosses)")
    p.add_argument("--out", required=True, help="text file to write, one sentence per line")
    p.add_argument("--exclude", nargs="*", default=[], metavar="MANIFEST",
                   help="manifests whose sentences the text must not contain (the test sets)")
    p.set_defaults(func=run_lm_text)


def run_lm_build(args: argparse.Namespace) -> int:
    from asr.lm.load import read_arpa_unigrams
    from asr.lm.build import build_arpa

    out = build_arpa(Path(args.text), args.order, Path(args.out), args.smoothing, args.prune_singletons)
    pruned = ", singletons pruned" if args.prune_singletons else ""
    print(f"wrote {out}: {args.order}-gram LM ({args.smoothing}{pruned}), {len(read_arpa_unigrams(out))} words")
    return 0


def run_lm_binary(args: argparse.Namespace) -> int:
    from asr.lm.build import build_binary

    out = build_binary(Path(args.arpa), Path(args.out))
    print(f"wrote {out}: KenLM binary (trie) of {args.arpa}, {out.stat().st_size / 2**20:.1f} MiB")
    return 0


def run_lm_text(args: argparse.Namespace) -> int:
    from asr.corpora.synthetic.english import lm_text
    from asr.data import read_manifest
    from asr.io import atomic_write

    excluded = {u.text for manifest in args.exclude for u in read_manifest(manifest)}
    sentences = lm_text(excluded)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out, what="LM text") as f:
        f.writelines(s + "\n" for s in sentences)
    words = len({w for s in sentences for w in s.split()})
    print(f"wrote {args.out}: {len(sentences)} sentences, {words} distinct words "
          f"(general-English LM text; {len(excluded)} sentences of {len(args.exclude)} manifests kept out)")
    return 0


def add_tune_lm(sub) -> None:
    p = sub.add_parser("tune-lm", help="search the LM weight and word bonus on a dev set; store the best")
    add_model_args(p, onnx=True)
    p.add_argument("--manifest", required=True, help="dev manifest")
    p.add_argument("--lm", required=True, help="word n-gram LM (ARPA or KenLM binary)")
    p.add_argument("--alphas", metavar="START:STOP:STEP|A,B,...", help="LM weights to try (default 0:2:0.25)")
    p.add_argument("--betas", metavar="START:STOP:STEP|A,B,...",
                   help="word bonuses to try (default -1:3:0.5; write --betas=-2:1:0.5 when the first is negative)")
    p.add_argument("--trials", type=whole(1), metavar="N",
                   help="random search: N points drawn uniformly within the alpha and beta ranges, instead of the grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the random search")
    p.add_argument("--beam-width", type=whole(1, MAX_BEAM), default=16, metavar="N")
    p.add_argument("--top", type=whole(1), metavar="N", help="print only the N best points")
    p.add_argument("--jobs", type=whole(0, MAX_JOBS), default=0, metavar="N",
                   help="worker processes decoding points in parallel (default 0: one per core)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=run_tune_lm)


def run_tune_lm(args: argparse.Namespace) -> int:
    from asr.data import read_manifest
    from asr.inference import load_recognizer
    from asr.lm.tune import DEFAULT_ALPHAS, DEFAULT_BETAS, grid_points, parse_values, random_points, tune_lm
    from asr.lm.weights_file import store_tuned, tuning_file

    alphas, betas = parse_values(args.alphas or DEFAULT_ALPHAS), parse_values(args.betas or DEFAULT_BETAS)
    if args.trials is not None:
        points = random_points(alphas, betas, args.trials, args.seed)
    else:
        points = grid_points(alphas, betas)
    recognizer = load_recognizer(args.model, args.device)
    check_writable(tuning_file(args.model).parent)  # before the sweep, not after it
    utterances = read_manifest(args.manifest)
    results, tuned, skipped = tune_lm(args.model, recognizer, utterances, args.lm, points, args.beam_width,
                                      args.manifest, progress=not args.quiet, jobs=args.jobs)
    for utterance_id, error in skipped.items():
        print(f"asr: error: {error} (utterance {utterance_id} left out of tuning)", file=sys.stderr)
    print(f"{'alpha':>8} {'beta':>8} {'WER %':>8} {'CER %':>8}")
    for point in results[: args.top]:
        print(f"{point.alpha:8.3f} {point.beta:8.3f} {100 * point.wer:8.2f} {100 * point.cer:8.2f}")
    print(f"best: alpha={tuned.alpha:g} beta={tuned.beta:g}, WER {100 * tuned.wer:.2f}% CER {100 * tuned.cer:.2f}% "
          f"on {tuned.utterances} utterances ({len(points)} points, beam width {tuned.beam_width})", flush=True)
    store_tuned(args.model, args.lm, tuned)  # the table is out first: a failed write costs no result
    print(f"stored in {tuned.source}, used by asr evaluate and asr transcribe with --lm {args.lm}")
    return EXIT_PARTIAL_FAILURE if skipped else 0
