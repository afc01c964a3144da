"""Commands that run a model on audio: evaluate (a manifest, scored) and transcribe (files)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr.cli.args import EXIT_PARTIAL_FAILURE, EXIT_USER_ERROR, add_decoder_args, add_model_args, check_writable, decoder, fail, finite


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
    from asr.sharding import ShardError, join_world

    with join_world() as world:
        try:
            return _evaluate(args, world)
        except ShardError as err:
            return _job_failed(world, err)


def _job_failed(world, err: Exception) -> int:
    """A torchrun job stopped by a failure on some rank: rank 0 says so in one line, and the
    others wait for it to (torchrun stops the rest of a job once one of its processes exits)."""
    code = fail(str(err)) if world.main else EXIT_USER_ERROR
    try:
        world.barrier()
    except RuntimeError:  # a rank is gone: there is no one left to wait for
        pass
    return code


def _evaluate(args: argparse.Namespace, world) -> int:
    """``asr evaluate`` in one process, or as rank ``world.rank`` of a torchrun job: each rank
    decodes its share of the batches, and rank 0 scores them all and writes the results."""
    from asr.data import ManifestError, read_manifest
    from asr.evaluate import decode_utterances, merge_decoded, shard_batches
    from asr.inference import load_recognizer
    from asr.sharding import gather_work

    job = {}

    def decode_share():
        recognizer = load_recognizer(args.model, args.device, args.compute_type)
        job["utterances"] = utterances = read_manifest(args.manifest)
        if not utterances:
            raise ManifestError(f"{args.manifest}: manifest has no utterances")
        search, job["decoding"] = decoder(args, recognizer.vocab, quiet=not world.main)
        # The default folder names the decoding, so a beam run does not overwrite a greedy one.
        method = "greedy" if job["decoding"].decoder == "greedy" else ("beam-lm" if args.lm else "beam")
        default_dir = Path(args.model).parent / f"decode-{Path(args.manifest).stem}-{method}"
        job["out_dir"] = Path(args.out_dir) if args.out_dir else default_dir
        if world.main:
            check_writable(job["out_dir"])  # before decoding, not after it
        share = shard_batches(utterances, world.rank, world.size) if world.size > 1 else None
        return decode_utterances(recognizer, utterances, search, progress=not args.json and world.main, batches=share)

    parts = gather_work(world, decode_share)
    if parts is None:
        return 0  # rank 0 reports the job's results
    decoded = parts[0] if world.size == 1 else merge_decoded(parts, job["utterances"])
    return _report_evaluation(args, decoded, job["utterances"], job["decoding"], job["out_dir"])


def _report_evaluation(args: argparse.Namespace, decoded, utterances, decoding, out_dir: Path) -> int:
    from asr.evaluate import format_summary, score, write_reports

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
    p.add_argument("audio", nargs="*", metavar="AUDIO", help="audio files, folders (searched recursively) or glob patterns")
    p.add_argument("--manifest", action="append", default=[], metavar="MANIFEST",
                   help="also transcribe the rows of this manifest (each named by its id; a row with an offset is "
                        "its span of the file); may be repeated")
    p.add_argument("--format", default="txt", choices=("txt", "json", "srt", "vtt", "all"),
                   help="output format (default txt); srt, vtt and all need --output-dir")
    p.add_argument("--output-dir", metavar="DIR",
                   help="write DIR/NAME.FORMAT per file (NAME: its path under a folder argument, else its file "
                        "name, without extension); without it, print path<TAB>text lines (txt) or JSON lines (json)")
    p.add_argument("--manifest-out", metavar="FILE",
                   help="also write a manifest of the transcripts: one row per input transcribed (id, audio_filepath, "
                        "duration, offset, and the transcript as text)")
    p.add_argument("--window", type=finite, default=20.0, metavar="SECONDS",
                   help="longer files are cut into pieces of at most this length, at pauses where there are some "
                        "(default 20)")
    p.add_argument("--overlap", type=finite, default=4.0, metavar="SECONDS",
                   help="overlap of two pieces cut where there is no pause (default 4)")
    p.set_defaults(func=run_transcribe)


def run_transcribe(args: argparse.Namespace) -> int:
    from asr.sharding import ShardError, join_world
    from asr.transcribe import TranscribeOptions

    if not args.audio and not args.manifest:
        return fail("transcribe: give audio files, folders or globs, or --manifest M")
    if args.output_dir is None and args.format not in ("txt", "json"):
        return fail(f"--format {args.format} writes files: give --output-dir DIR")
    if args.output_dir is not None and Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        return fail(f"{args.output_dir}: --output-dir is a file, not a folder")
    try:
        options = TranscribeOptions(window_seconds=args.window, overlap_seconds=args.overlap)
    except ValueError as err:
        return fail(f"transcribe: {err}")
    with join_world() as world:
        try:
            return _transcribe(args, world, options)
        except ShardError as err:
            return _job_failed(world, err)


def _transcribe(args: argparse.Namespace, world, options) -> int:
    """``asr transcribe`` in one process, which reports each file as it is done, or as rank
    ``world.rank`` of a torchrun job: each rank transcribes a share of the inputs and writes
    their files, and rank 0 reports them all, in input order, once every rank is done."""
    from asr.data import read_manifest
    from asr.formats import FORMATS, write_outputs
    from asr.inference import load_recognizer
    from asr.sharding import gather_work
    from asr.transcribe import find_inputs, share_inputs, transcribe_files, transcript_rows

    formats = FORMATS if args.format == "all" else (args.format,)
    job = {}

    def transcribe_share() -> list[tuple[int, str | None, str | None, object]]:
        recognizer = load_recognizer(args.model, args.device, args.compute_type)
        search, _ = decoder(args, recognizer.vocab, quiet=not world.main)
        rows = [row for manifest in args.manifest for row in read_manifest(manifest)]
        inputs, missing = find_inputs(args.audio, [row for row in rows if row.speed == 1.0])
        if world.main:
            for line in missing:
                print(f"asr: error: {line}", file=sys.stderr)
            if perturbed := sum(row.speed != 1.0 for row in rows):
                print(f"asr: {perturbed} speed-perturbed manifest rows left out (transcribe reads the audio as it is)",
                      file=sys.stderr)
        job["missing"] = len(missing)
        share = share_inputs(inputs, world.rank, world.size) if world.size > 1 else range(len(inputs))
        done = []  # (input index, error, stdout line, manifest row): a line or a row per input, not its words
        for index, item in zip(share, transcribe_files(recognizer, [inputs[i] for i in share], search, options)):
            if item.error is None and args.output_dir is not None:  # each file is written by the rank that made it
                write_outputs(item, Path(args.output_dir) / inputs[index].name, formats)
            line = None if item.error else _stdout_line(args, inputs[index], item)
            if world.size == 1:  # one process reports each file as it comes
                _report(item.error, line)
                line = None
            row = next(transcript_rows([(inputs[index], item)]), None) if args.manifest_out else None
            done.append((index, item.error, line, row))
        return done

    shares = gather_work(world, transcribe_share)
    if shares is None:
        return 0  # rank 0 reports the job's results
    done = sorted(outcome for share in shares for outcome in share)
    if world.size > 1:  # in input order, once every rank is done
        for _, error, line, _ in done:
            _report(error, line)
    return _transcribe_summary(args, done, job["missing"])


def _stdout_line(args: argparse.Namespace, source, item) -> str | None:
    """What stdout gets for a transcribed input: nothing with --output-dir, else its JSON or
    ``path<TAB>text`` (a manifest row's span: its id)."""
    from asr.formats import to_json

    if args.output_dir is not None:
        return None
    if args.format == "json":
        row = to_json(item) if source.offset is None else {"id": source.name, "offset": source.offset, **to_json(item)}
        return json.dumps(row, ensure_ascii=False)
    return f"{item.path if source.offset is None else source.name}\t{item.text}"


def _report(error: str | None, line: str | None) -> None:
    if error:
        print(f"asr: error: {error}", file=sys.stderr)
    elif line is not None:
        print(line, flush=True)


def _transcribe_summary(args: argparse.Namespace, done: list, missing: int) -> int:
    from asr.data import write_manifest

    succeeded = sum(error is None for _, error, _, _ in done)
    failed = missing + len(done) - succeeded
    if args.manifest_out:
        write_manifest((row for _, _, _, row in done if row is not None), args.manifest_out)
    where = f"; outputs in {args.output_dir}" if args.output_dir is not None and succeeded else ""
    listed = f"; listed in {args.manifest_out}" if args.manifest_out else ""
    print(f"transcribed {succeeded} file{'s' * (succeeded != 1)}, {failed} failed{where}{listed}", file=sys.stderr)
    return EXIT_PARTIAL_FAILURE if failed else 0
