"""The ``asr`` command line: a thin layer over the library.

Every error a user can cause (a bad path, a bad file, an unknown option) ends in one
``asr: error: ...`` line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path

from asr import __version__

EXIT_USER_ERROR = 2
EXIT_PARTIAL_FAILURE = 1


def _fail(message: str, code: int = EXIT_USER_ERROR) -> int:
    print(f"asr: error: {message}", file=sys.stderr)
    return code


def cmd_synth(args: argparse.Namespace) -> int:
    import dataclasses

    from asr.config import ConfigError
    from asr.synth import SynthConfig, synthesize_corpus

    overrides = {k: v for k, v in {
        "text": args.text, "train_utterances": args.train, "dev_utterances": args.dev, "test_utterances": args.test,
        "test_indomain_utterances": args.test_indomain, "seed": args.seed, "noise": args.noise, "jobs": args.jobs,
    }.items() if v is not None}
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


def cmd_prepare(args: argparse.Namespace) -> int:
    from asr.data import read_librispeech, speed_perturb, write_manifest

    utterances, skipped = [], []
    for directory in args.dirs:
        if not Path(directory).is_dir():
            return _fail(f"{directory}: no such directory (expected a LibriSpeech-layout folder of speaker folders)")
        good, bad = read_librispeech(directory, jobs=args.jobs)
        utterances += good
        skipped += bad
    for item in skipped:
        print(f"asr: skipped {item.path}: {item.reason}", file=sys.stderr)
    if args.speed_perturb:
        utterances = speed_perturb(utterances, args.speed_perturb)
    count = write_manifest(utterances, args.out)
    hours = sum(u.duration for u in utterances) / 3600
    factors = f" at speeds {', '.join(f'{f:g}' for f in args.speed_perturb)}" if args.speed_perturb else ""
    print(f"wrote {count} utterances ({hours:.2f} h{factors}) to {args.out}; skipped {len(skipped)}"
          + (f" ({_count_reasons(item.reason for item in skipped)})" if skipped else ""))
    return EXIT_PARTIAL_FAILURE if skipped else 0


def _count_reasons(reasons) -> str:
    """"2 x file is empty (0 bytes), 1 x cannot decode audio": reasons without their details."""
    counts: dict[str, int] = {}
    for reason in reasons:
        kind = reason.split(" (", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} x {kind}" for kind, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _whole(minimum: int, maximum: int | None = None):
    """An argparse type: a whole number from ``minimum`` (to ``maximum``)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text}: must be at least {minimum}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text}: must be at most {maximum}")
        return value
    return parse


MAX_JOBS = 256  # processes or threads: more would exhaust the machine, not speed it up
MAX_BEAM = 1024  # beams: far past where WER stops improving (16-128), and memory grows with it


def _finite(text: str) -> float:
    """An argparse type: a finite number (nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number")
    return value


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


def cmd_train(args: argparse.Namespace) -> int:
    from asr.config import load_config
    from asr.train import train

    overrides = dict(_parse_override(o) for o in args.set or [])
    cfg = load_config(args.config, overrides)
    state = train(cfg, args.exp_dir, resume=args.resume, overwrite=args.overwrite, device=args.device,
                  progress=not args.quiet)
    if int(os.environ.get("RANK", "0")) != 0:
        return 0  # under torchrun, rank 0 reports
    best = Path(args.exp_dir) / "best.pt"
    scored = (f"best dev WER {100 * state.best_wer:.2f}% (epoch {state.best_epoch})" if math.isfinite(state.best_wer)
              else "no dev score")
    print(f"done: {state.epoch} epochs, {state.step} steps, {scored}; "
          + (f"model at {best}" if best.exists() else "no best.pt was written"))
    return 0


def _parse_override(text: str) -> tuple[str, object]:
    import tomllib

    from asr.config import ConfigError

    key, sep, value = text.partition("=")
    if not sep or "." not in key:
        raise ConfigError(f"--set {text!r}: expected section.key=value, e.g. train.epochs=3")
    try:
        parsed = tomllib.loads(f"v = {value}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value  # a bare word is taken as a string
    return key.strip(), parsed


def _load(args: argparse.Namespace):
    from asr.checkpoint import load_model
    from asr.inference import resolve_device

    return load_model(args.model, resolve_device(args.device))


def _decoder(args: argparse.Namespace, loaded):
    """The decoder the options ask for; alpha, beta and beam width not given come from
    ``asr tune-lm``'s file next to the checkpoint when it holds values for this LM."""
    from asr.decode import build_decoder
    from asr.tune import decoding_config

    config, note = decoding_config(args.model, args.decoder, args.beam_width, args.lm, args.alpha, args.beta)
    decoder = build_decoder(loaded.vocab, config)
    if note:
        print(f"asr: {note}", file=sys.stderr)
    return decoder, config


