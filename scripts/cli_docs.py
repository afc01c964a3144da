"""Write docs/cli.md, the reference of every `asr` command and option, from the argparse
parsers themselves, so that it cannot drift from the code.

    python scripts/cli_docs.py           # rewrite docs/cli.md
    python scripts/cli_docs.py --check   # exit 1 if docs/cli.md is stale (tests/test_docs.py runs this)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from asr.cli import build_parser  # noqa: E402
from asr.io import write_text_atomic  # noqa: E402

OUT = REPO / "docs" / "cli.md"
HEADER = """# Command reference

Every `asr` command and option, generated from the parsers by `python scripts/cli_docs.py`
(a test fails when this file is stale). `asr COMMAND --help` prints the same. The
[README](../README.md) shows the commands in use.
"""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser, str]]:
    """(name, parser, one-line help) of each subcommand, in the order they were added."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            return [(name, sub, helps.get(name, "")) for name, sub in action.choices.items()]
    return []


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _option_rows(parser: argparse.ArgumentParser) -> list[str]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)) or action.help == argparse.SUPPRESS:
            continue
        if action.option_strings:
            names = ", ".join(f"`{s}`" for s in action.option_strings)
            takes = action.nargs != 0
            metavar = action.metavar or (action.dest.upper() if takes else "")
            if isinstance(metavar, tuple):
                metavar = " ".join(metavar)
            if action.choices and not action.metavar:
                metavar = "{" + ",".join(map(str, action.choices)) + "}"
            name = f"{names} {_cell(metavar)}" if takes else names
        else:
            name = f"`{action.metavar or action.dest}`" + (" ..." if action.nargs in ("*", "+") else "")
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) or action.nargs == 0 else f"`{default}`"
        if isinstance(default, (list, tuple)):
            shown = f"`{' '.join(map(str, default))}`" if default else ""
        required = " (required)" if getattr(action, "required", False) and action.option_strings else ""
        rows.append(f"| {name} | {shown} | {_cell(action.help or '')}{required} |")
    return rows


def _command(prefix: str, parser: argparse.ArgumentParser, summary: str, level: int) -> list[str]:
    lines = [f"{'#' * level} `{prefix}`", ""]
    if summary:
        lines += [_cell(summary)[:1].upper() + _cell(summary)[1:] + ".", ""]
    usage = " ".join(parser.format_usage().split())
    lines += ["```", usage.removeprefix("usage: "), "```", ""]
    rows = _option_rows(parser)
    if rows:
        lines += ["| option | default | what it does |", "|---|---|---|", *rows, ""]
    for name, sub, help_text in _subcommands(parser):
        lines += _command(f"{prefix} {name}", sub, help_text, level + 1)
    return lines


def render() -> str:
    parser = build_parser()
    parser.prog = "asr"
    lines = [HEADER]
    commands = _subcommands(parser)
    lines += ["Commands: " + ", ".join(f"[`{name}`](#asr-{name})" for name, _, _ in commands) + ".", ""]
    for name, sub, help_text in commands:
        lines += _command(f"asr {name}", sub, help_text, 2)
    return "\n".join(lines).rstrip() + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if docs/cli.md is not what the parsers give")
    args = parser.parse_args()
    text = render()
    if args.check:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is stale: run python scripts/cli_docs.py", file=sys.stderr)
            return 1
        return 0
    write_text_atomic(OUT, text)
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
