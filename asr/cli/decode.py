"""Commands that run a model on audio: evaluate (a manifest, scored) and transcribe (files)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.cli.args import EXIT_PARTIAL_FAILURE, add_decoder_args, add_model_args, check_writable, decoder, fail, finite


def add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="decode a manifest and print WER/CER")
    add_model_args(p, onnx=True, compute_type=True)
    add_decoder_args(p)
    p.add_argument("--manifest", required=True)
    p.add_argument("--out-dir", help="where to write per-utterance and trn files")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_evaluate)


def _settings(decoding) -> dict:
    """The decoding settings that were used: greedy search has none; alpha and beta weight an LM."""
    if decoding.decoder == "greedy":
        return {"decoder": "greedy"}
    settings = {"decoder": decoding.decoder, "beam_width": decoding.beam_width, "lm": decoding.lm}
    return settings if decoding.lm is None else {**settings, "alpha": decoding.alpha, "beta": decoding.beta}


def run_evaluate(args: argparse.Namespace) -> int:
    from asr.data import read_manifest
    from asr.evaluate import decode_utterances, format_summary, score, write_reports
    from asr.inference import load_recognizer

    recognizer = load_recognizer(args.model, args.device, args.compute_type)
    utterances = read_manifest(args.manifest)
    if not utterances:
        return fail(f"{args.manifest}: manifest has no utterances")
    search, decoding = decoder(args, recognizer.vocab)
    # The default folder names the decoding, so a beam run does not overwrite a greedy one.
    method = "greedy" if decoding.decoder == "greedy" else ("beam-lm" if args.lm else "beam")
    default_dir = Path(args.model).parent / f"decode-{Path(args.manifest).stem}-{method}"
    out_dir = Path(args.out_dir) if args.out_dir else default_dir
    check_writable(out_dir)  # before decoding, not after it
    decoded = decode_utterances(recognizer, utterances, search, progress=not args.json)
    # An utterance whose audio cannot be read is reported, listed in skipped.txt and left out of the score.
    skipped = decoded.skipped(utterances)
    for error in skipped.values():
        print(f"asr: error: {error}", file=sys.stderr)
    utterances = decoded.decoded(utterances)
    if not utterances:
        return fail(f"{args.manifest}: no utterance's audio could be read ({len(skipped)} failed)", EXIT_PARTIAL_FAILURE)
    result = score(utterances, decoded.texts, skipped, audio_seconds=decoded.audio_seconds,
                   decode_seconds=decoded.seconds)
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


def add_transcribe(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files, folders or globs of any length (txt, json, srt, vtt)")
    add_model_args(p, onnx=True, compute_type=True)
    add_decoder_args(p)
    p.add_argument("audio", nargs="+", metavar="AUDIO", help="audio files, folders (searched recursively) or glob patterns")
    p.add_argument("--format", default="txt", choices=("txt", "json", "srt", "vtt", "all"),
                   help="output format (default txt); srt, vtt and all need --output-dir")
    p.add_argument("--output-dir", metavar="DIR",
                   help="write DIR/NAME.FORMAT per file (NAME: its path under a folder argument, else its file "
                        "name, without extension); without it, print path<TAB>text lines (txt) or JSON lines (json)")
    p.add_argument("--window", type=finite, default=20.0, metavar="SECONDS",
                   help="longer files are cut into pieces of at most this length, at pauses where there are some "
                        "(default 20)")
    p.add_argument("--overlap", type=finite, default=4.0, metavar="SECONDS",
                   help="overlap of two pieces cut where there is no pause (default 4)")
    p.set_defaults(func=run_transcribe)


def run_transcribe(args: argparse.Namespace) -> int:
    from asr.formats import FORMATS, to_json, write_outputs
    from asr.inference import load_recognizer
    from asr.transcribe import TranscribeOptions, find_inputs, transcribe_files

    formats = FORMATS if args.format == "all" else (args.format,)
    if args.output_dir is None and args.format not in ("txt", "json"):
        return fail(f"--format {args.format} writes files: give --output-dir DIR")
    if args.output_dir is not None and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        return fail(f"{args.output_dir}: --output-dir is a file, not a folder")
    try:
        options = TranscribeOptions(window_seconds=args.window, overlap_seconds=args.overlap)
    except ValueError as err:
        return fail(f"transcribe: {err}")
    recognizer = load_recognizer(args.model, args.device, args.compute_type)
    search, _ = decoder(args, recognizer.vocab)
    inputs, missing = find_inputs(args.audio)
    for line in missing:
        print(f"asr: error: {line}", file=sys.stderr)
    done, failed = 0, len(missing)
    for source, item in zip(inputs, transcribe_files(recognizer, [i.path for i in inputs], search, options)):
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