def _add_decoder_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--decoder", choices=("greedy", "beam"),
                       help="default: beam when --lm or --beam-width is given, else greedy")
    group.add_argument("--beam-width", type=_whole(1, MAX_BEAM), metavar="N",
                       help="beam search width (default: the tuned one for this LM, else 16)")
    group.add_argument("--lm", metavar="LM", help="word n-gram LM (ARPA or KenLM binary) fused into beam search")
    group.add_argument("--alpha", type=_finite,
                       help="LM weight (default: the value asr tune-lm stored for this model and LM, else 0.5)")
    group.add_argument("--beta", type=_finite, help="bonus per word (default: tuned as --alpha, else 1.0)")


def cmd_lm_build(args: argparse.Namespace) -> int:
    from asr.lm import build_arpa, read_arpa_unigrams

    out = build_arpa(Path(args.text), args.order, Path(args.out), args.smoothing, args.prune_singletons)
    pruned = ", singletons pruned" if args.prune_singletons else ""
    print(f"wrote {out}: {args.order}-gram LM ({args.smoothing}{pruned}), {len(read_arpa_unigrams(out))} words")
    return 0


def cmd_lm_binary(args: argparse.Namespace) -> int:
    from asr.lm import build_binary

    out = build_binary(Path(args.arpa), Path(args.out))
    print(f"wrote {out}: KenLM binary (trie) of {args.arpa}, {out.stat().st_size / 2**20:.1f} MiB")
    return 0


def cmd_lm_text(args: argparse.Namespace) -> int:
    from asr.corpus_text import lm_text
    from asr.data import read_manifest
    from asr.files import atomic_write

    excluded = {u.text for manifest in args.exclude for u in read_manifest(manifest)}
    sentences = lm_text(excluded)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(args.out) as f:
        f.writelines(s + "\n" for s in sentences)
    words = len({w for s in sentences for w in s.split()})
    print(f"wrote {args.out}: {len(sentences)} sentences, {words} distinct words "
          f"(general-English LM text; {len(excluded)} sentences of {len(args.exclude)} manifests kept out)")
    return 0


def cmd_tune_lm(args: argparse.Namespace) -> int:
    from asr.data import read_manifest
    from asr.tune import (DEFAULT_ALPHAS, DEFAULT_BETAS, grid_points, parse_values, random_points, store_tuned,
                          tune_lm, tuning_file)

    alphas, betas = parse_values(args.alphas or DEFAULT_ALPHAS), parse_values(args.betas or DEFAULT_BETAS)
    if args.trials is not None:
        points = random_points(alphas, betas, args.trials, args.seed)
    else:
        points = grid_points(alphas, betas)
    loaded = _load(args)
    _check_writable(tuning_file(args.model).parent)  # before the sweep, not after it
    utterances = read_manifest(args.manifest)
    results, tuned, skipped = tune_lm(args.model, loaded, utterances, args.lm, points, args.beam_width, args.manifest,
                                      progress=not args.quiet, jobs=args.jobs)
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


