"""File-system helpers: partial names for files that appear whole or not at all, and
folder walks that report what they cannot read instead of skipping it."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems


def partial_path(path: str | Path, prefix: str = ".") -> Path:
    """A hidden sibling of ``path`` to write before renaming it over ``path``:
    ``.NAME.tmpPID``. Where that would pass the 255-byte limit on a file
    name (``path``'s own name may be up to the limit), the middle of NAME gives way to a
    short hash, so the name stays unique and keeps its extension."""
    path = Path(path)
    name, tag = path.name, f".tmp{os.getpid()}"
    room = NAME_MAX - len(prefix.encode()) - len(tag.encode())
    if len(os.fsencode(name)) > room:
        digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:12]
        keep = (room - len(digest) - 2) // 2
        raw = os.fsencode(name)
        name = os.fsdecode(raw[:keep]) + f"~{digest}~" + os.fsdecode(raw[-keep:])
    return path.with_name(f"{prefix}{name}{tag}")


@contextlib.contextmanager
def atomic_write(path: str | Path) -> Iterator[TextIO]:
    """Open ``path`` for writing UTF-8 text that appears whole or not at all: the text goes to
    :func:`partial_path`, renamed over ``path`` when the block ends, deleted if it fails."""
    path = Path(path)
    tmp = partial_path(path)
    try:
        with tmp.open("w", encoding="utf-8") as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def walk_files(folder: str | Path, wanted: Callable[[str], bool]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files under ``folder`` whose name ``wanted`` accepts, sorted, and the folders that could
    not be read with the reason (``Permission denied``), so that a caller can say so: a
    folder skipped in silence loses everything in it without a word.

    Symbolic links to folders are not followed (a link loop would never end); links to
    files are listed.
    """
    found: list[Path] = []
    unreadable: list[tuple[Path, str]] = []

    def refused(err: OSError) -> None:
        unreadable.append((Path(err.filename), err.strerror or str(err)))

    for directory, _, names in os.walk(folder, onerror=refused):
        found += [Path(directory, name) for name in names if wanted(name)]
    return sorted(found), sorted(unreadable)
