"""Downloading and unpacking, against a loopback mirror that cuts, corrupts and ignores Range."""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import random
import tarfile
from pathlib import Path

import pytest
from mirror import (
    DEV_CLEAN_SPEAKERS,
    MD5SUM_NAME,
    TEST_CLEAN_SPEAKERS,
    MirrorServer,
    librispeech_mirror_root,  # noqa: F401 (pytest fixture)
    sample_files,
    serve_mirror,
)

from asr.corpora import download
from asr.corpora.download import (
    DownloadError,
    UnsafeArchiveError,
    download_file,
    extraction_marker,
    read_md5sum_file,
    safe_extract,
)
from asr.corpora.librispeech import (
    LIBRISPEECH_LM_MD5,
    LIBRISPEECH_MD5,
    LIBRISPEECH_SUBSETS,
    download_librispeech,
    download_librispeech_lm,
    expand_subsets,
    resource_url,
)

BLOB = "blob.bin"
BLOB_BYTES = 300_000
CUT_AT = 100_000  # the first transfer of BLOB stops here when a test asks for a cut


@pytest.fixture
def blob(tmp_path: Path) -> tuple[Path, bytes, str]:
    """A served folder holding one random file; returns (folder, bytes, md5)."""
    root = tmp_path / "served"
    root.mkdir()
    data = random.Random(0).randbytes(BLOB_BYTES)
    (root / BLOB).write_bytes(data)
    return root, data, hashlib.md5(data).hexdigest()


def _one_line(err: pytest.ExceptionInfo) -> str:
    message = str(err.value)
    assert "\n" not in message
    return message


def test_published_checksum_tables_are_complete() -> None:
    assert set(LIBRISPEECH_SUBSETS) == {
        "dev-clean", "dev-other", "test-clean", "test-other",
        "train-clean-100", "train-clean-360", "train-other-500",
    }
    for md5 in [*LIBRISPEECH_MD5.values(), *LIBRISPEECH_LM_MD5.values()]:
        assert len(md5) == 32 and int(md5, 16) >= 0
    assert resource_url(12) == "https://www.openslr.org/resources/12/"
    assert resource_url(11, "eu") == "https://openslr.elda.org/resources/11/"
    assert resource_url(12, "http://127.0.0.1:8000/ls") == "http://127.0.0.1:8000/ls/"


def test_resumes_with_range_after_a_cut(blob, tmp_path: Path) -> None:
    root, data, md5 = blob
    dest = tmp_path / "out" / BLOB
    with MirrorServer(root, cut_after={BLOB: CUT_AT}) as server:
        assert download_file(server.url + BLOB, dest, md5, progress=False) == dest
    gets = server.gets(BLOB)
    assert [(g.range, g.status) for g in gets] == [(None, 200), (f"bytes={CUT_AT}-", 206)]
    assert dest.read_bytes() == data
    assert not dest.with_name(BLOB + ".part").exists()


def test_resumes_a_part_file_left_by_an_earlier_run(blob, tmp_path: Path) -> None:
    root, data, md5 = blob
    dest = tmp_path / BLOB
    dest.with_name(BLOB + ".part").write_bytes(data[:CUT_AT])
    with MirrorServer(root) as server:
        download_file(server.url + BLOB, dest, md5, progress=False)
    assert [g.range for g in server.gets(BLOB)] == [f"bytes={CUT_AT}-"]
    assert dest.read_bytes() == data


def test_server_ignoring_range_restarts_from_zero(blob, tmp_path: Path) -> None:
    root, data, md5 = blob
    dest = tmp_path / BLOB
    with MirrorServer(root, cut_after={BLOB: CUT_AT}, ignore_range=True) as server:
        download_file(server.url + BLOB, dest, md5, progress=False)
    gets = server.gets(BLOB)
    assert [(g.range, g.status) for g in gets] == [(None, 200), (f"bytes={CUT_AT}-", 200)]
    assert dest.read_bytes() == data


def test_bad_md5_once_is_downloaded_again(blob, tmp_path: Path) -> None:
    root, data, md5 = blob
    dest = tmp_path / BLOB
    with MirrorServer(root, corrupt={BLOB: 1}) as server:
        download_file(server.url + BLOB, dest, md5, progress=False)
    assert len(server.gets(BLOB)) == 2
    assert dest.read_bytes() == data


