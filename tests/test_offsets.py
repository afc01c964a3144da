"""Manifest rows with ``offset`` and ``duration`` (NeMo's keys) are spans of their file, read as
if the file had been cut there: by training's dataset, by evaluation and by transcription.

The phrases are spoken by the tone model (tests/tone.py), which hears each letter exactly, so
a span read one sample wrong would show."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio import SAMPLE_RATE, AudioError, load_audio, stream_audio
from asr.cli import main
from asr.data import ManifestError, SpeechDataset, Utterance, read_manifest, speed_perturb, write_manifest
from asr.decode import GreedyDecoder
from asr.evaluate import decode_utterances
from asr.transcribe import find_inputs, transcribe_files
from asr.validate import DURATION_MISMATCH, validate_manifest
from tone import VOCAB, silence, speak, tone_model

PHRASES = ("ALPHA", "BETA GAMMA", "DELTA")


@pytest.fixture
def recording(tmp_path: Path) -> tuple[Path, list[Utterance]]:
    """One FLAC file speaking the phrases one after another, and a manifest row for each
    phrase's span of it."""
    parts, rows, at = [], [], 0.0
    for i, phrase in enumerate(PHRASES):
        audio, _ = speak(phrase, pad=0.2)
        parts += [audio, silence(0.5)]
        rows.append(Utterance(f"rec-{i}", str(tmp_path / "long.flac"), round(len(audio) / SAMPLE_RATE, 4), phrase,
                              "rec", offset=round(at, 4)))
        at += len(audio) / SAMPLE_RATE + 0.5
    sf.write(tmp_path / "long.flac", np.concatenate(parts), SAMPLE_RATE, subtype="PCM_16")
    return tmp_path / "long.flac", rows


@pytest.mark.parametrize("rate", [16_000, 44_100])
def test_a_span_reads_what_the_file_cut_there_holds(tmp_path: Path, rate: int) -> None:
    samples = (0.3 * np.random.default_rng(0).standard_normal(3 * rate)).astype(np.float32)
    sf.write(tmp_path / "whole.flac", samples, rate)
    cut = samples[round(0.75 * rate) : round(0.75 * rate) + round(1.3 * rate)]
    sf.write(tmp_path / "cut.flac", cut, rate)
    expected = load_audio(tmp_path / "cut.flac")
    assert np.array_equal(load_audio(tmp_path / "whole.flac", offset=0.75, duration=1.3), expected)
    streamed = np.concatenate(list(stream_audio(tmp_path / "whole.flac", 0.2, offset=0.75, duration=1.3)))
    assert np.array_equal(streamed, np.concatenate(list(stream_audio(tmp_path / "cut.flac", 0.2))))
    sf.write(tmp_path / "tail.flac", samples[round(2.5 * rate):], rate)
    tail = load_audio(tmp_path / "whole.flac", offset=2.5, duration=10.0)  # runs past the end: stops there
    assert np.array_equal(tail, load_audio(tmp_path / "tail.flac")) and len(tail) == 8000


def test_a_span_of_a_format_ffmpeg_reads(tmp_path: Path) -> None:
    av = pytest.importorskip("av")
    samples = (8000 * np.random.default_rng(1).standard_normal(3 * SAMPLE_RATE)).clip(-32768, 32767).astype(np.int16)
    with av.open(str(tmp_path / "pcm.mka"), "w", format="matroska") as out:  # lossless, and not libsndfile's
        stream = out.add_stream("pcm_s16le", rate=SAMPLE_RATE, layout="mono")
        for start in range(0, len(samples), 1000):
            frame = av.AudioFrame.from_ndarray(samples[None, start:start + 1000], format="s16", layout="mono")
            frame.sample_rate, frame.pts = SAMPLE_RATE, start
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    span = load_audio(tmp_path / "pcm.mka", offset=1.25, duration=0.5)
    assert np.array_equal(span, samples[20_000:28_000] / np.float32(32768))
    assert np.array_equal(np.concatenate(list(stream_audio(tmp_path / "pcm.mka", 0.1, offset=1.25, duration=0.5))), span)
    with pytest.raises(AudioError, match=r"pcm.mka: offset 4 s is past the end of its audio \(3.000 s\)"):
        load_audio(tmp_path / "pcm.mka", offset=4.0)


