"""Hostile input, round two: nothing lost silently, no false scores, no tracebacks, no hangs.

Each test reproduces one class of fault that a careless or unlucky user met (the numbers
are those of docs/reliability.md's "Round two" table) and checks the fix: a clear line, the
other items kept, no traceback, no hang, no false figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import struct
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import AudioError, load_audio, stream_audio
from asr.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from asr.cli import main
from asr.config import DataConfig, ExperimentConfig, TrainConfig, load_config
from asr.errors import ConfigError
from asr.corpora.download import DownloadError, download_file, read_md5sum_file, safe_extract
from asr.corpora.librispeech import read_librispeech
from asr.data import ManifestError, read_manifest
from asr.features import SpecAugmentConfig
from asr.model import ModelConfig
from asr.text import Vocabulary
from asr.train import TrainingError, train
from asr.transcribe import TranscribeOptions, find_inputs

REPO = Path(__file__).resolve().parents[1]


def _cli(*args, timeout: float = 120) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True,
                            timeout=timeout, cwd=REPO)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("asr: error: ")]


def _speechlike(seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16_000)) / 16_000
    return (0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.01 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.fixture
def manifests(tmp_path: Path) -> dict[str, Path]:
    """A tiny training set (4 utterances, 8 times over) and a dev set of 3."""
    audio = tmp_path / "audio"
    audio.mkdir()
    rows = []
    for i in range(4):
        path = audio / f"u{i}.wav"
        sf.write(path, _speechlike(1.5, i), 16_000)
        rows.append({"id": f"s-c-{i}", "audio_filepath": str(path), "duration": 1.5, "text": "HELLO THERE",
                     "speaker": "s"})
    train_path, dev_path = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    train_path.write_text("".join(json.dumps(r) + "\n" for r in rows * 8))
    dev_path.write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    return {"train": train_path, "dev": dev_path, "rows": rows}


def _config(manifests: dict, epochs: int = 1, **train_settings) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(train_manifests=(str(manifests["train"]),), dev_manifest=str(manifests["dev"])),
        model=ModelConfig(hidden=16, layers=1, dropout=0.0),
        train=TrainConfig(epochs=epochs, max_batch_seconds=4.0, warmup_steps=2, spec_augment=False, num_workers=0,
                          stats_utterances=4, log_every=2, **train_settings),
    )


# --- 1. a file that resamples to nothing ------------------------------------------------------


def test_1_tiny_files_do_not_hold_up_the_files_after_them(tmp_path: Path, random_checkpoint: Path, capsys) -> None:
    paths = []
    for i, (rate, samples) in enumerate([(48_000, 1), (16_000, 16_000), (44_100, 1), (96_000, 2), (16_000, 8_000)]):
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], np.full(samples, 0.1, np.float32), rate)
    code = main(["transcribe", "--model", str(random_checkpoint), *map(str, paths)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert [line.split("\t")[0] for line in out.splitlines()] == list(map(str, paths))
    assert err.splitlines()[-1] == "transcribed 5 files, 0 failed"


# --- 2. a dev set that cannot be read is not scored 0% ----------------------------------------


def test_2_dev_set_that_cannot_be_read(manifests: dict, tmp_path: Path, capsys) -> None:
    rows = manifests["rows"]
    gone = [{**r, "audio_filepath": str(tmp_path / f"gone-{i}.wav")} for i, r in enumerate(rows[:3])]
    all_gone = tmp_path / "dev-gone.jsonl"
    all_gone.write_text("".join(json.dumps(r) + "\n" for r in gone))
    cfg = _config(manifests)
    with pytest.raises(TrainingError, match="none of its 3 dev utterances can be read"):
        train(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dev_manifest=str(all_gone))),
              tmp_path / "a", progress=False)

    some_gone = tmp_path / "dev-some.jsonl"
    some_gone.write_text("".join(json.dumps(r) + "\n" for r in [gone[0], *rows[1:3]]))
    train(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dev_manifest=str(some_gone))),
          tmp_path / "b", progress=False)
    err = capsys.readouterr().err
    assert "1 of 3 dev utterances cannot be read and are left out of dev scoring" in err
    dev_rows = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()
                if json.loads(line)["kind"] == "dev"]
    assert [r["utterances"] for r in dev_rows] == [2]


def test_2_dev_files_that_break_during_training_leave_no_false_score(manifests: dict, tmp_path: Path,
                                                                     capsys) -> None:
    """Files there at the start but unreadable when scored: warned about, and with none left
    the epoch is not scored and best.pt is not chosen on nothing."""
    rows = manifests["rows"]
    dev = tmp_path / "dev.jsonl"
    broken = []
    for i, row in enumerate(rows[:2]):
        broken.append(tmp_path / f"broken-{i}.wav")
        broken[-1].write_bytes(b"RIFF not really audio")
    dev.write_text("".join(json.dumps({**r, "audio_filepath": str(p)}) + "\n" for r, p in zip(rows, broken)))
    cfg = _config(manifests)
    state = train(dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, dev_manifest=str(dev))), tmp_path / "x",
                  progress=False)
    out, err = capsys.readouterr()
    assert "2 of 2 dev utterances could not be read" in err
    assert "no dev utterance could be read: not scored, best.pt not updated" in out
    assert not (tmp_path / "x" / "best.pt").exists() and math.isinf(state.best_wer)


# --- 3. a checkpoint write that fails, whatever torch calls it ----------------------------------


def test_3_failed_checkpoint_write_is_one_line_whatever_the_wording(tmp_path: Path, monkeypatch) -> None:
    cfg = ExperimentConfig(model=ModelConfig(hidden=8, layers=1))
    from asr.model import AcousticModel

    model = AcousticModel(cfg.model)
    path = tmp_path / "last.pt"
    save_checkpoint(path, model, cfg, Vocabulary())
    before = path.read_bytes()

    def failing_save(obj, f, *args, **kwargs):
        f.write(b"PK partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed: unexpected pos "
                           "1234 vs 5678")

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(CheckpointError) as err:
        save_checkpoint(path, model, cfg, Vocabulary())
    assert "cannot write checkpoint (" in str(err.value) and "the previous checkpoint there is intact" in str(err.value)
    assert path.read_bytes() == before and not list(tmp_path.glob(".*tmp*"))


# --- 4. folders that cannot be read -------------------------------------------------------------


@pytest.fixture
def refuse_folder(monkeypatch):
    """Make a folder unreadable: chmod 000, and, for root (whom permissions do not stop), the
    same refusal from the system call that lists it."""
    refused: list[Path] = []
    real_scandir = os.scandir

    def scandir(path="."):
        if any(Path(os.fsdecode(path)) == p for p in refused):
            raise PermissionError(13, "Permission denied", os.fsdecode(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)

    def refuse(folder: Path) -> None:
        folder.chmod(0)
        refused.append(folder)

    yield refuse
    for folder in refused:
        folder.chmod(0o755)


def test_4_unreadable_folders_are_reported_not_dropped(tmp_path: Path, refuse_folder, random_checkpoint: Path,
                                                       capsys) -> None:
    for speaker in ("1", "2"):
        chapter = tmp_path / "subset" / speaker / "10"
        chapter.mkdir(parents=True)
        sf.write(chapter / f"{speaker}-10-0000.wav", _speechlike(1.0, int(speaker)), 16_000)
        (chapter / f"{speaker}-10.trans.txt").write_text(f"{speaker}-10-0000 HELLO\n")
    refuse_folder(tmp_path / "subset" / "2")
    utterances, skipped = read_librispeech(tmp_path / "subset")
    assert [u.id for u in utterances] == ["1-10-0000"]
    assert [(s.path, s.reason.split(";")[0]) for s in skipped] == [
        (str(tmp_path / "subset" / "2"), "cannot read folder (Permission denied)")]
    assert main(["prepare", str(tmp_path / "subset"), "--out", str(tmp_path / "m.jsonl")]) == 1
    assert "skipped 1 (1 x cannot read folder" in capsys.readouterr().out

    inputs, errors = find_inputs([str(tmp_path / "subset")])
    assert [Path(i.path).name for i in inputs] == ["1-10-0000.wav"]
    assert errors == [f"{tmp_path / 'subset' / '2'}: cannot read folder (Permission denied); its files are not "
                      "transcribed"]
    assert main(["transcribe", "--model", str(random_checkpoint), str(tmp_path / "subset")]) == 1
    assert capsys.readouterr().err.splitlines()[-1] == "transcribed 1 file, 1 failed"


# --- 5. earlier work is not overwritten or mixed ---------------------------------------------------


def test_5_an_earlier_run_is_neither_overwritten_nor_resumed_with_other_features(manifests: dict,
                                                                                  tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    train(_config(manifests), exp, progress=False)
    best = (exp / "best.pt").read_bytes()
    with pytest.raises(TrainingError, match="already holds a training run .*--resume.*--overwrite"):
        train(_config(manifests), exp, progress=False)
    assert (exp / "best.pt").read_bytes() == best

    other = _config(manifests, epochs=2)
    other = dataclasses.replace(other, features=dataclasses.replace(other.features, win_length=320),
                                model=dataclasses.replace(other.model))
    with pytest.raises(TrainingError, match=r"other settings \(features.win_length\)"):
        train(other, exp, resume=True, progress=False)
    state = train(_config(manifests), exp, overwrite=True, progress=False)
    assert state.epoch == 1 and (exp / "best.pt").exists()
    assert [json.loads(line)["kind"] for line in (exp / "metrics.jsonl").read_text().splitlines()].count("dev") == 1


# --- 6. resume is exact with dropout and SpecAugment -----------------------------------------------


def test_6_resume_is_exact_with_dropout_and_spec_augment(manifests: dict, tmp_path: Path, monkeypatch) -> None:
    """A run stopped just after a mid-epoch save and resumed ends with the weights of one never
    stopped, to 1e-5, with dropout and SpecAugment drawing random numbers all along (the same
    with a real SIGKILL: test_faults.py)."""
    import asr.train

    cfg = _config(manifests, epochs=2, checkpoint_every=5)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dropout=0.3),
                              train=dataclasses.replace(cfg.train, spec_augment=True),
                              spec_augment=SpecAugmentConfig(freq_masks=2, freq_width=10, time_masks=2))
    train(cfg, tmp_path / "whole", progress=False)

    def save_then_stop(path, *args, **kwargs):
        save_checkpoint(path, *args, **kwargs)
        if Path(path).name == "last.pt":
            raise KeyboardInterrupt  # as if killed right after its first save, 5 steps in

    monkeypatch.setattr(asr.train, "save_checkpoint", save_then_stop)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "split", progress=False)
    monkeypatch.undo()
    assert read_checkpoint(tmp_path / "split" / "last.pt")["state"]["epoch_batches"] == 5
    train(cfg, tmp_path / "split", resume=True, progress=False)
    expected = read_checkpoint(tmp_path / "whole" / "last.pt")["model"]
    for name, tensor in read_checkpoint(tmp_path / "split" / "last.pt")["model"].items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-5, msg=name)


def test_13_resume_drops_the_metric_rows_logged_after_the_checkpoint(manifests: dict, tmp_path: Path) -> None:
    exp = tmp_path / "exp"
    train(_config(manifests, epochs=1), exp, progress=False)
    rows = (exp / "metrics.jsonl").read_text().splitlines()
    last_step = json.loads(rows[-1])["step"]
    # What a run killed after its last save leaves: rows of steps the resumed run does again.
    with (exp / "metrics.jsonl").open("a") as f:
        f.write(json.dumps({"kind": "train", "epoch": 2, "step": last_step + 2, "loss": 1.0}) + "\n")
    train(_config(manifests, epochs=2), exp, resume=True, progress=False)
    steps = [(json.loads(line)["kind"], json.loads(line)["step"]) for line in (exp / "metrics.jsonl").read_text()
             .splitlines()]
    assert len(steps) == len(set(steps))  # no step logged twice


# --- 7. bounded cost: a header that lies ------------------------------------------------------


def _wav_claiming(rate: int, samples: int) -> bytes:
    data = (np.random.default_rng(0).standard_normal(samples) * 1000).astype("<i2").tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVEfmt " + struct.pack(
        "<IHHIIHH", 16, 1, 1, rate, 2 * rate, 2, 16) + b"data" + struct.pack("<I", len(data))
    return header + data


def test_7_a_header_claiming_1_hz_is_refused_not_expanded(tmp_path: Path) -> None:
    path = tmp_path / "onehz.wav"
    path.write_bytes(_wav_claiming(1, 200_000))  # 400 KB that would be 13 GB at 16 kHz
    for read in (load_audio, lambda p: list(stream_audio(p))):
        with pytest.raises(AudioError, match="sample rate 1 Hz is outside 4000-768000 Hz"):
            read(path)
    chapter = tmp_path / "subset" / "1" / "2"
    chapter.mkdir(parents=True)
    (chapter / "1-2-0000.wav").write_bytes(path.read_bytes())
    sf.write(chapter / "1-2-0001.wav", _speechlike(1.0, 0), 16_000)
    (chapter / "1-2.trans.txt").write_text("1-2-0000 A\n1-2-0001 B\n")
    utterances, skipped = read_librispeech(tmp_path / "subset")
    assert [u.id for u in utterances] == ["1-2-0001"] and "sample rate 1 Hz" in skipped[0].reason


def test_7_whole_reads_are_bounded_and_prepare_streams(tmp_path: Path, monkeypatch) -> None:
    import asr.audio

    monkeypatch.setattr(asr.audio, "MAX_LOAD_SECONDS", 2.0)
    path = tmp_path / "long.wav"
    sf.write(path, _speechlike(3.0, 0), 16_000)
    with pytest.raises(AudioError, match="too long to read whole .*; asr transcribe streams"):
        load_audio(path)
    assert sum(len(b) for b in stream_audio(path)) == 48_000  # streaming reads any length


# --- 8. settings that would hang --------------------------------------------------------------


@pytest.mark.parametrize(("window", "overlap"), [(1e-6, 0.0), (20.0, 19.99999), (20.0, 20.0), (math.nan, 0.0)])
def test_8_windows_that_would_never_end_are_refused(window: float, overlap: float) -> None:
    with pytest.raises(ValueError, match="must be at least 1 s"):
        TranscribeOptions(window_seconds=window, overlap_seconds=overlap)


def test_8_a_glob_through_a_symlink_loop_ends(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    sf.write(tmp_path / "a" / "x.wav", np.zeros(160, np.float32), 16_000)
    (tmp_path / "a" / "loop").symlink_to(tmp_path)
    (tmp_path / "a" / "loop2").symlink_to(tmp_path / "a")
    inputs, errors = find_inputs([f"{tmp_path}/**/*.wav"])
    assert [i.path for i in inputs] == [str(tmp_path / "a" / "x.wav")] and not errors
    inputs, _ = find_inputs([str(tmp_path)])
    assert [i.path for i in inputs] == [str(tmp_path / "a" / "x.wav")]


# --- 9. out-of-range settings are one line -------------------------------------------------------


@pytest.mark.parametrize("override", [
    "train.lr=0", "train.lr=nan", "train.max_batch_seconds=0", "train.grad_accum=0", "train.num_workers=-1",
    "train.stats_utterances=0", "train.log_every=0", "train.weight_decay=-0.1", "train.epochs=0",
    "train.amp='fast'", "features.hop_length=0", "features.n_fft=256", "features.sample_rate=8000",
    "features.fmax=9000.0", "spec_augment.time_width=1.5", "data.max_duration=0", "model.dropout=1.5",
    # values that pass a lower bound but would stall or exhaust the machine
    "features.n_fft=10000000", "spec_augment.time_masks=1000000", "train.num_workers=1000",
])
def test_9_out_of_range_settings_name_their_key(tmp_path: Path, override: str, capsys) -> None:
    conf = tmp_path / "c.toml"
    conf.write_text(f'[data]\ntrain_manifests = ["{tmp_path / "m.jsonl"}"]\n')
    code = main(["train", "--config", str(conf), "--exp-dir", str(tmp_path / "exp"), "--set", override])
    err = capsys.readouterr().err
    key = override.split("=")[0].split(".")[1]
    assert code == 2 and err.count("\n") == 1 and f"{key} = " in err and "must be" in err, err


@pytest.mark.parametrize(("args", "message"), [
    (["prepare", ".", "--out", "m.jsonl", "--jobs", "-1"], "--jobs: -1: must be at least 1"),
    (["evaluate", "--model", "m.pt", "--manifest", "m.jsonl", "--device", "meta"], "unknown device 'meta'"),
    (["evaluate", "--model", "m.pt", "--manifest", "m.jsonl", "--alpha", "nan"], "--alpha: nan: must be a finite"),
    (["transcribe", "--model", "m.pt", "x.wav", "--beta", "inf"], "--beta: inf: must be a finite number"),
    (["validate", "m.jsonl", "--jobs", "0"], "--jobs: 0: must be at least 1"),
    (["synth", "--out", "x", "--jobs", "100000"], "--jobs: 100000: must be at most 256"),
    (["evaluate", "--model", "m.pt", "--manifest", "m.jsonl", "--beam-width", "1000000000"], "must be at most 1024"),
    (["lm", "build", "--text", "t", "--out", "o", "--order", "40"], "--order: 40: must be at most 6"),
])
def test_9_bad_options_are_one_line(tmp_path: Path, random_checkpoint: Path, args: list[str], message: str,
                                   capsys) -> None:
    args = [str(random_checkpoint) if a == "m.pt" else a for a in args]
    try:
        code = main(args)
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    err = capsys.readouterr().err
    # argparse prints its usage first; the error is the last line, as with every argparse tool.
    assert code == 2 and message in err.splitlines()[-1] and "Traceback" not in err, err


def test_9_files_that_are_not_utf8_are_one_line(tmp_path: Path) -> None:
    sums = tmp_path / "md5sum.txt"
    sums.write_bytes(b"\xff\xfe not text")
    with pytest.raises(DownloadError, match="not a text file in UTF-8"):
        read_md5sum_file(sums)
    text = tmp_path / "lm.txt"
    text.write_bytes(b"HELLO WORLD\nCAF\xe9 OLE\n")
    result = _cli("lm", "build", "--text", text, "--order", "2", "--out", tmp_path / "lm.arpa")
    assert result.returncode == 2 and f"{text}:2: not UTF-8 text (byte 0xe9" in result.stderr


def test_9_damaged_checkpoints_and_onnx_files_are_one_line(tmp_path: Path, random_checkpoint: Path) -> None:
    raw = torch.load(random_checkpoint, weights_only=True)
    damages = {
        "config-string": {**raw, "config": "not a config"},
        "section-list": {**raw, "config": {**raw["config"], "model": [1, 2]}},
        "hidden-huge": {**raw, "config": {**raw["config"], "model": {**raw["config"]["model"], "hidden": 10**12}}},
        "vocab-numbers": {**raw, "vocab": [1, 2, 3]},
        "weights-list": {**raw, "model": [1, 2]},
        "lr-negative": {**raw, "config": {**raw["config"], "train": {**raw["config"]["train"], "lr": -1.0}}},
    }
    for name, payload in damages.items():
        path = tmp_path / f"{name}.pt"
        torch.save(payload, path)
        with pytest.raises(CheckpointError):
            load_model(path)
    onnx = tmp_path / "bad.onnx"
    onnx.write_bytes(b"\x08\x07" + bytes(200))
    result = _cli("transcribe", "--model", onnx, tmp_path / "x.wav")
    assert result.returncode == 2 and "bad.onnx" in result.stderr and result.stderr.count("\n") == 1


def test_9_a_model_too_big_for_memory_is_one_line(manifests: dict, tmp_path: Path) -> None:
    cfg = _config(manifests)
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, hidden=10**8))
    with pytest.raises(TrainingError, match="cannot build the model .*model.hidden = 100000000"):
        train(cfg, tmp_path / "e", progress=False)


def test_9_training_where_every_file_is_unreadable_is_one_line(manifests: dict, tmp_path: Path) -> None:
    rows = [{**r, "audio_filepath": str(tmp_path / f"gone-{i}.wav")} for i, r in enumerate(manifests["rows"])]
    gone = tmp_path / "gone.jsonl"
    gone.write_text("".join(json.dumps(r) + "\n" for r in rows))
    cfg = _config(manifests)
    with pytest.raises(TrainingError, match="none of the 4 training utterances sampled for feature statistics"):
        train(dataclasses.replace(cfg, data=DataConfig(train_manifests=(str(gone),))), tmp_path / "e", progress=False)


# --- 10. garbage is refused, not scored ----------------------------------------------------------


def test_10_manifest_garbage_is_refused_with_its_line(tmp_path: Path) -> None:
    base = {"id": "a", "audio_filepath": "a.wav", "duration": 1.0, "text": "HELLO", "speaker": "s"}
    for change, message in (({"text": None}, "text must be a string"), ({"speed": 1e-9}, "speed must be from 0.5"),
                            ({"duration": "long"}, "duration must be a number")):
        path = tmp_path / "m.jsonl"
        path.write_text(json.dumps(base) + "\n" + json.dumps({**base, **change}) + "\n")
        with pytest.raises(ManifestError, match=rf"m.jsonl:2: .*{message}"):
            read_manifest(path)


def test_10_evaluate_json_is_json_when_a_rate_is_undefined(tmp_path: Path, random_checkpoint: Path) -> None:
    sf.write(tmp_path / "a.wav", _speechlike(1.0, 0), 16_000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio_filepath": str(tmp_path / "a.wav"), "duration": 1.0,
                                    "text": "", "speaker": "s"}) + "\n")
    result = _cli("evaluate", "--model", random_checkpoint, "--manifest", manifest, "--json",
                  "--out-dir", tmp_path / "out")
    summary = json.loads(result.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))
    assert summary["words"] == 0 and (summary["wer"] is None or summary["wer"] == 0.0)


# --- 11. long file names ----------------------------------------------------------------------


def test_11_a_long_file_name_does_not_stop_the_files_after_it(tmp_path: Path, random_checkpoint: Path,
                                                              capsys) -> None:
    names = ["x" * 249 + ".wav", "b.wav"]  # 253 bytes: its outputs' names are at the limit
    for i, name in enumerate(names):
        sf.write(tmp_path / name, _speechlike(0.5, i), 16_000)
    out = tmp_path / "out"
    assert main(["transcribe", "--model", str(random_checkpoint), *[str(tmp_path / n) for n in names],
                 "--output-dir", str(out), "--format", "txt"]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(["x" * 249 + ".txt", "b.txt"])


# --- 12. results are not thrown away ----------------------------------------------------------


@contextlib.contextmanager
def _read_only(folder: Path):
    """``folder`` on a read-only file system: bind-mounted onto itself, read-only (needs root,
    as CI and the development machine have; skips elsewhere)."""
    if subprocess.run(["mount", "--bind", str(folder), str(folder)], capture_output=True).returncode:
        pytest.skip("cannot bind-mount here")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot remount read-only here")
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def test_12_tune_lm_and_evaluate_fail_before_the_work_not_after(tmp_path: Path, random_checkpoint: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    model = models / "model.pt"
    model.write_bytes(random_checkpoint.read_bytes())
    sf.write(tmp_path / "a.wav", _speechlike(1.0, 0), 16_000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio_filepath": str(tmp_path / "a.wav"), "duration": 1.0,
                                    "text": "HELLO", "speaker": "s"}) + "\n")
    lm = tmp_path / "lm.arpa"
    lm.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1 <s>\n-1 </s>\n-1 HELLO\n\n\\end\\\n")
    with _read_only(models):
        for args in (["tune-lm", "--model", model, "--manifest", manifest, "--lm", lm],
                     ["evaluate", "--model", model, "--manifest", manifest]):
            result = _cli(*args)
            assert result.returncode == 2 and "Read-only file system" in result.stderr, result.stderr
            assert result.stdout == ""  # refused at once: nothing was computed to be lost


# --- 13. messages that mislead ----------------------------------------------------------------------


def test_13_a_fifo_is_not_called_missing_and_is_not_read(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.wav"
    os.mkfifo(fifo)
    with pytest.raises(AudioError, match="is not a regular file"):
        load_audio(fifo)  # would wait for a writer forever if opened
    from asr.validate import validate_manifests

    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a", "audio_filepath": str(fifo), "duration": 1.0, "text": "A",
                                    "speaker": "s"}) + "\n")
    _, problems = validate_manifests([manifest])
    assert [p.kind for p in problems] == ["unreadable audio"] and "not a regular file" in problems[0].detail


def test_13_a_fifo_given_as_config_or_manifest_is_refused_not_waited_on(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(fifo)
    with pytest.raises(ManifestError, match="not a regular file"):
        read_manifest(fifo)
    (tmp_path / "latin1.toml").write_bytes(b"# caf\xe9\n[train]\nepochs = 1\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(tmp_path / "latin1.toml")


def test_13_a_file_name_that_is_not_utf8_is_read(tmp_path: Path, random_checkpoint: Path) -> None:
    name = os.fsdecode(b"caf\xe9.wav")
    sf.write(tmp_path / "plain.wav", _speechlike(1.0, 0), 16_000)
    os.replace(tmp_path / "plain.wav", tmp_path / name)
    assert len(load_audio(tmp_path / name)) == 16_000
    result = subprocess.run([sys.executable, "-m", "asr", "transcribe", "--model", str(random_checkpoint),
                             str(tmp_path)], capture_output=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split(b"\t")[0] == os.fsencode(tmp_path / name)


def test_13_epochs_zero_claims_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="epochs = 0: must be a number >= 1"):
        load_config(_toml(tmp_path, "[train]\nepochs = 0\n"))


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path


def test_13_a_symlinked_librispeech_folder_is_extracted_into(tmp_path: Path) -> None:
    source = tmp_path / "src" / "LibriSpeech" / "dev-clean" / "1"
    source.mkdir(parents=True)
    (source / "1.trans.txt").write_text("1 HELLO\n")
    archive = tmp_path / "dev-clean.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(tmp_path / "src" / "LibriSpeech", arcname="LibriSpeech")
    big_disk = tmp_path / "big" / "LibriSpeech"
    big_disk.mkdir(parents=True)
    dest = tmp_path / "data"
    dest.mkdir()
    (dest / "LibriSpeech").symlink_to(big_disk)
    safe_extract(archive, dest)
    assert (big_disk / "dev-clean" / "1" / "1.trans.txt").read_text() == "1 HELLO\n"

    evil = tmp_path / "evil.tar.gz"
    with tarfile.open(evil, "w:gz") as tar:
        info = tarfile.TarInfo("LibriSpeech/../../escape.txt")
        tar.addfile(info)
    with pytest.raises(DownloadError, match="refusing to extract"):
        safe_extract(evil, dest)
    assert not (tmp_path / "escape.txt").exists()


def test_13_a_full_disk_during_a_download_is_not_retried_as_a_network_fault(tmp_path: Path) -> None:
    from mirror import MirrorServer
    from test_faults import _fill, _tmpfs

    served = tmp_path / "served"
    served.mkdir()
    (served / "big.tar.gz").write_bytes(os.urandom(600_000))
    with _tmpfs(tmp_path / "disk", 1024) as disk, MirrorServer(served) as server:
        _fill(disk, 200_000)
        with pytest.raises(DownloadError) as err:
            download_file(server.url + "big.tar.gz", disk / "big.tar.gz", None, progress=False)
        assert "cannot write the download (No space left on device)" in str(err.value)
        assert len(server.gets("big.tar.gz")) == 1  # refused at once: no retry, no backoff
