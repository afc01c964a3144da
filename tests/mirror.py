"""A tiny offline LibriSpeech mirror for tests.

Builds ``<subset>.tar.gz`` tarballs in the real layout (``LibriSpeech/<subset>/SPK/CHAP/...``)
from the shared sample, and serves a folder on 127.0.0.1 with Range support and knobs that
misbehave the way real servers do: cut a transfer, corrupt bytes, ignore ``Range``.

Use it from a test module with ``from mirror import serve_mirror, build_librispeech_mirror``
(pytest puts ``tests/`` on ``sys.path``), or take the ``librispeech_mirror_root`` fixture::

    def test_recipe(librispeech_mirror_root, tmp_path):
        with serve_mirror(librispeech_mirror_root) as base_url:
            download_librispeech(["test-clean"], tmp_path, mirror=base_url,
                                 checksums=read_md5sum_file(librispeech_mirror_root / MD5SUM_NAME))
"""

from __future__ import annotations

import gzip
import hashlib
import io
import re
import tarfile
import threading
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SAMPLE_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "librispeech-sample"
MD5SUM_NAME = "md5sum.txt"

TEST_CLEAN_SPEAKERS = ("1089", "1995", "2830", "4507", "8455")
DEV_CLEAN_SPEAKERS = ("1272", "2412")
# The sample has no training speakers: train-clean-100 reuses every sample utterance so a
# recipe test can train on it and score on the same speakers.
TRAIN_CLEAN_100_SPEAKERS = TEST_CLEAN_SPEAKERS + DEV_CLEAN_SPEAKERS
DEFAULT_SUBSETS: dict[str, tuple[str, ...]] = {
    "test-clean": TEST_CLEAN_SPEAKERS,
    "dev-clean": DEV_CLEAN_SPEAKERS,
    "train-clean-100": TRAIN_CLEAN_100_SPEAKERS,
}

_FIXED_MTIME = 1_400_000_000  # a fixed date keeps the tarballs, and their MD5s, reproducible
_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")
_POLL_S = 0.02  # how often the server checks for shutdown; the default 0.5 s slows every test


def require_sample() -> Path:
    """The shared LibriSpeech sample folder; skips the calling test when it is absent."""
    if not SAMPLE_DIR.is_dir():
        pytest.skip(f"LibriSpeech sample not found at {SAMPLE_DIR}")
    return SAMPLE_DIR


def sample_files(speakers: Sequence[str], sample: Path = SAMPLE_DIR) -> dict[str, bytes]:
    """``{"SPK/CHAP/name": bytes}`` for every file of ``speakers`` in the sample."""
    return {
        path.relative_to(sample).as_posix(): path.read_bytes()
        for speaker in speakers
        for path in sorted((sample / speaker).rglob("*"))
        if path.is_file()
    }


