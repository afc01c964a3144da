"""What several commands share: argument types, decoding options, output-folder checks."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

EXIT_USER_ERROR = 2  # the command could not run as asked
EXIT_PARTIAL_FAILURE = 1  # it ran, but some items (files, utterances) failed and were reported
MAX_JOBS = 256  # processes or threads: more would exhaust the machine, not speed it up
MAX_BEAM = 1024  # beams: far past where WER stops improving (16-128), and memory grows with it


def fail(message: str, code: int = EXIT_USER_ERROR) -> int:
    """Print one ``asr: error:`` line and return the exit code."""
    print(f"asr: error: {message}", file=sys.stderr)
    return code


def whole(minimum: int, maximum: int | None = None):
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


def finite(text: str) -> float:
    """An argparse type: a finite number (nan and inf are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text}: must be a finite number")
    return value


def check_writable(folder: Path) -> None:
    """Raise the OSError a write into ``folder`` would meet (read-only, no permission, full),
    before a long computation whose result goes there."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def add_model_args(parser: argparse.ArgumentParser, onnx: bool, compute_type: bool = False) -> None:
    """--model and --device: a checkpoint (or, with ``onnx``, an exported model) to run; with
    ``compute_type``, --compute-type too."""
    parser.add_argument("--model", required=True,
                        help="checkpoint (.pt)" + (" or model from asr export (.onnx, runs on the CPU)" if onnx else ""))
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    if compute_type:
        parser.add_argument("--compute-type", choices=("auto", "float32", "int8"), default="auto",
                            help="int8: a checkpoint's linear and LSTM/GRU layers in dynamic int8, on the CPU; "
                                 "auto (the default): float32 for a checkpoint, and an ONNX model as it was "
                                 "exported (asr export --compute-type int8), which the other choices must match")


def add_decoder_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("decoding")
    group.add_argument("--decoder", choices=("greedy", "beam"),
                       help="default: beam when --lm or --beam-width is given or the model emits phones (a search "
                            "of its lexicon), else greedy; greedy decoding of a phone model prints phones")
    group.add_argument("--beam-width", type=whole(1, MAX_BEAM), metavar="N",
                       help="beam search width (default: the tuned one for this LM, else 16)")
    group.add_argument("--lm", metavar="LM", help="word n-gram LM (ARPA or KenLM binary) fused into beam search")
    group.add_argument("--alpha", type=finite,
                       help="LM weight (default: the value asr tune-lm stored for this model and LM, else 0.5)")
    group.add_argument("--beta", type=finite, help="bonus per word (default: tuned as --alpha, else 1.0)")


def decoder(args: argparse.Namespace, vocab, quiet: bool = False):
    """The decoder the options ask for, and its :class:`~asr.decode.DecodingConfig`; alpha,
    beta and beam width not given come from ``asr tune-lm``'s file next to the checkpoint
    when it holds values for this LM. ``quiet``: no note about them (a torchrun job's ranks
    other than 0)."""
    from asr.decode import build_decoder
    from asr.lm.weights_file import decoding_config

    config, note = decoding_config(args.model, args.decoder, args.beam_width, args.lm, args.alpha, args.beta,
                                   spells_words=vocab.spells_words)
    built = build_decoder(vocab, config)
    if note and not quiet:
        print(f"asr: {note}", file=sys.stderr)
    return built, config