def test_an_offset_past_the_end_is_one_line(recording) -> None:
    path, _ = recording
    with pytest.raises(AudioError, match=r"long.flac: offset 99 s is past the end of its audio \(\d+\.\d{3} s\)$"):
        load_audio(path, offset=99.0, duration=1.0)
    with pytest.raises(AudioError, match="past the end"):
        list(stream_audio(path, offset=99.0))


def test_offset_rows_round_trip_and_bad_offsets_are_one_line(tmp_path: Path, recording) -> None:
    _, rows = recording
    whole = Utterance("w", rows[0].audio_filepath, 5.0, "A", "s")
    write_manifest([*rows, whole], tmp_path / "m.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "m.jsonl").read_text().splitlines()]
    assert [line.get("offset") for line in lines] == [r.offset for r in rows] + [None]
    assert "offset" not in lines[-1]  # a whole file stays a plain NeMo row
    assert read_manifest(tmp_path / "m.jsonl") == [*rows, whole]
    for bad in (-1, "2.0", float("nan")):
        (tmp_path / "bad.jsonl").write_text(json.dumps({**lines[0], "offset": bad}) + "\n")
        with pytest.raises(ManifestError, match=r"bad.jsonl:1: not a manifest row .*offset"):
            read_manifest(tmp_path / "bad.jsonl")


def test_training_evaluation_and_transcription_read_the_spans(recording) -> None:
    path, rows = recording
    # Training's dataset (speed-perturbed too: a span of the file, then resampled).
    dataset = SpeechDataset(speed_perturb(rows, (1.0, 1.25)), VOCAB)
    for index, utt in enumerate(rows):
        wave = dataset[index][0]
        assert torch.equal(wave, torch.from_numpy(load_audio(path)[round(utt.offset * SAMPLE_RATE):][:len(wave)]))
        assert len(wave) == round(utt.duration * SAMPLE_RATE)
        assert abs(len(dataset[index + len(rows)][0]) - len(wave) / 1.25) <= 1
    # Evaluation.
    decoded = decode_utterances(tone_model(), rows, GreedyDecoder(VOCAB))
    assert decoded.texts == list(PHRASES) and not decoded.failures
    # Transcription, word times counted from each span's start.
    inputs, errors = find_inputs([], rows)
    assert not errors and [i.name for i in inputs] == [r.id for r in rows]
    transcripts = list(transcribe_files(tone_model(), inputs, GreedyDecoder(VOCAB)))
    assert [t.text for t in transcripts] == list(PHRASES)
    _, words = speak("BETA GAMMA", pad=0.2)
    for word, (text, start, end) in zip(transcripts[1].words, words):
        assert word.text == text and abs(word.start - start) < 0.05 and abs(word.end - end) < 0.05
    assert transcripts[1].duration == pytest.approx(rows[1].duration, abs=1e-4)


def test_validate_checks_that_a_span_ends_within_its_file(tmp_path: Path, recording) -> None:
    _, rows = recording
    past = Utterance("late", rows[0].audio_filepath, 2.0, "A", "s", offset=rows[-1].offset + 0.5)
    write_manifest([*rows, past], tmp_path / "m.jsonl")
    count, problems = validate_manifest(tmp_path / "m.jsonl")
    assert count == 4 and [(p.kind, p.line) for p in problems] == [(DURATION_MISMATCH, 4)]
    assert "ends past the end of" in problems[0].detail


def test_transcribe_names_a_span_by_its_id(tmp_path: Path, recording, random_checkpoint: Path, capsys) -> None:
    _, rows = recording
    write_manifest(speed_perturb(rows, (1.0, 0.9)), tmp_path / "m.jsonl")
    assert main(["transcribe", "--model", str(random_checkpoint), "--manifest", str(tmp_path / "m.jsonl"),
                 "--device", "cpu", "--manifest-out", str(tmp_path / "out.jsonl")]) == 0
    out, err = capsys.readouterr()
    assert [line.split("\t")[0] for line in out.splitlines()] == [r.id for r in rows]
    assert err.splitlines()[0] == "asr: 3 speed-perturbed manifest rows left out (transcribe reads the audio as it is)"
    listed = read_manifest(tmp_path / "out.jsonl")
    assert [(u.id, u.offset, u.duration) for u in listed] == [(r.id, r.offset, r.duration) for r in rows]
