import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf

from asr.audio import AudioError, audio_duration, load_audio
from asr.corpora.librispeech import read_librispeech
from asr.data import BucketBatchSampler, read_manifest, write_manifest


def _sample_truth(sample_dir):
    truth = {}
    for trans in sample_dir.rglob("*.trans.txt"):
        for line in trans.read_text().splitlines():
            utt, text = line.split(" ", 1)
            flac = trans.parent / f"{utt}.flac"
            truth[utt] = (text, sf.info(str(flac)).frames / 16000, flac)
    return truth


def test_prepare_cli_on_real_librispeech_sample(sample_dir, tmp_path):
    manifest = tmp_path / "M.jsonl"
    out = subprocess.run(
        [sys.executable, "-m", "asr", "prepare", str(sample_dir), "--out", str(manifest)],
        capture_output=True, text=True, check=True,
    )
    assert "wrote 11 utterances" in out.stdout
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    truth = _sample_truth(sample_dir)
    assert len(rows) == 11 and {r["id"] for r in rows} == set(truth)
    for row in rows:
        text, duration, flac = truth[row["id"]]
        assert row["text"] == text
        assert row["duration"] == pytest.approx(duration, abs=1e-3)
        assert row["audio_filepath"] == str(flac.resolve())
        assert row["speaker"] == row["id"].split("-")[0]


def test_corrupt_and_empty_files_are_reported_and_skipped(sample_dir, tmp_path):
    corpus = tmp_path / "subset"
    shutil.copytree(sample_dir / "1089", corpus / "1089")
    chapter = corpus / "1089" / "134686"
    (chapter / "1089-134686-0000.flac").write_bytes(b"")  # empty
    good = (chapter / "1089-134686-0001.flac").read_bytes()
    (chapter / "1089-134686-0001.flac").write_bytes(good[: len(good) // 3])  # truncated FLAC
    utterances, skipped = read_librispeech(corpus)
    assert [u.id for u in utterances] == ["1089-134691-0000", "1089-134691-0001"]
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in skipped}
    assert set(reasons) == {"1089-134686-0000.flac", "1089-134686-0001.flac"}
    assert "empty" in reasons["1089-134686-0000.flac"]


def test_load_audio_resamples_and_mixes_down(tmp_path):
    t = np.arange(44100) / 44100
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), np.zeros_like(t)], axis=1)
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 44100, subtype="PCM_24")
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert len(wave) == 16000
    assert np.abs(wave).max() == pytest.approx(0.25, abs=0.01)
    assert audio_duration(path) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("content", "reason"),
    [(None, "no such file"), (b"", "empty"), (b"this is text, not audio", "cannot decode")],
)
def test_load_audio_errors_name_file_and_reason(tmp_path, content, reason):
    path = tmp_path / "x.wav"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioError) as err:
        load_audio(path)
    assert str(path) in str(err.value) and reason in str(err.value)
    assert "\n" not in str(err.value)


def test_non_finite_audio_is_refused(tmp_path):
    path = tmp_path / "nan.wav"
    sf.write(path, np.array([0.0, np.nan, 0.1], dtype=np.float32), 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        load_audio(path)


def test_manifest_round_trip(sample_dir, tmp_path):
    utterances, _ = read_librispeech(sample_dir)
    write_manifest(utterances, tmp_path / "m.jsonl")
    assert read_manifest(tmp_path / "m.jsonl") == utterances


def test_bucket_sampler_budget_and_coverage():
    durations = [1.0 + (i * 7919 % 100) / 10 for i in range(500)]
    sampler = BucketBatchSampler(durations, max_seconds=40.0, seed=3)
    batches = list(sampler)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for batch in batches:
        assert len(batch) == 1 or max(durations[i] for i in batch) * len(batch) <= 40.0
    sampler.set_epoch(1)
    assert list(sampler) != batches  # a new epoch reshuffles
    ranks = [list(BucketBatchSampler(durations, 40.0, seed=3, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1])
