"""Every file asr writes for a user appears whole or not at all: a write that fails (a file-size
limit here, as a full disk would) leaves the old file as it was, no temporary file beside
it, and one error line that names the path."""

from __future__ import annotations

import ast
import contextlib
import os
import resource
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from asr.align import Word
from asr.batching import Transcript
from asr.checkpoint import CheckpointError, load_model, save_checkpoint
from asr.config import ExperimentConfig
from asr.data import Utterance, write_manifest
from asr.evaluate import EvalResult, write_reports
from asr.formats import write_outputs
from asr.io import WriteError, atomic_path
from asr.lm.weights_file import TunedWeights, store_tuned
from asr.metrics import ErrorCounts
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary

REPO = Path(__file__).resolve().parent.parent
LIMIT = 4096  # bytes a file may grow to while the limit holds: less than any new file below
BIG = "x" * (4 * LIMIT)


@contextlib.contextmanager
def file_size_limit(size: int):
    """Writes past ``size`` bytes fail with EFBIG (Python ignores SIGXFSZ), as on a full disk."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


def _tiny_checkpoint(path: Path) -> None:
    torch.manual_seed(0)
    cfg = ExperimentConfig(model=ModelConfig(hidden=16, layers=1))
    model = AcousticModel(cfg.model)
    save_checkpoint(path, model, cfg, Vocabulary())


def _manifest(path: Path) -> None:
    write_manifest([Utterance(f"u{i}", "a.flac", 1.0, BIG[:64], "s1") for i in range(400)], path)


def _transcript(path: Path) -> None:
    words = tuple(Word("WORD", i * 0.5, i * 0.5 + 0.4, 0.9) for i in range(2000))
    write_outputs(Transcript("a.wav", words, 1000.0), path.with_suffix(""), ("txt",))


def _reports(path: Path) -> None:
    n = 300
    result = EvalResult(ErrorCounts(), ErrorCounts(), [f"u{i}" for i in range(n)], [BIG[:40]] * n, [BIG[:39]] * n)
    write_reports(result, path.parent)


def _tuning(path: Path, dev_manifest: str = BIG) -> None:
    checkpoint, lm = path.parent / "best.pt", path.parent / "lm.arpa"
    if not checkpoint.exists():
        checkpoint.write_bytes(b"weights")
        lm.write_bytes(b"lm")
    store_tuned(checkpoint, lm, TunedWeights(0.5, 1.0, 16, 0.1, 0.05, dev_manifest, 10, 81, path))


def _checkpoint(path: Path) -> None:
    torch.manual_seed(len(path.read_bytes()) if path.exists() else 0)
    cfg = ExperimentConfig(model=ModelConfig(hidden=32, layers=2))
    save_checkpoint(path, AcousticModel(cfg.model), cfg, Vocabulary())


WRITERS: dict[str, tuple[str, Callable[[Path], None]]] = {
    "manifest": ("train.jsonl", _manifest),
    "transcript": ("a.txt", _transcript),
    "evaluation reports": ("hyp.txt", _reports),
    "LM tuning file": ("lm_tuning.json", _tuning),
    "checkpoint": ("last.pt", _checkpoint),
}


@pytest.mark.parametrize("writer", WRITERS, ids=list(WRITERS))
def test_a_failed_write_keeps_the_old_file_whole_and_names_it(tmp_path: Path, writer: str) -> None:
    name, write = WRITERS[writer]
    target = tmp_path / name
    if writer == "LM tuning file":  # it reads the old file first: it must be one
        _tuning(target, "dev.jsonl")
    else:
        target.write_text("the old file\n")
    old = target.read_bytes()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with file_size_limit(LIMIT), pytest.raises((WriteError, CheckpointError)) as err:
        write(target)
    message = str(err.value)
    assert str(tmp_path) in message and "File too large" in message and "\n" not in message, message
    assert target.read_bytes() == old  # untouched
    leftovers = sorted(p.name for p in tmp_path.iterdir() if p.name not in before)
    assert all(not n.startswith(".") for n in leftovers), leftovers  # no temporary file beside it
    write(target)  # without the limit the same write succeeds
    assert target.read_bytes() != old


def test_the_helper_fsyncs_before_the_rename(tmp_path: Path, monkeypatch) -> None:
    synced: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.readlink(f"/proc/self/fd/{fd}")), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (synced.append("rename"), real_replace(a, b)))
    with atomic_path(tmp_path / "out.bin") as partial:
        partial.write_bytes(b"data")
    assert len(synced) == 3 and synced[0].endswith(".out.bin.tmp" + str(os.getpid())), synced
    assert synced[1:] == ["rename", str(tmp_path)]  # the file, then its name, are on disk


def test_errors_while_reading_other_files_pass_through(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "out") as partial:
        partial.write_text("half")
        (tmp_path / "missing.txt").read_text()  # the block's own read fails: not a write error
    assert list(tmp_path.iterdir()) == []


def test_asr_writes_user_files_only_through_the_atomic_helper() -> None:
    """No ``write_text``/``write_bytes``/``torch.save``/``onnx.save`` to a user's path outside
    asr/io.py: each goes through atomic_path, which names the path when the write fails."""
    found = []
    for path in sorted((REPO / "asr").rglob("*.py")):
        if path.name == "io.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
                    "write_text", "write_bytes"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found, found


def test_export_over_a_good_model_on_a_full_disk_keeps_it(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from asr.export import export_onnx

    checkpoint, out = tmp_path / "m.pt", tmp_path / "m.onnx"
    _tiny_checkpoint(checkpoint)
    export_onnx(load_model(checkpoint), out, int8=True)
    good = out.read_bytes()
    limit = len(good) // 2  # the float32 graph is about four times the int8 one: it cannot fit
    command = [sys.executable, "-m", "asr", "export", "--model", str(checkpoint), "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit)))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(out) in lines[0] and "cannot write ONNX model" in lines[0], lines
    assert "previous ONNX model there is intact" in lines[0]
    assert out.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.pt"]


def test_export_refuses_an_opset_torch_cannot_write_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("onnx")
    checkpoint = tmp_path / "m.pt"
    _tiny_checkpoint(checkpoint)
    result = subprocess.run([sys.executable, "-m", "asr", "export", "--model", str(checkpoint), "--out",
                             str(tmp_path / "m.onnx"), "--opset", "99999"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2 and result.stderr.strip().count("\n") == 0, result.stderr
    assert "opset 99999" in result.stderr and not (tmp_path / "m.onnx").exists()


def test_int8_export_prints_no_onnxruntime_warnings_and_int8_models_keep_their_compute_type(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from asr.inference import DeviceError, load_recognizer

    checkpoint, out = tmp_path / "m.pt", tmp_path / "m.onnx"
    _tiny_checkpoint(checkpoint)
    result = subprocess.run([sys.executable, "-m", "asr", "export", "--model", str(checkpoint), "--out", str(out),
                             "--compute-type", "int8"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0 and "WARNING" not in result.stderr + result.stdout, result.stderr
    assert load_recognizer(out).int8 and load_recognizer(out, compute_type="int8").int8
    with pytest.raises(DeviceError, match="holds int8 weights"):
        load_recognizer(out, compute_type="float32")