def _check_writable(folder: Path) -> None:
    """Raise the OSError a write into ``folder`` would meet (read-only, no permission, full),
    before a long computation whose result goes there."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def _settings(decoding) -> dict:
    """The decoding settings that were used: greedy search has none; alpha and beta weight an LM."""
    if decoding.decoder == "greedy":
        return {"decoder": "greedy"}
    settings = {"decoder": decoding.decoder, "beam_width": decoding.beam_width, "lm": decoding.lm}
    return settings if decoding.lm is None else {**settings, "alpha": decoding.alpha, "beta": decoding.beta}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from asr.data import read_manifest
    from asr.decode import GreedyDecoder
    from asr.evaluate import decode_utterances, format_summary, score, write_reports

    loaded = _load(args)
    utterances = read_manifest(args.manifest)
    if not utterances:
        return _fail(f"{args.manifest}: manifest has no utterances")
    decoder, decoding = _decoder(args, loaded)
    # The default folder names the decoding, so a beam run does not overwrite a greedy one.
    method = "greedy" if isinstance(decoder, GreedyDecoder) else ("beam-lm" if args.lm else "beam")
    default_dir = Path(args.model).parent / f"decode-{Path(args.manifest).stem}-{method}"
    out_dir = Path(args.out_dir) if args.out_dir else default_dir
    _check_writable(out_dir)  # before decoding, not after it
    decoded = decode_utterances(loaded.model, loaded.config.features, loaded.vocab, utterances, decoder,
                                progress=not args.json)
    # An utterance whose audio cannot be read is reported, listed in skipped.txt and left out of the score.
    skipped = decoded.skipped(utterances)
    for error in skipped.values():
        print(f"asr: error: {error}", file=sys.stderr)
    utterances = decoded.decoded(utterances)
    if not utterances:
        return _fail(f"{args.manifest}: no utterance's audio could be read ({len(skipped)} failed)",
                     EXIT_PARTIAL_FAILURE)
    result = score(utterances, decoded.texts, skipped)
    # The score is printed first: a write that fails after all costs no result.
    if args.json:
        print(json.dumps({**result.summary(), "decoding": _settings(decoding), "output_dir": str(out_dir)}),
              flush=True)
    else:
        print(format_summary(result), flush=True)
    write_reports(result, out_dir, [u.speaker for u in utterances])
    if not args.json:
        print(f"per-utterance results and sclite trn files in {out_dir}")
    if skipped:
        print(f"{len(skipped)} utterance{'s' * (len(skipped) != 1)} skipped: audio could not be read "
              f"(listed in {out_dir / 'skipped.txt'})", file=sys.stderr)
        return EXIT_PARTIAL_FAILURE
    return 0


def cmd_transcribe(args: argparse.Namespace) -> int:
    from asr.export import OnnxModel
    from asr.formats import FORMATS, to_json, write_outputs
    from asr.transcribe import TranscribeOptions, find_inputs, transcribe_files

    formats = FORMATS if args.format == "all" else (args.format,)
    if args.output_dir is None and args.format not in ("txt", "json"):
        return _fail(f"--format {args.format} writes files: give --output-dir DIR")
    if args.output_dir is not None and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        return _fail(f"{args.output_dir}: --output-dir is a file, not a folder")
    try:
        options = TranscribeOptions(window_seconds=args.window, overlap_seconds=args.overlap)
    except ValueError as err:
        return _fail(f"transcribe: {err}")
    if Path(args.model).suffix == ".onnx":
        if args.device not in ("auto", "cpu"):
            return _fail(f"ONNX models run on the CPU here; use --device cpu, or the .pt checkpoint for {args.device}")
        loaded = OnnxModel(args.model)
    else:
        loaded = _load(args)
    decoder, _ = _decoder(args, loaded)
    inputs, missing = find_inputs(args.audio)
    for line in missing:
        print(f"asr: error: {line}", file=sys.stderr)
    done, failed = 0, len(missing)
    for source, item in zip(inputs, transcribe_files(loaded, [i.path for i in inputs], decoder, options)):
        if item.error:
            failed += 1
            print(f"asr: error: {item.error}", file=sys.stderr)
            continue
        done += 1
        if args.output_dir is not None:
            write_outputs(item, Path(args.output_dir) / source.name, formats)
        elif args.format == "json":
            print(json.dumps(to_json(item), ensure_ascii=False), flush=True)
        else:
            print(f"{item.path}\t{item.text}", flush=True)
    where = f"; outputs in {args.output_dir}" if args.output_dir is not None and done else ""
    print(f"transcribed {done} file{'s' * (done != 1)}, {failed} failed{where}", file=sys.stderr)
    return EXIT_PARTIAL_FAILURE if failed else 0


def cmd_export(args: argparse.Namespace) -> int:
    from asr.checkpoint import load_model
    from asr.export import OnnxDependencyError, OnnxModel, export_onnx, max_difference

    loaded = load_model(args.model, "cpu")
    try:
        out = export_onnx(loaded, args.out, args.opset)
    except OnnxDependencyError as err:
        return _fail(str(err))
    try:
        difference = max_difference(loaded, OnnxModel(out))
    except OnnxDependencyError:
        print(f"wrote {out}; onnxruntime is not installed, so it was not checked against PyTorch")
        return 0
    if difference > 1e-3:
        return _fail(f"{out}: ONNX Runtime differs from PyTorch by {difference:.2g} in log-probability; "
                     "the export is wrong, please report it")
    print(f"wrote {out} (opset {args.opset}, dynamic batch and time); ONNX Runtime matches PyTorch "
          f"within {difference:.1e} in log-probability")
    return 0


def cmd_download(args: argparse.Namespace) -> int:
    from asr.download import download_librispeech, download_librispeech_lm, read_md5sum_file

    if args.checksums and not Path(args.checksums).is_file():
        return _fail(f"{args.checksums}: no such checksums file (md5sum format: 'MD5  FILENAME' lines)")
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


def cmd_validate(args: argparse.Namespace) -> int:
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


def cmd_average(args: argparse.Namespace) -> int:
    from asr.average import AverageError, average_checkpoints, last_epochs

    if bool(args.checkpoints) == bool(args.exp_dir):
        raise AverageError("give one of --exp-dir EXP (with --last N) or checkpoint files")
    paths = last_epochs(args.exp_dir, args.last) if args.exp_dir else [Path(p) for p in args.checkpoints]
    out = average_checkpoints(paths, args.out)
    print(f"wrote {out}: the average of {len(paths)} checkpoints ({', '.join(p.name for p in paths)})")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Small BiLSTM-CTC speech recognition toolkit "
                                     "(GRU and vanilla RNN cells, uni- or bidirectional, as options).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("synth", help="make the synthetic espeak-ng corpus in LibriSpeech layout")
    p.add_argument("--out", required=True, help="output folder (gets train/, dev/, test/, test-indomain/)")
    p.add_argument("--text", choices=("english", "generator"),
                   help="english (default): WordNet training text, everyday-English dev and test from the "
                   "fortune files; generator: every split from the sentence generator")
    p.add_argument("--train", type=_whole(0), help="training utterances")
    p.add_argument("--dev", type=_whole(0), help="dev utterances (general English)")
    p.add_argument("--test", type=_whole(0), help="test utterances (general English)")
    p.add_argument("--test-indomain", type=_whole(0), help="in-domain test utterances (training's sources)")
    p.add_argument("--seed", type=int)
    p.add_argument("--noise", type=_finite, metavar="PROB", help="share of utterances given background noise (default 0.2)")
    p.add_argument("--jobs", type=_whole(1, MAX_JOBS), help="worker processes (default: all cores)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("prepare", help="LibriSpeech-layout folder(s) -> JSON-lines manifest")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="subset folder(s) holding speaker folders")
    p.add_argument("--out", required=True, help="manifest to write (.jsonl)")
    p.add_argument("--jobs", type=_whole(1, MAX_JOBS), help="decoding threads (default: all cores)")
    p.add_argument("--speed-perturb", type=_speed_factors, metavar="F,F,...",
                   help="also list each utterance at these speeds, e.g. 0.9,1.0,1.1 (ids prefixed sp0.9-; "
                        "the audio is resampled when loaded, nothing is written to disk)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("train", help="train a model from a TOML config")
    p.add_argument("--config", required=True)
    p.add_argument("--exp-dir", required=True, help="experiment folder for checkpoints and logs")
    p.add_argument("--resume", action="store_true", help="continue from EXP_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="EXP_DIR holds an earlier run: delete its checkpoints and metrics and start over")
    p.add_argument("--set", action="append", metavar="SECTION.KEY=VALUE", help="override a config value")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    for name, func, helptext in (
        ("evaluate", cmd_evaluate, "decode a manifest and print WER/CER"),
        ("transcribe", cmd_transcribe, "transcribe audio files, folders or globs of any length (txt, json, srt, vtt)"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("--model", required=True,
                       help="checkpoint (.pt)" + (" or model from asr export (.onnx)" if name == "transcribe" else ""))
        p.add_argument("--device", default="auto", help="auto, cpu or cuda")
        _add_decoder_args(p)
        if name == "evaluate":
            p.add_argument("--manifest", required=True)
            p.add_argument("--out-dir", help="where to write per-utterance and trn files")
            p.add_argument("--json", action="store_true", help="print one JSON object")
        else:
            p.add_argument("audio", nargs="+", metavar="AUDIO",
                           help="audio files, folders (searched recursively) or glob patterns")
            p.add_argument("--format", default="txt", choices=("txt", "json", "srt", "vtt", "all"),
                           help="output format (default txt); srt, vtt and all need --output-dir")
            p.add_argument("--output-dir", metavar="DIR",
                           help="write DIR/NAME.FORMAT per file (NAME: its path under a folder argument, "
                                "else its file name, without extension); without it, print path<TAB>text "
                                "lines (txt) or JSON lines (json)")
            p.add_argument("--window", type=_finite, default=20.0, metavar="SECONDS",
                           help="longer files are cut into pieces of at most this length, at pauses where "
                                "there are some (default 20)")
            p.add_argument("--overlap", type=_finite, default=4.0, metavar="SECONDS",
                           help="overlap of two pieces cut where there is no pause (default 4)")
        p.set_defaults(func=func)

    p = sub.add_parser("export", help="export a checkpoint's acoustic model to ONNX (needs asr[onnx])")
    p.add_argument("--model", required=True, help="checkpoint (.pt)")
    p.add_argument("--out", required=True, help="ONNX file to write (.onnx); asr transcribe --model reads it")
    p.add_argument("--opset", type=_whole(7), default=17, help="ONNX opset version (default 17)")
    p.set_defaults(func=cmd_export)

    from asr.lm import SMOOTHINGS  # light: the LM toolkits load only when used

    p = sub.add_parser("lm", help="word n-gram language models")
    lm_sub = p.add_subparsers(dest="lm_command", required=True, metavar="LM_COMMAND")
    p = lm_sub.add_parser("build", help="estimate an ARPA n-gram LM from text with IRSTLM")
    p.add_argument("--text", required=True, help="training text: one normalised sentence per line")
    p.add_argument("--order", type=_whole(2, 6), default=3,
                   help="n-gram order, 2-6 (KenLM as built by pip reads up to 6; default 3)")
    p.add_argument("--out", required=True, help="ARPA file to write")
    p.add_argument("--smoothing", default=SMOOTHINGS[0], choices=SMOOTHINGS, help=f"default {SMOOTHINGS[0]}")
    p.add_argument("--prune-singletons", action="store_true",
                   help="drop n-grams (above unigrams) seen once: a smaller LM that loads faster")
    p.set_defaults(func=cmd_lm_build)
    p = lm_sub.add_parser("binary", help="convert an ARPA LM to a KenLM binary, which loads in seconds")
    p.add_argument("--arpa", required=True, help="ARPA file to convert (.gz allowed)")
    p.add_argument("--out", required=True, help="KenLM binary to write (.bin); --lm options read it like the ARPA file")
    p.set_defaults(func=cmd_lm_binary)
    p = lm_sub.add_parser("text", help="write the general-English LM text (WordNet's examples and glosses)")
    p.add_argument("--out", required=True, help="text file to write, one sentence per line")
    p.add_argument("--exclude", nargs="*", default=[], metavar="MANIFEST",
                   help="manifests whose sentences the text must not contain (the test sets)")
    p.set_defaults(func=cmd_lm_text)

    p = sub.add_parser("tune-lm", help="search the LM weight and word bonus on a dev set; store the best")
    p.add_argument("--model", required=True, help="checkpoint (.pt); the result is stored next to it")
    p.add_argument("--manifest", required=True, help="dev manifest")
    p.add_argument("--lm", required=True, help="word n-gram LM (ARPA or KenLM binary)")
    p.add_argument("--alphas", metavar="START:STOP:STEP|A,B,...", help="LM weights to try (default 0:2:0.25)")
    p.add_argument("--betas", metavar="START:STOP:STEP|A,B,...",
                   help="word bonuses to try (default -1:3:0.5; write --betas=-2:1:0.5 when the first is negative)")
    p.add_argument("--trials", type=_whole(1), metavar="N",
                   help="random search: N points drawn uniformly within the alpha and beta ranges, instead of the grid")
    p.add_argument("--seed", type=int, default=0, help="seed of the random search")
    p.add_argument("--beam-width", type=_whole(1, MAX_BEAM), default=16, metavar="N")
    p.add_argument("--top", type=_whole(1), metavar="N", help="print only the N best points")
    p.add_argument("--jobs", type=_whole(0, MAX_JOBS), default=0, metavar="N",
                   help="worker processes decoding points in parallel (default 0: one per core)")
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_tune_lm)

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
        q.set_defaults(func=cmd_download)

    p = sub.add_parser("validate", help="check manifests before training (missing audio, empty text, duplicate ids, ...)")
    p.add_argument("manifests", nargs="+", metavar="MANIFEST")
    p.add_argument("--jobs", type=_whole(1, MAX_JOBS), help="threads reading audio headers")
    p.add_argument("--max-problems", type=_whole(0), default=50, metavar="N",
                   help="print at most N problems (default 50; 0: all); all are counted")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("average", help="average the weights of several checkpoints into one")
    p.add_argument("checkpoints", nargs="*", metavar="CKPT", help="checkpoint files to average (or use --exp-dir)")
    p.add_argument("--exp-dir", help="experiment folder holding epoch-N.pt files (train.keep_epochs)")
    p.add_argument("--last", type=_whole(1), default=5, metavar="N", help="with --exp-dir: average the last N epochs (default 5)")
    p.add_argument("--out", required=True, help="checkpoint to write")
    p.set_defaults(func=cmd_average)
    return parser


def _os_error_line(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or ' '.join(str(err).split())}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from asr.errors import UserError

    # File names that are not UTF-8 print as their bytes, as ls prints them, not as a traceback.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        return args.func(args)
    except UserError as err:
        return _fail(" ".join(str(err).split()))
    except OSError as err:  # the system refused: disk full, read-only folder, no permission, ...
        return _fail(_os_error_line(err))
    except KeyboardInterrupt:
        return _fail("interrupted", 130)
