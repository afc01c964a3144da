"""Downloads that survive a cut connection and archives that cannot write outside their folder.

A download resumes after a cut, a timeout or a connection error, is checked against a
published MD5 sum and is skipped when the file is already there; an archive is unpacked
only after every member has been checked to land inside the destination. Errors a user can
cause are a :class:`DownloadError` whose message is one line. What to download is
:mod:`asr.corpora.librispeech`'s business.
"""

from __future__ import annotations

import copy
import gzip
import http.client
import logging
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
import zlib
from http import HTTPStatus
from pathlib import Path, PurePosixPath, PureWindowsPath

from asr import __version__
from asr.errors import UserError
from asr.io import atomic_write
from asr.io import md5 as file_md5  # download_file's own `md5` is the expected sum
from asr.progress import progress as progress_bar

logger = logging.getLogger(__name__)

DEFAULT_RETRIES = 5
DEFAULT_TIMEOUT_S = 60.0  # per socket operation, not for the whole file
RETRY_BACKOFF_S = 2.0  # first wait; doubles after each attempt that made no progress
MAX_BACKOFF_S = 60.0
CHUNK_BYTES = 1 << 20
PART_SUFFIX = ".part"
USER_AGENT = f"asr/{__version__} (+urllib)"

_MD5_LINE = re.compile(r"^([0-9a-fA-F]{32}) [ *](.+)$")
_CONTENT_RANGE = re.compile(r"^bytes (\d+)-\d+/(\d+|\*)$")
_UNSATISFIED_RANGE = re.compile(r"^bytes \*/(\d+)$")
# Statuses worth another try: the server is busy or failing, not refusing this file.
_RETRYABLE_STATUS = {HTTPStatus.REQUEST_TIMEOUT, HTTPStatus.TOO_MANY_REQUESTS}
# tarfile's "data" filter arrived in 3.10.12 / 3.11.4; older patch releases rely on
# _unsafe_reason alone.
_DATA_FILTER = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
_FILTER_ERROR = getattr(tarfile, "FilterError", ())


class DownloadError(UserError, RuntimeError):
    """A download or extraction failed; the message is one line saying what to do."""


class UnsafeArchiveError(DownloadError):
    """An archive member would land outside the destination, or is a link or device."""


