"""Lhotse manifests in and out, through the lhotse package: ``lhotse prepare librispeech`` on a
folder in LibriSpeech's layout gives the utterances ``asr prepare`` gives, which asr trains and
evaluates on; supervisions inside longer recordings become offset rows; ours go back out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.cli import main
from asr.corpora.lhotse_manifests import LhotseError, read_lhotse, write_lhotse
from asr.data import Utterance, read_manifest
from tone import speak

SENTENCES = ("A CAT", "THE DOG", "IT IS", "GO ON", "NO WAY", "OK")


def _librispeech(root: Path) -> Path:
    """``root/dev-clean/SPK/CHAP/SPK-CHAP-NNNN.flac`` and ``SPK-CHAP.trans.txt``, as lhotse's
    LibriSpeech recipe expects them (it looks for the official subset names)."""
    for i, text in enumerate(SENTENCES):
        speaker, chapter = 100 + i % 2, 7
        folder = root / "dev-clean" / str(speaker) / str(chapter)
        folder.mkdir(parents=True, exist_ok=True)
        sf.write(folder / f"{speaker}-{chapter}-{i:04d}.flac", speak(text, pad=0.1)[0], 16_000, subtype="PCM_16")
        with (folder / f"{speaker}-{chapter}.trans.txt").open("a") as f:
            f.write(f"{speaker}-{chapter}-{i:04d} {text}\n")
    return root


@pytest.mark.slow
def test_lhotse_prepare_librispeech_then_train_and_evaluate(tmp_path: Path, capsys) -> None:
    pytest.importorskip("lhotse", reason="the lhotse extra is not installed")
    corpus = _librispeech(tmp_path / "LibriSpeech")
    lhotse_cli = shutil.which("lhotse", path=str(Path(sys.executable).parent)) or shutil.which("lhotse")
    if lhotse_cli is None:
        pytest.skip("lhotse is installed without its lhotse command")
    run = subprocess.run([lhotse_cli, "prepare", "librispeech", str(corpus), str(tmp_path / "lhotse")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    manifests = [str(tmp_path / "lhotse" / f"librispeech_{kind}_dev-clean.jsonl.gz") for kind in ("recordings", "supervisions")]
    assert main(["prepare", "--lhotse", *manifests, "--out", str(tmp_path / "lhotse.jsonl")]) == 0
    assert main(["prepare", str(corpus / "dev-clean"), "--out", str(tmp_path / "ours.jsonl")]) == 0
    assert (tmp_path / "lhotse.jsonl").read_text() == (tmp_path / "ours.jsonl").read_text()
    assert len(read_manifest(tmp_path / "lhotse.jsonl")) == len(SENTENCES)

    config = tmp_path / "tiny.toml"
    config.write_text(f'[data]\ntrain_manifests = ["{tmp_path / "lhotse.jsonl"}"]\ndev_manifest = "{tmp_path / "lhotse.jsonl"}"\n'
                      "[model]\nhidden = 16\nlayers = 1\n"
                      "[train]\nepochs = 1\nmax_batch_seconds = 3.0\nwarmup_steps = 1\nnum_workers = 0\n"
                      "spec_augment = false\nstats_utterances = 6\nlog_every = 1\n")
    assert main(["train", "--config", str(config), "--exp-dir", str(tmp_path / "exp"), "--device", "cpu"]) == 0
    steps = [json.loads(line) for line in (tmp_path / "exp" / "metrics.jsonl").read_text().splitlines()]
    assert sum(row.get("kind") == "train" for row in steps) >= 2
    capsys.readouterr()
    assert main(["evaluate", "--model", str(tmp_path / "exp" / "best.pt"), "--manifest", str(tmp_path / "lhotse.jsonl"),
                 "--device", "cpu", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["utterances"] == len(SENTENCES)


def test_supervisions_inside_recordings_are_offset_rows_and_round_trip(tmp_path: Path, capsys) -> None:
    lhotse = pytest.importorskip("lhotse", reason="the lhotse extra is not installed")
    long = tmp_path / "meeting.flac"
    sf.write(long, (0.1 * np.random.default_rng(0).standard_normal(8 * 16_000)).astype(np.float32), 16_000)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.zeros((16_000, 2), np.float32), 16_000)
    recordings = lhotse.RecordingSet.from_recordings(
        [lhotse.Recording.from_file(long, "meeting"), lhotse.Recording.from_file(stereo, "stereo")])
    supervisions = lhotse.SupervisionSet.from_segments([
        lhotse.SupervisionSegment("m-1", "meeting", 0.5, 2.25, text="Hello, there!", speaker="ann"),
        lhotse.SupervisionSegment("m-2", "meeting", 4.0, 3.5, text="general kenobi", speaker="ben"),
        lhotse.SupervisionSegment("m-3", "meeting", 7.9, 1.5, text="too long", speaker="ben"),
        lhotse.SupervisionSegment("s-1", "stereo", 0.0, 1.0, text="two channels", speaker="cy"),
        lhotse.SupervisionSegment("x-1", "nowhere", 0.0, 1.0, text="no recording", speaker="cy"),
    ])
    recordings.to_file(tmp_path / "recordings.jsonl.gz")
    supervisions.to_file(tmp_path / "supervisions.jsonl.gz")
    code = main(["prepare", "--lhotse", str(tmp_path / "supervisions.jsonl.gz"), str(tmp_path / "recordings.jsonl.gz"),
                 "--out", str(tmp_path / "m.jsonl"), "--to-lhotse", str(tmp_path / "out")])
    err = capsys.readouterr().err.splitlines()
    assert code == 1 and len(err) == 3, err
    assert err[0].startswith("asr: supervision x-1: its recording nowhere is not in the recording set")
    assert err[1].startswith("asr: cut stereo") and "2 channels" in err[1]
    assert err[2].startswith("asr: supervision m-3: segment 7.9-9.4 s of") and "past the end" in err[2]
    expected = [Utterance("m-1", str(long), 2.25, "HELLO THERE", "ann", offset=0.5),
                Utterance("m-2", str(long), 3.5, "GENERAL KENOBI", "ben", offset=4.0)]
    assert read_manifest(tmp_path / "m.jsonl") == expected
    for written in (["cuts.jsonl.gz"], ["recordings.jsonl.gz", "supervisions.jsonl.gz"]):
        assert read_lhotse([tmp_path / "out" / name for name in written]) == (expected, [])
    with pytest.raises(LhotseError, match="expected a cut set, or a recording set and a supervision set; got RecordingSet"):
        read_lhotse([tmp_path / "recordings.jsonl.gz"])


def test_phones_travel_and_perturbed_rows_stay_out(tmp_path: Path) -> None:
    pytest.importorskip("lhotse", reason="the lhotse extra is not installed")
    path = tmp_path / "a-1.flac"
    sf.write(path, np.zeros(16_000, np.float32), 16_000)
    row = Utterance("a-1", str(path), 1.0, "HI", "a", phones="h aI")
    count, skipped = write_lhotse([row, Utterance("sp0.9-a-1", str(path), 1.1111, "HI", "a", speed=0.9)], tmp_path / "l")
    assert count == 1 and [s.path for s in skipped] == ["sp0.9-a-1"]
    assert read_lhotse([tmp_path / "l" / "cuts.jsonl.gz"]) == ([row], [])


def test_without_lhotse_installed_the_error_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "lhotse", None)  # import lhotse now raises ImportError
    (tmp_path / "cuts.jsonl.gz").write_bytes(b"")
    assert main(["prepare", "--lhotse", str(tmp_path / "cuts.jsonl.gz"), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert capsys.readouterr().err == ("asr: error: Lhotse manifests are read and written by the lhotse package, which "
                                       'is not installed: pip install -e ".[lhotse]"\n')