def build_subset_tarball(
    subset: str, speakers: Sequence[str], out_dir: Path, sample: Path = SAMPLE_DIR
) -> Path:
    """Write ``out_dir/<subset>.tar.gz`` holding ``LibriSpeech/<subset>/SPK/CHAP/...``."""
    files = sample_files(speakers, sample)
    dirs = {f"LibriSpeech/{subset}"}
    for name in files:
        parts = name.split("/")[:-1]
        dirs.update(f"LibriSpeech/{subset}/" + "/".join(parts[: i + 1]) for i in range(len(parts)))
    archive = Path(out_dir) / f"{subset}.tar.gz"
    with open(archive, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as gz:
        with tarfile.open(fileobj=gz, mode="w", format=tarfile.GNU_FORMAT) as tar:
            for name in ["LibriSpeech", *sorted(dirs)]:
                info = tarfile.TarInfo(name)
                info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, _FIXED_MTIME
                tar.addfile(info)
            for name, data in files.items():
                info = tarfile.TarInfo(f"LibriSpeech/{subset}/{name}")
                info.size, info.mode, info.mtime = len(data), 0o644, _FIXED_MTIME
                tar.addfile(info, io.BytesIO(data))
    return archive


def write_md5sum_file(root: Path, pattern: str = "*.tar.gz") -> Path:
    """Write ``root/md5sum.txt`` (``MD5  FILENAME`` lines) for the files matching ``pattern``."""
    lines = [
        f"{hashlib.md5(path.read_bytes()).hexdigest()}  {path.name}\n"
        for path in sorted(Path(root).glob(pattern))
    ]
    out = Path(root) / MD5SUM_NAME
    out.write_text("".join(lines))
    return out


def build_librispeech_mirror(
    root: Path, subsets: Mapping[str, Sequence[str]] = DEFAULT_SUBSETS, sample: Path | None = None
) -> Path:
    """Fill ``root`` with one tarball per subset plus ``md5sum.txt``; return ``root``.

    Skips the calling test when the sample is absent.
    """
    sample = sample or require_sample()
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for subset, speakers in subsets.items():
        build_subset_tarball(subset, speakers, root, sample)
    write_md5sum_file(root)
    return root


@dataclass(frozen=True)
class Request:
    """One request the mirror saw: the file, its ``Range`` header and the status sent."""

    name: str
    range: str | None
    status: int


@dataclass
class MirrorServer:
    """Serve the files of ``root`` on 127.0.0.1; a context manager that yields itself.

    Knobs, each keyed by file name:
    - ``cut_after[name] = n``: the first transfer of ``name`` stops after ``n`` body bytes
      and the connection closes, although the headers promised more;
    - ``corrupt[name] = k``: the next ``k`` responses for ``name`` have one byte flipped;
    - ``ignore_range``: answer every request with 200 and the whole file.
    """

    root: Path
    cut_after: dict[str, int] = field(default_factory=dict)
    corrupt: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    requests: list[Request] = field(default_factory=list)
    url: str = ""

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def gets(self, name: str) -> list[Request]:
        """The requests seen so far for file ``name``."""
        with self._lock:
            return [r for r in self.requests if r.name == name]

    def __enter__(self) -> MirrorServer:
        mirror = self

        class Handler(_MirrorHandler):
            server_state = mirror

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.url = f"http://{host}:{port}/"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": _POLL_S}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _respond(
        self, name: str, range_header: str | None
    ) -> tuple[int, bytes, dict[str, str], int | None]:
        """Status, body, headers and cut point (None: send all) for one request."""
        path = (self.root / name).resolve()
        if not name or not path.is_relative_to(self.root.resolve()) or not path.is_file():
            return HTTPStatus.NOT_FOUND, b"not found\n", {}, None
        data = bytearray(path.read_bytes())
        with self._lock:
            cut = self.cut_after.pop(name, None)
            if self.corrupt.get(name, 0) > 0:
                self.corrupt[name] -= 1
                data[len(data) // 2] ^= 0xFF
        match = _RANGE.match(range_header or "")
        if match is None or self.ignore_range:
            return HTTPStatus.OK, bytes(data), {}, cut
        start = int(match.group(1))
        end = int(match.group(2)) if match.group(2) else len(data) - 1
        if start >= len(data):
            unsatisfiable = {"Content-Range": f"bytes */{len(data)}"}
            return HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE, b"", unsatisfiable, None
        end = min(end, len(data) - 1)
        headers = {"Content-Range": f"bytes {start}-{end}/{len(data)}"}
        return HTTPStatus.PARTIAL_CONTENT, bytes(data[start : end + 1]), headers, cut

    def _log(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)


class _MirrorHandler(BaseHTTPRequestHandler):
    server_state: MirrorServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        name = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path).lstrip("/")
        range_header = self.headers.get("Range")
        status, body, headers, cut = self.server_state._respond(name, range_header)
        self.server_state._log(Request(name, range_header, int(status)))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body if cut is None else body[:cut])
            self.wfile.flush()
        except ConnectionError:
            pass  # the client gave up; nothing left to send
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet; requests are recorded in ``MirrorServer.requests``."""


@contextmanager
def serve_mirror(root: Path, **knobs: object) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 and yield its base URL (ending in ``/``).

    ``knobs`` are :class:`MirrorServer`'s ``cut_after``, ``corrupt`` and ``ignore_range``.
    """
    with MirrorServer(Path(root), **knobs) as server:  # type: ignore[arg-type]
        yield server.url


@pytest.fixture(scope="session")
def librispeech_mirror_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with test-clean, dev-clean and train-clean-100 tarballs and ``md5sum.txt``."""
    return build_librispeech_mirror(tmp_path_factory.mktemp("librispeech-mirror"))
