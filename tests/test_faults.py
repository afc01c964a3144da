"""Fault and bad-input suite: nothing crashes, nothing is lost, nothing untrusted runs.

One LibriSpeech-layout chapter holds three good espeak-ng utterances and one file (or
transcript line) of each bad kind in ``BAD``. Each kind goes through ``asr prepare``,
``asr transcribe`` and ``asr evaluate`` (and ``asr train`` where it matters), driven
through the real CLI. docs/reliability.md lists every fault, what the user sees and the
test here (or elsewhere) that proves it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from asr.audio import SAMPLE_RATE, load_audio
from asr.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from asr.cli import main
from asr.config import DataConfig, ExperimentConfig, TrainConfig
from asr.corpora.synthetic.corpus import SynthConfig, synthesize_corpus
from asr.data import read_manifest
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.train import TrainingError, train

REPO = Path(__file__).resolve().parents[1]
LONG_TEXT = "THE WOMAN WILL KNOW FIFTEEN HOUSES NEAR THE HOUSE"
MESSY_TEXT = "Café №42, naïve—“quoted” text!"

# utterance number -> (kind, what prepare says about it: a skip reason, or None if prepared)
BAD = {
    100: ("missing file", "audio file listed in transcript is missing"),
    101: ("empty file", "file is empty (0 bytes)"),
    102: ("zero-length audio", "audio has no samples"),
    103: ("truncated FLAC", "cannot decode audio"),
    104: ("text file renamed .wav", "cannot decode audio"),
    105: ("8 kHz stereo", None),
    106: ("48 kHz 24-bit", None),
    107: ("float WAV with NaN samples", "audio holds NaN or infinite samples"),
    108: ("pure silence", None),
    109: ("1-hour file", None),
    110: ("digits, punctuation, non-ASCII letters", None),
    111: ("transcript not valid UTF-8", "transcript line is not valid UTF-8"),
    112: ("label longer than its frames can carry", None),
}
UNREADABLE = [100, 101, 102, 103, 104, 107]  # the kinds whose audio cannot be read


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng not installed")
    root = tmp_path_factory.mktemp("faults")
    config = SynthConfig(text="generator", train_utterances=3, dev_utterances=0, test_utterances=0,
                         test_indomain_utterances=0, test_engine_utterances=0, train_speakers=1, dev_speakers=0,
                         test_speakers=0, test_indomain_speakers=0, test_engine_speakers=0, noise=0.0,
                         warp_share=0.0, tempo_share=0.0, room_share=0.0, max_words=5, seed=5, jobs=1)
    synthesize_corpus(root / "synth", config, progress=False)
    (trans,) = (root / "synth" / "train").glob("*/*/*.trans.txt")
    chapter = trans.parent
    prefix = trans.name.removesuffix(".trans.txt")
    good = sorted(chapter.glob("*.flac"))
    speech = load_audio(good[0])

    def path(n: int, suffix: str = ".flac") -> Path:
        return chapter / f"{prefix}-{n:04d}{suffix}"

    lines = [b"%s-%04d %s" % (prefix.encode(), n, b"HELLO THERE") for n in BAD]
    path(101).write_bytes(b"")
    sf.write(path(102, ".wav"), np.zeros(0, np.float32), SAMPLE_RATE)
    whole = good[1].read_bytes()
    path(103).write_bytes(whole[: len(whole) // 3])
    path(104, ".wav").write_text("this is a text file, not audio\n" * 40)
    stereo = soxr.resample(speech, SAMPLE_RATE, 8000)
    sf.write(path(105, ".wav"), np.stack([stereo, 0.5 * stereo], axis=1), 8000, subtype="PCM_16")
    sf.write(path(106, ".wav"), soxr.resample(speech, SAMPLE_RATE, 48000), 48000, subtype="PCM_24")
    nan = speech.copy()
    nan[100:200] = np.nan
    sf.write(path(107, ".wav"), nan, SAMPLE_RATE, subtype="FLOAT")
    sf.write(path(108), np.zeros(2 * SAMPLE_RATE, np.float32), SAMPLE_RATE)
    # One hour: the utterance, then silence, every 10 s.
    block = np.zeros(10 * SAMPLE_RATE, np.float32)
    block[: len(speech)] = speech
    sf.write(path(109), np.tile(block, 360), SAMPLE_RATE, subtype="PCM_16")
    shutil.copy(good[2], path(110))
    lines[10] = f"{prefix}-0110 {MESSY_TEXT}".encode()
    shutil.copy(good[2], path(111))
    lines[11] = b"%s-0111 CAF\xe9 AU LAIT" % prefix.encode()
    sf.write(path(112), speech[: int(0.3 * SAMPLE_RATE)], SAMPLE_RATE)
    lines[12] = f"{prefix}-0112 {LONG_TEXT}".encode()
    with trans.open("ab") as f:
        f.write(b"\n".join(lines) + b"\n")

    # An untrained model: these tests are about what happens to files, not accuracy.
    model_cfg = ExperimentConfig(model=ModelConfig(hidden=16, layers=1))
    model = AcousticModel(model_cfg.model)
    save_checkpoint(root / "model.pt", model, model_cfg, Vocabulary())
    return {"root": root, "corpus": root / "synth" / "train", "chapter": chapter, "prefix": prefix, "path": path,
            "good": good, "model": root / "model.pt"}


@pytest.fixture(scope="module")
def prepared(corpus) -> tuple[Path, subprocess.CompletedProcess]:
    manifest = corpus["root"] / "all.jsonl"
    result = _cli("prepare", corpus["corpus"], "--out", manifest)
    return manifest, result


def _cli(*args, timeout: float = 240) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asr", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO)


def _one_line_errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("asr: error: ")]


# --- bad inputs: prepare -------------------------------------------------------------------------


@pytest.mark.slow
def test_prepare_skips_each_bad_kind_with_its_reason_and_keeps_the_rest(corpus, prepared):
    manifest, result = prepared
    assert result.returncode == 1, result.stderr  # something was skipped
    assert "Traceback" not in result.stderr
    rows = {u.id: u for u in read_manifest(manifest)}
    prefix = corpus["prefix"]
    expected_kept = {f"{prefix}-{n:04d}" for n, (_, reason) in BAD.items() if reason is None}
    assert set(rows) == {p.stem for p in corpus["good"]} | expected_kept
    skip_lines = [line for line in result.stderr.splitlines() if line.startswith("asr: skipped ")]
    assert len(skip_lines) == sum(reason is not None for _, reason in BAD.values())
    for n, (kind, reason) in BAD.items():
        if reason is not None:
            (line,) = [s for s in skip_lines if f"{prefix}-{n:04d}" in s]
            assert reason in line, (kind, line)
    # Documented normalisations of what was kept.
    duration = len(load_audio(corpus["good"][0])) / SAMPLE_RATE
    assert rows[f"{prefix}-0105"].duration == pytest.approx(duration, abs=0.01)  # 8 kHz stereo
    assert rows[f"{prefix}-0106"].duration == pytest.approx(duration, abs=0.01)  # 48 kHz 24-bit
    assert rows[f"{prefix}-0109"].duration == pytest.approx(3600.0)
    assert rows[f"{prefix}-0110"].text == "CAFE NO FORTY TWO NAIVE QUOTED TEXT"
    assert rows[f"{prefix}-0108"].text == "HELLO THERE"  # silence is audio; nothing to refuse
    summary = result.stdout.strip().splitlines()[-1]
    assert f"skipped {len(skip_lines)} (" in summary and "2 x cannot decode audio" in summary


def test_prepare_refuses_a_folder_that_is_not_a_corpus(tmp_path):
    result = _cli("prepare", tmp_path / "nowhere", "--out", tmp_path / "m.jsonl")
    assert result.returncode == 2 and len(_one_line_errors(result.stderr)) == 1
    (tmp_path / "empty").mkdir()
    result = _cli("prepare", tmp_path / "empty", "--out", tmp_path / "m.jsonl")
    assert result.returncode == 1 and "no SPEAKER-CHAPTER.trans.txt files found" in result.stderr


# --- bad inputs: transcribe ----------------------------------------------------------------------


@pytest.mark.slow
def test_transcribe_reports_each_bad_file_and_transcribes_the_rest(corpus, tmp_path):
    out = tmp_path / "out"
    missing = corpus["path"](100)
    result = _cli("transcribe", "--model", corpus["model"], corpus["chapter"], missing, "--output-dir", out,
                  "--format", "json")
    assert result.returncode == 1
    errors = _one_line_errors(result.stderr)
    audio = [p for p in corpus["chapter"].iterdir() if p.suffix in (".flac", ".wav")]
    bad = {corpus["path"](n, s).name for n in UNREADABLE for s in (".flac", ".wav")}
    good = [p for p in audio if p.name not in bad]
    assert len(errors) == len(UNREADABLE)  # the missing file and each unreadable one
    assert any(str(missing) in e and "no such file or folder" in e for e in errors)
    outputs = {p.stem for p in out.glob("*.json")}
    assert outputs == {p.stem for p in good}
    hour = json.loads((out / f"{corpus['prefix']}-0109.json").read_text())
    assert hour["duration"] == pytest.approx(3600.0)
    silence = json.loads((out / f"{corpus['prefix']}-0108.json").read_text())
    assert silence["duration"] == pytest.approx(2.0)
    assert f"transcribed {len(good)} files, {len(UNREADABLE)} failed" in result.stderr


# --- bad inputs: evaluate ------------------------------------------------------------------------


@pytest.mark.slow
def test_evaluate_scores_the_readable_utterances_and_lists_the_rest(corpus, prepared, tmp_path):
    manifest, _ = prepared
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows = [r for r in rows if not r["id"].endswith("-0109")]  # the hour: see the transcribe test
    for n in UNREADABLE:
        path = next((p for s in (".flac", ".wav") if (p := corpus["path"](n, s)).exists()), corpus["path"](n))
        rows.append({"id": path.stem, "audio_filepath": str(path), "duration": 1.0, "text": "HELLO THERE"})
    bad_manifest = tmp_path / "bad.jsonl"
    bad_manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "decode"
    result = _cli("evaluate", "--model", corpus["model"], "--manifest", bad_manifest, "--out-dir", out)
    assert result.returncode == 1
    assert len(_one_line_errors(result.stderr)) == len(UNREADABLE)
    summary = json.loads((out / "wer.json").read_text())
    assert summary["utterances"] == len(rows) - len(UNREADABLE) and summary["skipped"] == len(UNREADABLE)
    skipped = (out / "skipped.txt").read_text().splitlines()
    assert sorted(line.split()[0] for line in skipped) == sorted(f"{corpus['prefix']}-{n:04d}" for n in UNREADABLE)
    assert f"{len(UNREADABLE)} utterances skipped" in result.stderr


def test_evaluate_with_no_readable_audio_fails_in_one_line(corpus, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"id": "a-1-1", "audio_filepath": str(corpus["path"](101)), "duration": 1.0,
                                    "text": "HI"}) + "\n")
    result = _cli("evaluate", "--model", corpus["model"], "--manifest", manifest, "--out-dir", tmp_path / "d")
    assert result.returncode == 1
    assert _one_line_errors(result.stderr)[-1].endswith("no utterance's audio could be read (1 failed)")


def test_manifest_that_is_not_utf8_is_refused_in_one_line(corpus, tmp_path):
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"id": "a-1-1", "audio_filepath": "x.flac", "duration": 1.0, "text": "CAF\xe9"}\n')
    result = _cli("evaluate", "--model", corpus["model"], "--manifest", manifest)
    assert result.returncode == 2
    (error,) = _one_line_errors(result.stderr)
    assert f"{manifest}:1: not a manifest row (UnicodeDecodeError" in error


# --- bad inputs: train -----------------------------------------------------------------------------


def _train_config(manifest: Path, epochs: int, **train) -> ExperimentConfig:
    return ExperimentConfig(
        data=DataConfig(train_manifests=(str(manifest),), max_duration=30.0),
        model=ModelConfig(hidden=32, layers=1, dropout=0.0),
        train=TrainConfig(epochs=epochs, max_batch_seconds=8.0, lr=3e-3, warmup_steps=5, spec_augment=False,
                          num_workers=0, stats_utterances=10, log_every=5, **train),
    )


def _config_file(path: Path, cfg: ExperimentConfig) -> Path:
    """``cfg`` as the TOML file ``asr train --config`` reads: the values that differ from the defaults."""
    defaults, lines = ExperimentConfig(), []
    for section in ("data", "model", "train"):
        ours, base = asdict(getattr(cfg, section)), asdict(getattr(defaults, section))
        lines += [f"[{section}]"] + [f"{key} = {json.dumps(value)}" for key, value in ours.items() if value != base[key]]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.slow
def test_training_leaves_out_what_it_cannot_use_and_says_so(corpus, prepared, tmp_path, capsys):
    manifest, _ = prepared
    # A prepared file that disappears before training: read failures are found while training.
    gone = tmp_path / "gone.flac"
    shutil.copy(corpus["good"][0], gone)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    rows.append({**rows[0], "id": "gone-1-1", "audio_filepath": str(gone)})
    train_manifest = tmp_path / "train.jsonl"
    train_manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    gone.unlink()
    state = train(_train_config(train_manifest, epochs=1), tmp_path / "exp", progress=False)
    assert state.epoch == 1 and state.step > 0
    out, err = capsys.readouterr()
    assert "utterances left out of training: 1 too long, 1 with a transcript longer than its audio's frames can carry" in out
    assert f"{gone}: no such file; utterance left out of training" in err
    assert "1 training utterance(s) could not be read" in err


# --- killed training -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def train_manifest(corpus, tmp_path_factory) -> Path:
    """The three good utterances, 40 times over: each epoch is ~40 steps."""
    root = tmp_path_factory.mktemp("kill")
    rows = [json.dumps({"id": p.stem, "audio_filepath": str(p), "duration": sf.info(str(p)).duration,
                        "text": "HELLO THERE", "speaker": "1"}) for p in corpus["good"]]
    path = root / "train.jsonl"
    path.write_text("".join(row + "\n" for row in rows * 40))
    return path


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return read_checkpoint(path)["model"]


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_ends_like_an_uninterrupted_run(train_manifest, tmp_path):
    cfg = _train_config(train_manifest, epochs=3, checkpoint_every=10)
    # Dropout and SpecAugment on, as in the demo: both draw random numbers every step.
    cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, dropout=0.15),
                              train=dataclasses.replace(cfg.train, spec_augment=True, amp="off"))
    # fp32: bf16 autocast (train.amp = "auto" on a CPU with native bf16) gave the resumed run
    # other weights than this in-process reference (observed 2026-12-06; the killed run is its
    # own process, with its own thread count, and oneDNN's bf16 LSTM is not bit-reproducible
    # across them), while resuming itself restores the same state in either precision.
    reference = train(cfg, tmp_path / "reference", progress=False)

    conf = _config_file(tmp_path / "c.toml", cfg)
    exp = tmp_path / "killed"
    command = [sys.executable, "-m", "asr", "train", "--config", str(conf), "--exp-dir", str(exp), "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    last = exp / "last.pt"
    deadline = time.monotonic() + 120
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "training ended before it could be killed"
    killed_at = read_checkpoint(last)["state"]  # a complete, loadable file
    # Killed in the first epoch, just after its first mid-epoch save (every 10 steps).
    assert killed_at["epoch"] == 0 and killed_at["step"] == killed_at["epoch_batches"] > 0
    assert killed_at["step"] % 10 == 0

    resumed = subprocess.run(command + ["--resume"], cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert resumed.returncode == 0, resumed.stderr
    assert (f"resumed from {last}: epoch 0 (+{killed_at['epoch_batches']} batches of the next), "
            f"step {killed_at['step']}") in resumed.stdout
    final = read_checkpoint(last)
    assert final["state"]["step"] == reference.step and final["state"]["epoch"] == 3
    assert not list(exp.glob(".*tmp*"))  # no half-written checkpoint left behind
    expected = _weights(tmp_path / "reference" / "last.pt")
    for name, tensor in final["model"].items():
        torch.testing.assert_close(tensor, expected[name], rtol=0, atol=1e-5, msg=name)


def test_resume_without_a_checkpoint_says_what_to_do(train_manifest, tmp_path):
    with pytest.raises(TrainingError, match="--resume given but .*last.pt does not exist; start without --resume"):
        train(_train_config(train_manifest, epochs=1), tmp_path, resume=True, progress=False)


def test_partial_checkpoint_of_a_killed_save_is_removed_on_start(train_manifest, tmp_path):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / ".last.pt.tmp12345").write_bytes(b"half a checkpoint")
    train(_train_config(train_manifest, epochs=1), exp, progress=False)
    assert not list(exp.glob(".*tmp*")) and (exp / "last.pt").exists()


# --- untrusted or mismatched checkpoints ------------------------------------------------------------


def test_checkpoint_with_another_vocabulary_is_refused(tmp_path, train_manifest):
    cfg = ExperimentConfig(model=ModelConfig(hidden=16, layers=1))
    model = AcousticModel(cfg.model)
    save_checkpoint(tmp_path / "m.pt", model, cfg, Vocabulary(Vocabulary().tokens + ("-",)))
    with pytest.raises(CheckpointError, match="model emits 29 tokens but the vocabulary has 30"):
        load_model(tmp_path / "m.pt")
    result = _cli("transcribe", "--model", tmp_path / "m.pt", tmp_path)
    assert result.returncode == 2 and "model emits 29 tokens" in _one_line_errors(result.stderr)[0]
    # Resuming a run whose last.pt was made with another vocabulary or model.
    exp = tmp_path / "exp"
    train(_train_config(train_manifest, epochs=1), exp, progress=False)
    raw = torch.load(exp / "last.pt", weights_only=True)
    raw["vocab"] = raw["vocab"][:-1]
    torch.save(raw, exp / "last.pt")
    with pytest.raises(TrainingError, match="another vocabulary"):
        train(_train_config(train_manifest, epochs=2), exp, resume=True, progress=False)
    train(_train_config(train_manifest, epochs=1), tmp_path / "exp2", progress=False)
    bigger = _train_config(train_manifest, epochs=2)
    bigger = ExperimentConfig(data=bigger.data, model=ModelConfig(hidden=48, layers=1, dropout=0.0), train=bigger.train)
    with pytest.raises(TrainingError, match=r"other settings \(model.hidden\)"):
        train(bigger, tmp_path / "exp2", resume=True, progress=False)


# --- disk full, read-only output ---------------------------------------------------------------------


@contextlib.contextmanager
def _tmpfs(path: Path, size_kb: int):
    """A real small file system (needs root, as CI and this machine have); skips elsewhere."""
    path.mkdir(parents=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({mount.stderr.strip()})")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(folder: Path, leave_bytes: int) -> None:
    """Fill the file system holding ``folder`` until about ``leave_bytes`` are free."""
    stats = os.statvfs(folder)
    free = stats.f_bavail * stats.f_frsize
    (folder / "filler").write_bytes(b"\0" * max(0, free - leave_bytes))


@pytest.mark.slow
def test_disk_full_while_training_keeps_the_previous_checkpoint(train_manifest, tmp_path):
    with _tmpfs(tmp_path / "disk", 4096) as disk:
        exp = disk / "exp"
        cfg = _train_config(train_manifest, epochs=1)
        train(cfg, exp, progress=False)
        before = (exp / "last.pt").read_bytes()
        _fill(disk, 64 * 1024)  # room for metric lines, not for a checkpoint
        conf = _config_file(tmp_path / "c.toml", _train_config(train_manifest, epochs=2))
        result = _cli("train", "--config", conf, "--exp-dir", exp, "--resume", "--quiet")
        assert result.returncode == 2
        (error,) = _one_line_errors(result.stderr)
        assert "cannot write checkpoint (No space left on device); the previous checkpoint there is intact" in error
        assert (exp / "last.pt").read_bytes() == before
        assert not list(exp.glob(".*tmp*"))


@pytest.mark.slow
def test_full_or_read_only_output_folders_give_one_line(corpus, prepared, tmp_path, capsys):
    manifest, _ = prepared
    short = tmp_path / "short.jsonl"
    short.write_text("".join(line + "\n" for line in manifest.read_text().splitlines()[:2]))
    small = tmp_path / "small" / "1" / "2"  # a corpus of one good utterance
    small.mkdir(parents=True)
    shutil.copy(corpus["good"][0], small / "1-2-0000.flac")
    (small / "1-2.trans.txt").write_text("1-2-0000 HELLO\n")

    def run(*args) -> tuple[int, list[str]]:
        code = main([str(a) for a in args])
        return code, _one_line_errors(capsys.readouterr().err)

    with _tmpfs(tmp_path / "disk", 1024) as disk:
        _fill(disk, 0)
        runs = {
            "transcribe": ("transcribe", "--model", corpus["model"], corpus["good"][0], "--output-dir", disk / "t",
                           "--format", "all"),
            "evaluate": ("evaluate", "--model", corpus["model"], "--manifest", short, "--out-dir", disk / "e"),
            "prepare": ("prepare", small.parents[1], "--out", disk / "m.jsonl"),
        }
        for name, args in runs.items():
            code, errors = run(*args)
            assert code == 2 and errors and "No space left on device" in errors[-1], (name, errors)
        (disk / "filler").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for name, args in runs.items():
            code, errors = run(*args)
            assert code == 2 and errors and "Read-only file system" in errors[-1], (name, errors)
        code, errors = run("train", "--config", REPO / "recipes/synthetic/conf/demo.toml", "--exp-dir", disk / "exp",
                           "--set", f'data.train_manifests=["{short}"]')
        assert code == 2 and "Read-only file system" in errors[-1]
