"""Files that appear whole or not at all, and the checksum helper."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from asr.io import NAME_MAX, atomic_path, atomic_write, md5, partial_path


def test_partial_path_is_a_hidden_sibling_within_the_name_limit(tmp_path: Path) -> None:
    assert partial_path(tmp_path / "model.pt") == tmp_path / f".model.pt.tmp{os.getpid()}"
    longest = "x" * (NAME_MAX - 4) + ".txt"
    other = "y" + longest[1:]
    partial, other_partial = partial_path(tmp_path / longest), partial_path(tmp_path / other)
    assert len(os.fsencode(partial.name)) <= NAME_MAX and partial.name.endswith(f".txt.tmp{os.getpid()}")
    assert partial != other_partial  # the hash keeps names that differ only in the cut middle apart
    partial.write_text("fits")  # the file system takes the name
    assert partial.read_text() == "fits"


@pytest.mark.parametrize("mode, content", [("w", "new text é\n"), ("wb", b"\x00new bytes")])
def test_atomic_write_replaces_the_file_whole(tmp_path: Path, mode: str, content: str | bytes) -> None:
    path = tmp_path / "out"
    path.write_text("old")
    with atomic_write(path, mode) as f:
        f.write(content)
        assert path.read_text() == "old"  # nothing shows until the block ends
    assert (path.read_text(encoding="utf-8") if mode == "w" else path.read_bytes()) == content
    assert os.listdir(tmp_path) == ["out"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_partial_one(tmp_path: Path) -> None:
    path = tmp_path / "out"
    path.write_text("old")
    with pytest.raises(RuntimeError), atomic_write(path, "wb") as f:
        f.write(b"half")
        raise RuntimeError("disk full")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out"]
    with pytest.raises(ValueError, match="mode"), atomic_write(path, "a"):
        pass


def test_atomic_path_for_tools_that_write_the_file_themselves(tmp_path: Path) -> None:
    path = tmp_path / "lm.bin"
    with atomic_path(path) as partial:
        partial.write_bytes(b"binary")
    assert path.read_bytes() == b"binary" and os.listdir(tmp_path) == ["lm.bin"]
    with pytest.raises(OSError), atomic_path(path) as partial:
        partial.write_bytes(b"half")
        raise OSError("the tool failed")
    assert path.read_bytes() == b"binary" and os.listdir(tmp_path) == ["lm.bin"]


def test_md5_of_a_file(tmp_path: Path) -> None:
    data = os.urandom(3 << 20)  # more than one read
    (tmp_path / "blob").write_bytes(data)
    assert md5(tmp_path / "blob") == hashlib.md5(data).hexdigest()