def test_bad_md5_twice_raises_and_deletes(blob, tmp_path: Path) -> None:
    root, _, md5 = blob
    dest = tmp_path / BLOB
    with MirrorServer(root, corrupt={BLOB: 2}) as server, pytest.raises(DownloadError) as err:
        download_file(server.url + BLOB, dest, md5, progress=False)
    message = _one_line(err)
    assert BLOB in message and md5 in message and "mirror" in message
    assert len(server.gets(BLOB)) == 2
    assert list(tmp_path.iterdir()) == [root]


def test_verified_file_is_not_downloaded_again(blob, tmp_path: Path) -> None:
    root, data, md5 = blob
    dest = tmp_path / BLOB
    with MirrorServer(root) as server:
        download_file(server.url + BLOB, dest, md5, progress=False)
        download_file(server.url + BLOB, dest, md5, progress=False)
        assert len(server.gets(BLOB)) == 1
        dest.write_bytes(b"stale")
        download_file(server.url + BLOB, dest, md5, progress=False)
        assert len(server.gets(BLOB)) == 2
    assert dest.read_bytes() == data


def test_unknown_md5_warns_and_checks_length(blob, tmp_path: Path, caplog) -> None:
    root, data, _ = blob
    with MirrorServer(root) as server, caplog.at_level(logging.WARNING, logger="asr.corpora.download"):
        download_file(server.url + BLOB, tmp_path / BLOB, None, progress=False)
    assert "no MD5 known" in caplog.text
    assert (tmp_path / BLOB).read_bytes() == data


def test_missing_file_fails_at_once(blob, tmp_path: Path) -> None:
    root, _, md5 = blob
    with MirrorServer(root) as server, pytest.raises(DownloadError) as err:
        download_file(server.url + "nope.tar.gz", tmp_path / "nope.tar.gz", md5, progress=False)
    assert "404" in _one_line(err)
    assert len(server.gets("nope.tar.gz")) == 1


def test_unreachable_server_gives_up_after_retries(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(download, "RETRY_BACKOFF_S", 0.0)
    with MirrorServer(tmp_path) as server:
        url = server.url + BLOB  # a port that was just free: nothing listens once closed
    with pytest.raises(DownloadError) as err:
        download_file(url, tmp_path / BLOB, None, retries=2, progress=False, timeout=2)
    assert "3 times" in _one_line(err)


def _tarball(path: Path, member: tarfile.TarInfo, data: bytes = b"") -> Path:
    ok = tarfile.TarInfo("LibriSpeech/ok.txt")
    ok.size = 2
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(ok, io.BytesIO(b"ok"))
        member.size = len(data) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(data) if data else None)
    return path


def _member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.mark.parametrize(
    "kind",
    ["dotdot", "absolute", "symlink", "hardlink", "device"],
)
def test_unsafe_members_are_refused_before_writing(tmp_path: Path, kind: str) -> None:
    outside = tmp_path / "outside.txt"
    members = {
        "dotdot": _member("LibriSpeech/../../outside.txt"),
        "absolute": _member(str(outside)),
        "symlink": _member("LibriSpeech/link", tarfile.SYMTYPE, "../../outside.txt"),
        "hardlink": _member("LibriSpeech/link", tarfile.LNKTYPE, "/etc/passwd"),
        "device": _member("LibriSpeech/dev", tarfile.CHRTYPE),
    }
    payload = b"pwned" if members[kind].isfile() else b""
    archive = _tarball(tmp_path / "evil.tar.gz", members[kind], payload)
    dest = tmp_path / "dest"
    with pytest.raises(UnsafeArchiveError) as err:
        safe_extract(archive, dest)
    assert repr(members[kind].name) in _one_line(err)
    assert not dest.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evil.tar.gz"]


def test_extraction_is_skipped_once_done(tmp_path: Path) -> None:
    archive = _tarball(tmp_path / "fine.tar.gz", _member("LibriSpeech/b.txt"), b"bb")
    dest = tmp_path / "dest"
    safe_extract(archive, dest)
    assert (dest / "LibriSpeech" / "b.txt").read_bytes() == b"bb"
    assert extraction_marker(archive, dest).exists()
    (dest / "LibriSpeech" / "b.txt").unlink()
    safe_extract(archive, dest)
    assert not (dest / "LibriSpeech" / "b.txt").exists()


