"""The ``asr`` command line: a thin layer over the library.

Each command has a parser builder (``add_NAME``) and a function that runs it (``run_NAME``)
in the module of its kind: :mod:`asr.cli.corpus`, :mod:`asr.cli.model`, :mod:`asr.cli.decode`,
:mod:`asr.cli.lm`, :mod:`asr.cli.serve`, :mod:`asr.cli.units`. Each imports the library modules it uses when it runs, so a command pays
only for its own imports.

Every error a user can cause (a bad path, a bad file, an unknown option) ends in one
``asr: error: ...`` line on stderr and a non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from asr import __version__
from asr.cli import corpus, decode, lm, model, serve, units
from asr.cli.args import EXIT_PARTIAL_FAILURE, EXIT_USER_ERROR, fail
from asr.errors import UserError

__all__ = ["EXIT_PARTIAL_FAILURE", "EXIT_USER_ERROR", "build_parser", "main"]

# In the order ``asr --help`` lists them.
PARSER_BUILDERS = (
    corpus.add_synth, corpus.add_prepare, model.add_train, decode.add_evaluate, decode.add_transcribe,
    serve.add_serve, serve.add_listen, model.add_export, lm.add_lm, lm.add_tune_lm, corpus.add_download,
    corpus.add_validate, model.add_average, units.add_units,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description="Small BiLSTM-CTC speech recognition toolkit "
                                     "(GRU and vanilla RNN cells, uni- or bidirectional, and Transformer and "
                                     "Conformer encoders as options).")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in PARSER_BUILDERS:
        add(sub)
    return parser


def _os_error_line(err: OSError) -> str:
    where = f"{err.filename}: " if err.filename else ""
    return f"{where}{err.strerror or ' '.join(str(err).split())}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # File names that are not UTF-8 print as their bytes, as ls prints them, not as a traceback.
    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(errors="surrogateescape")
    try:
        return args.func(args)
    except UserError as err:
        return fail(" ".join(str(err).split()))
    except OSError as err:  # the system refused: disk full, read-only folder, no permission, ...
        return fail(_os_error_line(err))
    except KeyboardInterrupt:
        return fail("interrupted", 130)
