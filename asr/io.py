"""File-system helpers: files that appear whole or not at all (every file asr writes for a
user goes through :func:`atomic_path`), checksums, and folder walks that report what they
cannot read instead of skipping it."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from asr.errors import UserError

NAME_MAX = 255  # bytes in one file name on Linux, macOS and Windows file systems
CHUNK_BYTES = 1 << 20  # read size for checksums: multi-GB archives need little memory
MIN_FREE_BYTES = 1 << 20  # a file system with less room than this after a failed write is full
# What a failed write says when the disk, the quota, the file-size limit or the folder refuses it.
_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM}


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


class WriteError(UserError, OSError):
    """A file could not be written (a full disk, a read-only folder); the message names it."""


@contextlib.contextmanager
def atomic_path(path: str | Path, prefix: str = ".", what: str = "file") -> Iterator[Path]:
    """The :func:`partial_path` of ``path``, for a tool that writes the file itself (an
    audio writer, a subprocess): fsynced and renamed over ``path`` when the block ends,
    deleted if it fails, so ``path`` is either the old file or the whole new one, even after
    a crash or a power cut.

    A failure to write (a full disk, a read-only folder, a file-size limit) raises
    :class:`WriteError`, one line naming ``path`` and calling it ``what``. Other errors
    (a file the block reads, a tool's own failure) pass through as they are.
    """
    path = Path(path)
    tmp = partial_path(path, prefix)
    try:
        yield tmp
        _fsync(tmp)
        os.replace(tmp, path)
        _fsync(path.parent)  # the rename itself survives a power cut
    except (OSError, RuntimeError) as err:
        reason = _write_failure(err, path, tmp)
        if reason is None:
            raise
        kept = f"; the previous {what} there is intact" if path.exists() else ""
        raise WriteError(f"{path}: cannot write {what} ({reason}){kept}") from None
    finally:
        tmp.unlink(missing_ok=True)  # gone already after the rename


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_failure(err: OSError | RuntimeError, path: Path, tmp: Path) -> str | None:
    """Why writing ``path`` failed, in the file system's words, or ``None`` when ``err`` is
    not a failure to write it.

    Writers inside the block word a full disk in their own ways (torch's zip writer raises
    RuntimeError("file write failed"), a subprocess exits non-zero), so a full file system
    is recognised by its free space, not by the wording.
    """
    if isinstance(err, WriteError):
        return None
    if isinstance(err, OSError) and err.filename not in (None, str(tmp), str(path), str(path.parent)):
        return None  # a file the block read, not the one it wrote
    if isinstance(err, OSError) and err.errno in _WRITE_ERRNOS:
        return err.strerror
    try:
        stats = os.statvfs(path.parent)
    except OSError:
        stats = None
    if stats is not None and stats.f_bavail * stats.f_frsize < MIN_FREE_BYTES:
        return os.strerror(errno.ENOSPC)
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    return None


@contextlib.contextmanager
def atomic_write(path: str | Path, mode: str = "w", prefix: str = ".", what: str = "file") -> Iterator[IO]:
    """Open ``path`` for writing, UTF-8 text (``mode="w"``) or bytes (``"wb"``), so that it
    appears whole or not at all (see :func:`atomic_path`)."""
    if mode not in ("w", "wb"):
        raise ValueError(f"mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path, prefix, what) as tmp, open(tmp, mode, encoding="utf-8" if mode == "w" else None) as f:
        yield f


def write_text_atomic(path: str | Path, text: str, what: str = "file") -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (see :func:`atomic_path`)."""
    with atomic_write(path, "w", what=what) as f:
        f.write(text)


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