def test_damaged_archive_is_a_download_error(tmp_path: Path) -> None:
    archive = tmp_path / "broken.tar.gz"
    archive.write_bytes(gzip.compress(b"not a tar file at all" * 40)[:-20])
    with pytest.raises(DownloadError) as err:
        safe_extract(archive, tmp_path / "dest")
    assert "broken.tar.gz" in _one_line(err)


def test_subset_names_and_aliases() -> None:
    assert expand_subsets(["train-460", "train-clean-100", "dev-clean"]) == [
        "train-clean-100", "train-clean-360", "dev-clean",
    ]
    assert expand_subsets(["train-960"]) == [
        "train-clean-100", "train-clean-360", "train-other-500",
    ]
    with pytest.raises(DownloadError) as err:
        expand_subsets(["test-dirty"])
    message = _one_line(err)
    assert "'test-dirty'" in message and "test-clean" in message and "train-960" in message


def test_read_md5sum_file(tmp_path: Path) -> None:
    sums = tmp_path / "md5sum.txt"
    sums.write_text(
        "# comment\n\n"
        "42E2234BA48799C1F50F24A7926300A1  dev-clean.tar.gz\n"
        "32fa31d27d2e1cad72775fee3f4849a9 *./test-clean.tar.gz\n"
    )
    assert read_md5sum_file(sums) == {
        "dev-clean.tar.gz": "42e2234ba48799c1f50f24a7926300a1",
        "test-clean.tar.gz": "32fa31d27d2e1cad72775fee3f4849a9",
    }
    sums.write_text("deadbeef  dev-clean.tar.gz\n")
    with pytest.raises(DownloadError) as err:
        read_md5sum_file(sums)
    assert "md5sum.txt:1" in _one_line(err)


def test_download_librispeech_matches_the_sample(
    librispeech_mirror_root: Path, tmp_path: Path  # noqa: F811 (the imported fixture)
) -> None:
    checksums = read_md5sum_file(librispeech_mirror_root / MD5SUM_NAME)
    dest = tmp_path / "corpus"
    subsets = ["test-clean", "dev-clean"]
    with MirrorServer(librispeech_mirror_root) as server:
        dirs = download_librispeech(
            subsets, dest, mirror=server.url, checksums=checksums, progress=False
        )
        assert dirs == [dest / "LibriSpeech" / "test-clean", dest / "LibriSpeech" / "dev-clean"]
        for subset_dir, speakers in zip(dirs, (TEST_CLEAN_SPEAKERS, DEV_CLEAN_SPEAKERS)):
            extracted = {
                p.relative_to(subset_dir).as_posix(): p.read_bytes()
                for p in subset_dir.rglob("*")
                if p.is_file()
            }
            assert extracted == sample_files(speakers)
        assert (dest / "test-clean.tar.gz").exists()  # kept, so a rerun can skip it

        requests_before = len(server.requests)
        rerun = download_librispeech(
            subsets, dest, mirror=server.url, checksums=checksums, progress=False
        )
        assert rerun == dirs
        assert len(server.requests) == requests_before


def test_download_librispeech_lm_unzips_arpa(tmp_path: Path) -> None:
    served = tmp_path / "served"
    served.mkdir()
    arpa = b"\\data\\\nngram 1=1\n\n\\1-grams:\n-1.0 A\n\n\\end\\\n"
    name = "3-gram.pruned.1e-7.arpa.gz"
    (served / name).write_bytes(gzip.compress(arpa, mtime=0))
    checksums = {name: hashlib.md5((served / name).read_bytes()).hexdigest()}
    with serve_mirror(served) as base_url:
        paths = download_librispeech_lm(
            [name], tmp_path / "lm", mirror=base_url, checksums=checksums, unzip=True,
            progress=False,
        )
    assert paths == [tmp_path / "lm" / "3-gram.pruned.1e-7.arpa"]
    assert paths[0].read_bytes() == arpa
    with pytest.raises(DownloadError) as err:
        download_librispeech_lm(["5-gram.arpa.gz"], tmp_path / "lm")
    assert "4-gram.arpa.gz" in _one_line(err)
