"""File-system helpers: files that appear whole or not at all, checksums, and folder walks
that report what they cannot read instead of skipping it."""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
CHUNK_BYTES = 1 << 20  # read size for checksums: multi-GB archives need little memory


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
def atomic_path(path: str | Path, prefix: str = ".") -> Iterator[Path]:
    """The :func:`partial_path` of ``path``, for a tool that writes the file itself (an
    audio writer, a subprocess): renamed over ``path`` when the block ends, deleted if it
    fails, so ``path`` is either the old file or the whole new one."""
    path = Path(path)
    tmp = partial_path(path, prefix)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone already after the rename


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", prefix: str = ".") -> Iterator[IO]:
    """Open ``path`` for writing, UTF-8 text (``mode="w"``) or bytes (``"wb"``), so that it
    appears whole or not at all (see :func:`atomic_path`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, prefix) as tmp, open(tmp, mode, encoding="utf-8" if mode == "w" else None) as f:
        yield f


def md5(path: str | Path) -> str:
    """Hex MD5 of a file, read in chunks so multi-GB archives need little memory."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


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