def read_md5sum_file(path: Path) -> dict[str, str]:
    """Read an ``md5sum``-format file (``MD5  FILENAME`` per line) into ``{filename: md5}``.

    Only the base name of each file is kept, so sums written as ``./x.tar.gz`` or
    ``dir/x.tar.gz`` still match ``x.tar.gz``. Blank lines and ``#`` comments are skipped.
    """
    sums: dict[str, str] = {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise DownloadError(f"{path}: not a text file in UTF-8 (byte 0x{err.object[err.start]:02x} at offset "
                            f"{err.start}); expected 'MD5  FILENAME' lines as md5sum writes them") from None
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _MD5_LINE.match(line)
        if match is None:
            raise DownloadError(
                f"{path}:{number}: expected 'MD5  FILENAME' (32 hex digits, two spaces), "
                f"got {line!r}"
            )
        sums[PurePosixPath(match.group(2)).name] = match.group(1).lower()
    return sums


def download_file(
    url: str,
    dest: Path,
    md5: str | None,
    *,
    retries: int = DEFAULT_RETRIES,
    progress: bool = True,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Download ``url`` to ``dest`` and check its MD5; return ``dest``.

    Bytes go to ``dest`` + ``.part`` first, which is resumed with a ``Range`` request
    after a cut, a timeout or a connection error, and renamed to ``dest`` once complete.
    A ``dest`` that already exists with the right MD5 is not downloaded again. A file
    whose MD5 is wrong is deleted and downloaded once more from scratch; a second wrong
    MD5 raises :class:`DownloadError`. With ``md5=None`` only the length announced by the
    server is checked, and a warning says so.
    """
    dest = Path(dest)
    expected = md5.lower() if md5 is not None else None
    if dest.exists():
        if expected is None:
            logger.info("%s already exists and has no known MD5; keeping it", dest)
            return dest
        if file_md5(dest) == expected:
            logger.info("%s already downloaded and verified", dest)
            return dest
        logger.warning("%s exists but its MD5 is wrong; downloading it again", dest)
        dest.unlink()
    if expected is None:
        logger.warning("no MD5 known for %s: only its length will be checked", dest.name)
    dest.parent.mkdir(parents=True, exist_ok=True)

    _fetch(url, dest, retries=retries, progress=progress, timeout=timeout)
    if expected is None:
        return dest
    actual = file_md5(dest)
    if actual == expected:
        return dest
    logger.warning("%s: MD5 %s, expected %s; downloading it once more", dest.name, actual, expected)
    dest.unlink()
    _fetch(url, dest, retries=retries, progress=progress, timeout=timeout)
    actual = file_md5(dest)
    if actual == expected:
        return dest
    dest.unlink()
    raise DownloadError(
        f"{dest.name}: MD5 is {actual} but {expected} was expected, twice, from {url}; "
        "the mirror serves a different file: try another mirror, "
        "or pass that mirror's own checksums"
    )


def _fetch(url: str, dest: Path, *, retries: int, progress: bool, timeout: float) -> None:
    """Stream ``url`` into ``dest``'s ``.part`` file until complete, then rename it."""
    part = dest.with_suffix(dest.suffix + PART_SUFFIX)
    failures = 0
    bar = progress_bar(desc=dest.name, unit="B", unit_bytes=True, disable=not progress)
    with bar:
        while True:
            before = _size(part)
            try:
                if _fetch_once(url, part, timeout=timeout, bar=bar):
                    break
                reason = "the connection closed before the whole file arrived"
            except (OSError, http.client.HTTPException) as err:
                reason = " ".join(str(err).split()) or type(err).__name__
            if _size(part) > before:
                # The server is alive and sending: resume at once, and keep the retry
                # budget for attempts that get nothing.
                failures = 0
                logger.info("%s: %s; resuming at byte %d", dest.name, reason, _size(part))
                continue
            failures += 1
            if failures > retries:
                raise DownloadError(
                    f"{url}: download failed {failures} times in a row ({reason}); "
                    "check the network or try another mirror, then rerun to resume"
                )
            delay = min(RETRY_BACKOFF_S * 2 ** (failures - 1), MAX_BACKOFF_S)
            logger.warning(
                "%s: %s; retry %d/%d in %.0f s", dest.name, reason, failures, retries, delay
            )
            time.sleep(delay)
    part.replace(dest)


def _fetch_once(url: str, part: Path, *, timeout: float, bar) -> bool:
    """One HTTP request appending to ``part``; True when ``part`` now holds the whole file.

    Raises ``OSError``/``HTTPException`` for transient failures and :class:`DownloadError`
    for ones that another try cannot fix (404, a malformed URL).
    """
    offset = _size(part)
    headers = {"User-Agent": USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        request = urllib.request.Request(url, headers=headers)
    except ValueError as err:
        raise DownloadError(
            f"{url!r} is not a valid URL ({err}); give a full http(s):// URL"
        ) from None
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()  # the error body is not needed; its headers stay readable
        if err.code == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE and offset:
            unsatisfied = _UNSATISFIED_RANGE.match(err.headers.get("Content-Range", ""))
            if unsatisfied and int(unsatisfied.group(1)) == offset:
                return True  # an earlier run received everything but stopped before the rename
            part.unlink()  # the partial file is longer than the file served: start over
            return False
        if err.code in _RETRYABLE_STATUS or err.code >= HTTPStatus.INTERNAL_SERVER_ERROR:
            raise
        raise DownloadError(
            f"{url}: HTTP {err.code} {err.reason}; check the file name and the mirror URL"
        ) from None

    with response:
        if response.status == HTTPStatus.PARTIAL_CONTENT:
            match = _CONTENT_RANGE.match(response.headers.get("Content-Range", ""))
            if match is None or int(match.group(1)) != offset:
                part.unlink(missing_ok=True)  # a range we did not ask for cannot be appended
                return False
            total = None if match.group(2) == "*" else int(match.group(2))
            mode = "ab"
        else:
            # A plain 200 carries the whole file, also when the server ignored our Range.
            length = response.headers.get("Content-Length")
            total = int(length) if length is not None else None
            offset = 0
            mode = "wb"
        bar.reset(total=total)
        bar.update(offset)
        # A failed read is the network's (retried); a failed write is this machine's (a full
        # disk, a read-only folder), which no retry mends.
        try:
            f = open(part, mode)
        except OSError as err:
            raise _local_write_error(part, err) from None
        with f:
            # http.client returns b"" when the peer closes early instead of raising, so the
            # length check below is what detects a cut transfer.
            while chunk := response.read(CHUNK_BYTES):
                try:
                    f.write(chunk)
                    f.flush()
                except OSError as err:
                    raise _local_write_error(part, err) from None
                bar.update(len(chunk))
    size = _size(part)
    if total is not None and size > total:
        part.unlink()
        return False
    return total is None or size == total


def _local_write_error(part: Path, err: OSError) -> DownloadError:
    return DownloadError(f"{part}: cannot write the download ({err.strerror or err}); make room or choose another "
                         "--dest, then rerun: it resumes from what arrived")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def extraction_marker(archive: Path, dest: Path) -> Path:
    """The file whose presence means ``archive`` was fully extracted into ``dest``."""
    return Path(dest) / f".extracted-{Path(archive).name}"


def safe_extract(archive: Path, dest: Path) -> None:
    """Extract the ``.tar.gz`` ``archive`` into ``dest``, refusing anything unsafe.

    Every member is checked before anything is written: absolute paths, ``..``, links
    and devices raise :class:`UnsafeArchiveError` naming the member. Extraction then runs
    with tarfile's ``data`` filter as a second guard. A marker file
    (:func:`extraction_marker`) makes a second call a no-op.
    """
    archive, dest = Path(archive), Path(dest)
    marker = extraction_marker(archive, dest)
    if marker.exists():
        logger.info("%s already extracted into %s", archive.name, dest)
        return
    try:
        with tarfile.open(archive, "r:gz") as tar:
            # getmembers() reads the whole archive once, so the checks cover every member
            # before the first byte is written, at the cost of a second decompression pass.
            members = tar.getmembers()
            groups = _extraction_targets(dest, members)
            for root, group in groups.items():
                for member in group:
                    reason = _unsafe_reason(member, root)
                    if reason is not None:
                        raise UnsafeArchiveError(
                            f"{archive.name}: refusing to extract {member.name!r}: {reason}; "
                            "the archive is not a clean LibriSpeech tarball: "
                            "delete it and download it again"
                        )
            dest.mkdir(parents=True, exist_ok=True)
            for root, group in groups.items():
                tar.extractall(root, members=group, **_DATA_FILTER)
    except _FILTER_ERROR as err:
        raise UnsafeArchiveError(
            f"{archive.name}: refusing to extract: {err}; delete it and download it again"
        ) from None
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise DownloadError(
            f"{archive}: not a readable .tar.gz ({err}); delete it and download it again"
        ) from None
    marker.touch()


def _renamed(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """A copy of ``member`` under another name; ``TarInfo.replace`` came only in Python 3.11.4
    (Debian 12's python3 is 3.11.2)."""
    if hasattr(member, "replace"):
        return member.replace(name=name, deep=False)
    renamed = copy.copy(member)
    renamed.name = name
    return renamed


def _extraction_targets(dest: Path, members: list[tarfile.TarInfo]) -> dict[Path, list[tarfile.TarInfo]]:
    """Where each member goes: resolved ``dest``, or, for the members under a top folder that
    the user made a symbolic link to a folder (``DEST/LibriSpeech -> /big/disk/LibriSpeech``),
    that folder, with the top folder's name taken off theirs. The link is the user's choice
    of where the data lives; only what the archive itself holds is checked."""
    groups: dict[Path, list[tarfile.TarInfo]] = {}
    for member in members:
        parts = PurePosixPath(member.name).parts
        link = dest / parts[0] if parts and parts[0] not in ("/", "..") else None
        if link is not None and link.is_symlink() and link.is_dir():
            if len(parts) == 1:
                continue  # the top folder itself: the link's target stands for it
            groups.setdefault(link.resolve(), []).append(_renamed(member, "/".join(parts[1:])))
        else:
            groups.setdefault(dest.resolve(), []).append(member)
    return groups


def _unsafe_reason(member: tarfile.TarInfo, root: Path) -> str | None:
    """Why extracting ``member`` under the resolved directory ``root`` is unsafe, or None."""
    if member.issym() or member.islnk():
        return f"it is a link (to {member.linkname!r})"
    if not (member.isfile() or member.isdir()):
        return "it is a device, FIFO or other special file"
    name = PurePosixPath(member.name)
    if name.is_absolute() or PureWindowsPath(member.name).anchor:
        return "it has an absolute path"
    if ".." in name.parts:
        return "its path contains '..'"
    if not (root / name).resolve().is_relative_to(root):
        return f"it would land outside {root}"
    return None


def gunzip(path: Path) -> Path:
    """Decompress ``x.gz`` to ``x``, which appears whole or not at all; return ``x``."""
    target = path.with_suffix("")
    if target.exists():
        return target
    try:
        with gzip.open(path, "rb") as src, atomic_write(target, "wb") as dst:
            shutil.copyfileobj(src, dst, CHUNK_BYTES)
    except (OSError, EOFError, zlib.error) as err:
        raise DownloadError(
            f"{path}: cannot decompress ({err}); delete it and download it again"
        ) from None
    return target
