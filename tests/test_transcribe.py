"""Transcription of files of any length: inputs, streaming, windows, word timings, CLI.

Most tests use a "tone model": a fixed module that hears each letter as a pure tone at the
centre frequency of its own mel bin, so the whole pipeline (reading, resampling, cutting,
batching, decoding, alignment, stitching) is checked deterministically and exactly, with
known word boundaries. Tests that take the ``trained_model`` fixture run a trained
checkpoint on espeak-ng speech (``exp/synthetic/best.pt``, or the file ``$ASR_TEST_MODEL``
names) and are skipped without one (see conftest.py).
"""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from asr.align import Word
from asr.audio import (
    SAMPLE_RATE,
    AudioError,
    audio_bytes_duration,
    audio_duration,
    load_audio,
    stream_audio,
    stream_audio_bytes,
)
from asr.batching import _Stitcher
from asr.checkpoint import load_model
from asr.cli import main
from asr.corpora.synthetic.sentences import generate_sentences
from asr.decode import GreedyDecoder
from asr.segment import _pieces
from asr.text import WORD_SEP
from asr.transcribe import CPU_BATCH_SECONDS, MAX_BATCH_SECONDS, TranscribeOptions, find_inputs, transcribe_files
from tone import TONE_POSTERIOR, VOCAB, silence, speak, tone_model  # noqa: E402  (tests/ is on the path)

REPO = Path(__file__).resolve().parents[1]

def _check_timings(got: tuple[Word, ...], expected: list[tuple[str, float, float]], tolerance: float) -> None:
    assert [w.text for w in got] == [w for w, _, _ in expected]
    for word, (_, start, end) in zip(got, expected):
        assert abs(word.start - start) <= tolerance and abs(word.end - end) <= tolerance, (word, start, end)


def _write_flac(path: Path, audio: np.ndarray, rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    if rate != SAMPLE_RATE:
        audio = soxr.resample(audio, SAMPLE_RATE, rate, quality="HQ")
    if channels > 1:
        audio = np.stack([audio] * channels, axis=1)
    sf.write(path, audio, rate, format="FLAC", subtype="PCM_16")
    return path


# --- stitching, windows ---------------------------------------------------------------------


def test_stitcher_keeps_each_word_once_across_jittered_windows() -> None:
    """Words straddling a stitch point of overlapping windows, timed a little differently by
    the two windows that hear them, are neither dropped nor doubled."""
    rng = random.Random(0)
    truth, at = [], 0.0
    while at < 100:
        length = rng.uniform(0.15, 0.9)
        truth.append(Word(f"W{len(truth)}", at, at + length, 1.0))
        at += length + rng.uniform(0.0, 0.5)
    window, overlap = 20.0, 4.0
    for trial in range(20):
        stitcher = _Stitcher()
        start, keep_from = 0.0, 0.0
        while True:
            keep_until = math.inf if start + window >= at else start + window - overlap / 2
            heard = [
                Word(w.text, w.start + rng.uniform(-0.08, 0.08), w.end + rng.uniform(-0.08, 0.08), 1.0)
                for w in truth
                if start <= w.start and w.end <= start + window  # a window hears whole words only
            ]
            stitcher.add(heard, keep_from, keep_until)
            if keep_until == math.inf:
                break
            start += window - overlap
            keep_from = start + overlap / 4
        assert [w.text for w in stitcher.words] == [w.text for w in truth], trial


def _sound(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Noise with a level that changes every 0.1 s between -26 and -10 dB, like syllables."""
    n = round(seconds * SAMPLE_RATE)
    level = np.repeat(rng.uniform(0.05, 0.3, n // 1600 + 1), 1600)[:n]
    return (rng.standard_normal(n) * level).astype(np.float32)


def _pause(seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Background noise at -50 dB."""
    return (rng.standard_normal(round(seconds * SAMPLE_RATE)) * 0.003).astype(np.float32)


def test_long_streams_are_cut_at_pauses_else_into_overlapping_windows() -> None:
    rng = np.random.default_rng(0)
    window, overlap = 10 * SAMPLE_RATE, 2 * SAMPLE_RATE
    min_pause = 0.25 * SAMPLE_RATE / 160
    # Sound with pauses of 0.5 s (cut 0.1 s before the sound resumes) and 0.1 s (too short to cut).
    parts = [_sound(3.0, rng), _pause(0.5, rng), _sound(1.0, rng), _pause(0.1, rng), _sound(2.0, rng),
             _pause(0.5, rng), _sound(12.0, rng), silence(0.5), _sound(4.0, rng)]
    signal = np.concatenate(parts)
    pieces = list(_pieces(np.array_split(signal, 9), window, overlap, min_pause))
    starts = [p.start / SAMPLE_RATE for p in pieces]
    assert starts == pytest.approx([0.0, 3.4, 7.0, 15.0, 19.5], abs=0.011)
    # 3.4 and 7.0: in pauses, 0.1 s before sound; 15.0: a window without a pause, overlapped; 19.5: a pause.
    for piece, following in zip(pieces, pieces[1:]):
        assert len(piece.samples) <= window
        assert np.array_equal(piece.samples, signal[piece.start : piece.start + len(piece.samples)])
        if following.start == piece.start + len(piece.samples):  # cut at a pause: pieces meet
            assert piece.keep_until == following.keep_from == following.start / SAMPLE_RATE
        else:  # overlapping windows: stitched in the middle of the overlap
            assert following.start == piece.start + window - overlap
            assert piece.keep_until == pytest.approx((piece.start + window - overlap / 2) / SAMPLE_RATE)
    assert pieces[-1].last and pieces[-1].start + len(pieces[-1].samples) == len(signal)
    assert not any(p.last for p in pieces[:-1])
    # A stream no longer than a window is one piece, pauses or not; without pauses, windows.
    assert [(p.start, len(p.samples)) for p in _pieces([signal[:window]], window, overlap, min_pause)] == [(0, window)]
    noise = _sound(25.0, rng)
    assert [p.start / SAMPLE_RATE for p in _pieces([noise], window, overlap, min_pause)] == [0.0, 8.0, 16.0]


# --- reading -------------------------------------------------------------------------------


def test_stream_audio_matches_load_audio_at_any_rate_and_block(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    stereo = (rng.standard_normal((44_100 * 3 + 17, 2)) * 0.2).astype(np.float32)
    sf.write(tmp_path / "a.flac", stereo, 44_100)
    sf.write(tmp_path / "b.wav", stereo[:, 0], SAMPLE_RATE, subtype="FLOAT")
    for name in ("a.flac", "b.wav"):
        expected = load_audio(tmp_path / name)
        for read_seconds in (0.37, 10.0):
            blocks = list(stream_audio(tmp_path / name, read_seconds))
            assert max(len(b) for b in blocks) <= read_seconds * SAMPLE_RATE + 2048
            streamed = np.concatenate(blocks)
            assert abs(len(streamed) - len(expected)) <= 1  # one-shot resampling rounds the length up
            n = min(len(streamed), len(expected))
            np.testing.assert_allclose(streamed[:n], expected[:n], atol=1e-6)


def test_audio_in_memory_reads_as_the_file_does(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    audio = (rng.standard_normal(SAMPLE_RATE * 2) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.flac", audio, 22_050)
    with av.open(str(tmp_path / "a.m4a"), "w") as container:  # a format only FFmpeg reads
        stream = container.add_stream("aac", rate=SAMPLE_RATE)
        frame = av.AudioFrame.from_ndarray(audio[None], format="flt", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            container.mux(packet)
    for name in ("a.flac", "a.m4a"):
        from_file = np.concatenate(list(stream_audio(tmp_path / name, 0.5)))
        in_memory = np.concatenate(list(stream_audio_bytes((tmp_path / name).read_bytes(), name, 0.5)))
        np.testing.assert_array_equal(in_memory, from_file)
        assert audio_bytes_duration((tmp_path / name).read_bytes(), name) == audio_duration(tmp_path / name)
    with pytest.raises(AudioError, match="upload.wav: cannot decode"):
        list(stream_audio_bytes(b"RIFF" + bytes(300), "upload.wav"))
    with pytest.raises(AudioError, match="empty"):
        list(stream_audio_bytes(b"", "upload.wav"))


def test_batches_are_small_on_a_cpu_and_large_on_a_gpu() -> None:
    options = TranscribeOptions()
    assert options.batch_seconds(torch.device("cpu")) == CPU_BATCH_SECONDS < MAX_BATCH_SECONDS
    assert options.batch_seconds(torch.device("cuda")) == MAX_BATCH_SECONDS
    assert TranscribeOptions(window_seconds=50.0).batch_seconds(torch.device("cpu")) == 50.0  # a window fits
    assert TranscribeOptions(max_batch_seconds=90.0).batch_seconds(torch.device("cpu")) == 90.0
    with pytest.raises(ValueError, match="hold a window"):
        TranscribeOptions(max_batch_seconds=10.0)


def test_stream_audio_errors(tmp_path: Path) -> None:
    (tmp_path / "empty.wav").touch()
    (tmp_path / "junk.flac").write_bytes(b"fLaC" + bytes(range(256)) * 4)
    sf.write(tmp_path / "silent.wav", np.zeros(0, np.float32), SAMPLE_RATE)
    nan = np.zeros(SAMPLE_RATE * 3, np.float32)
    nan[-5] = np.nan
    sf.write(tmp_path / "nan.wav", nan, SAMPLE_RATE, subtype="FLOAT")
    for name, reason in (("missing.wav", "no such file"), ("empty.wav", "empty"), ("junk.flac", "cannot decode"),
                         ("silent.wav", "no samples"), ("nan.wav", "NaN")):
        with pytest.raises(AudioError, match=reason):
            for _ in stream_audio(tmp_path / name, read_seconds=1.0):
                pass


def test_find_inputs_expands_folders_and_globs(tmp_path: Path) -> None:
    for name in ("a/x.wav", "a/b/y.FLAC", "a/b/notes.txt", "c/x.wav", "d/x.wav"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "empty").mkdir()
    inputs, errors = find_inputs([
        str(tmp_path / "a"), str(tmp_path / "c" / "*.wav"), str(tmp_path / "a" / "x.wav"),
        str(tmp_path / "d" / "x.wav"),
        str(tmp_path / "nothing.wav"), str(tmp_path / "*.mp3"), str(tmp_path / "empty"),
    ])
    assert [(Path(i.path).relative_to(tmp_path).as_posix(), i.name) for i in inputs] == [
        ("a/b/y.FLAC", "b/y"), ("a/x.wav", "x"), ("c/x.wav", "x-2"), ("d/x.wav", "x-3")]
    assert len(errors) == 3
    assert "no such file" in errors[0] and "no files match" in errors[1] and "no audio files" in errors[2]


# --- transcription with the tone model --------------------------------------------------------


def test_word_timings_from_the_tone_model(tmp_path: Path) -> None:
    audio, words = speak("HELLO THERE IT'S A QUIZ OF ZEBRAS JUMPING OVER BOXES")
    path = _write_flac(tmp_path / "tones.flac", audio, rate=22_050, channels=2)
    (transcript,) = transcribe_files(tone_model(), [path], GreedyDecoder(VOCAB))
    assert transcript.error is None and transcript.duration == pytest.approx(len(audio) / SAMPLE_RATE, abs=1e-3)
    # The model's frames are 30 ms; a tone is heard from the first frame its 25 ms window touches.
    _check_timings(transcript.words, words, tolerance=0.045)
    assert all(w.confidence == pytest.approx(TONE_POSTERIOR, abs=1e-5) for w in transcript.words)


@pytest.mark.slow
@pytest.mark.parametrize("min_pause", [0.25, math.inf], ids=["cut-at-pauses", "overlapping-windows"])
def test_ten_minute_file_equals_utterance_by_utterance(tmp_path: Path, min_pause: float) -> None:
    """A 10-minute file (22.05 kHz stereo, streamed) gives exactly the words and timings of
    transcribing its utterances one by one, whether it is cut at pauses or into overlapping
    windows, while no forward pass sees more than a batch of pieces."""
    sentences = generate_sentences(80, seed=5)
    gap = silence(0.4)
    pieces, expected, utterance_paths, at = [], [], [], 0.0
    while at < 600:
        text = sentences[len(utterance_paths) % len(sentences)]
        audio, words = speak(text)
        utterance_paths.append(_write_flac(tmp_path / f"u{len(utterance_paths):03d}.flac", audio))
        expected += [(w, at + s, at + e) for w, s, e in words]
        pieces += [audio, gap]
        at += (len(audio) + len(gap)) / SAMPLE_RATE
    long_path = _write_flac(tmp_path / "long.flac", np.concatenate(pieces), rate=22_050, channels=2)

    options = TranscribeOptions(max_batch_seconds=60.0, read_seconds=7.0, min_pause_seconds=min_pause)
    window, overlap = 20 * SAMPLE_RATE, 4 * SAMPLE_RATE
    pieces = list(_pieces(stream_audio(long_path), window, overlap, min_pause * 100))
    meet = [a.start + len(a.samples) == b.start for a, b in zip(pieces, pieces[1:])]
    assert all(meet) if min_pause < math.inf else not any(meet)  # the path under test is the one taken
    assert len(pieces) > 30

    loaded = tone_model()
    one_by_one = list(transcribe_files(loaded, utterance_paths, GreedyDecoder(VOCAB), options))
    assert all(t.error is None for t in one_by_one)
    loaded.model.max_batch_samples = 0
    (long,) = transcribe_files(loaded, [long_path], GreedyDecoder(VOCAB), options)
    assert long.duration == pytest.approx(at, abs=0.01) and long.duration > 600
    assert long.text == " ".join(t.text for t in one_by_one) == " ".join(w for w, _, _ in expected)
    _check_timings(long.words, expected, tolerance=0.045)
    assert loaded.model.max_batch_samples <= 60.0 * 100 + 3 * 100  # 60 s of 10 ms frames, 3 windows' rounding


def test_file_failing_midway_does_not_disturb_the_others(tmp_path: Path) -> None:
    good_audio, _ = speak("ALPHA BETA GAMMA")
    good = _write_flac(tmp_path / "good.flac", good_audio)
    long_audio, _ = speak(" ".join(generate_sentences(30, seed=1)))  # > 2 windows
    broken = bytearray(_write_flac(tmp_path / "broken.flac", long_audio).read_bytes())
    broken[len(broken) * 2 // 3 :] = bytes(len(broken) - len(broken) * 2 // 3)  # zeros from two thirds on
    (tmp_path / "broken.flac").write_bytes(broken)
    options = TranscribeOptions(window_seconds=8.0, overlap_seconds=2.0, max_batch_seconds=30.0, read_seconds=3.0)
    paths = [good, tmp_path / "broken.flac", good]
    results = list(transcribe_files(tone_model(), paths, GreedyDecoder(VOCAB), options))
    assert [r.text for r in results] == ["ALPHA BETA GAMMA", "", "ALPHA BETA GAMMA"]
    assert results[1].error and "broken.flac" in results[1].error and results[0].error is None


# --- the command line --------------------------------------------------------------------------


def test_cli_folder_with_bad_files(tmp_path: Path, random_checkpoint: Path, capsys) -> None:
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    rng = np.random.default_rng(0)
    sf.write(folder / "one.wav", (rng.standard_normal(16_000) * 0.1).astype(np.float32), 16_000)
    sf.write(folder / "sub" / "two.flac", (rng.standard_normal((8_000 * 25, 2)) * 0.1).astype(np.float32), 8_000)
    (folder / "empty.wav").touch()
    (folder / "corrupt.flac").write_bytes(b"fLaC" + bytes(rng.integers(0, 256, 4000, dtype=np.uint8)))
    (folder / "notes.txt").write_text("not audio, not an input")

    code = main(["transcribe", "--model", str(random_checkpoint), "--device", "cpu", str(folder)])
    out, err = capsys.readouterr()
    assert code == 1
    paths = [line.split("\t")[0] for line in out.splitlines()]
    assert paths == [str(folder / "one.wav"), str(folder / "sub" / "two.flac")]
    errors = [line for line in err.splitlines() if line.startswith("asr: error:")]
    assert len(errors) == 2 and "corrupt.flac: cannot decode" in errors[0] and "empty.wav: file is empty" in errors[1]
    assert err.splitlines()[-1] == "transcribed 2 files, 2 failed"

    out_dir = tmp_path / "out"
    code = main(["transcribe", "--model", str(random_checkpoint), str(folder), str(tmp_path / "missing.wav"),
                 "--format", "all", "--output-dir", str(out_dir)])
    assert code == 1
    assert sorted(p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()) == sorted(
        f"{stem}.{ext}" for stem in ("one", "sub/two") for ext in ("txt", "json", "srt", "vtt"))
    data = json.loads((out_dir / "sub" / "two.json").read_text())
    assert data["duration"] == pytest.approx(25.0) and data["path"] == str(folder / "sub" / "two.flac")
    for word in (w for s in data["segments"] for w in s["words"]):
        assert 0 <= word["start"] <= word["end"] <= 25.0 and 0 <= word["confidence"] <= 1
    assert (out_dir / "one.vtt").read_text().startswith("WEBVTT")
    assert capsys.readouterr().err.splitlines()[-1] == f"transcribed 2 files, 3 failed; outputs in {out_dir}"


def test_cli_refuses_bad_option_combinations(random_checkpoint: Path, tmp_path: Path, capsys) -> None:
    assert main(["transcribe", "--model", str(random_checkpoint), str(tmp_path), "--format", "srt"]) == 2
    assert "--output-dir" in capsys.readouterr().err
    assert main(["transcribe", "--model", str(random_checkpoint), str(tmp_path), "--window", "5",
                 "--overlap", "6"]) == 2
    assert "overlap" in capsys.readouterr().err


# --- with the demo's trained model (skipped without one; required in CI) -------------------------
# These hold for any model the demo trains: they judge what the method guarantees, not how
# well one set of weights happens to spell. The figures that move from run to run (timing
# errors, the long file's WER against one by one) are reported by scripts/bench_longform.py.

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
SPOKEN_WORDS = "PEOPLE OFTEN WALK TO SCHOOL WHEN THE WEATHER IS GOOD".split()


def _assert_words_in_order(words: tuple[Word, ...], duration: float) -> None:
    """Times within the audio, each word after the previous one: a word decoded twice where two
    pieces of a long file overlap would overlap itself."""
    for previous, word in zip((None,) + words[:-1], words):
        assert 0 <= word.start < word.end <= duration + 1e-6 and 0 <= word.confidence <= 1, word
        assert previous is None or previous.end <= word.start + 1e-6, (previous, word)


@needs_espeak
@pytest.mark.slow
def test_trained_model_times_separately_spoken_words(trained_model: Path, tmp_path: Path) -> None:
    """Ten words spoken one at a time, 0.3-0.7 s apart, so each word's sound is known.

    Margin, from the method: a letter times its word only if emitted within HEARD_SECONDS of
    sound, and word edges move over loud frames on the model's output grid. So every word the
    model emits lies within its spoken word's sound, give or take HEARD_SECONDS plus one
    output frame, plus one frame for the two silence rules (align's loud frames; the
    recording's 40 dB trim); and a word it spells right (it emitted letters from the word's
    start to its end) has both edges that close to the sound's. How much of a word the model
    hears is recognition, not timing: a word heard only as its last letter ("K" for WALK) is
    timed where that letter sounds. The errors of every model are reported by
    scripts/bench_longform.py.
    """
    from asr.align import HEARD_SECONDS
    from asr.batching import frame_seconds
    from asr.checkpoint import log_probs
    from asr.corpora.synthetic.recordings import spoken_words

    recording = spoken_words(SPOKEN_WORDS)
    path = tmp_path / "words.flac"
    sf.write(path, recording.audio, SAMPLE_RATE)
    loaded = load_model(trained_model)
    decoder = GreedyDecoder(loaded.vocab)
    (transcript,) = transcribe_files(loaded, [path], decoder)
    wave = torch.from_numpy(load_audio(path))
    (hyp,) = decoder(*log_probs(loaded.model, loaded.config.features, wave[None], torch.tensor([len(wave)])))
    # Timing moves no letter: the transcript spells what the decoder decoded (word breaks
    # may differ: alignment also ends a word at a long silence). The model's own units, greedily:
    # timing is judged on what the model emits (a phone model's words, through a lexicon
    # search, are recognition).
    assert transcript.text.replace(" ", "") == hyp.text.replace(" ", "").replace(WORD_SEP, "")
    _assert_words_in_order(transcript.words, len(wave) / SAMPLE_RATE)

    margin = HEARD_SECONDS + 2 * frame_seconds(loaded)
    heard = set()
    for got in transcript.words:
        centre = (got.start + got.end) / 2
        i = min(range(len(SPOKEN_WORDS)), key=lambda k: max(0.0, recording.spans[k][0] - centre,
                                                            centre - recording.spans[k][1]))
        start, end = recording.spans[i]
        heard.add(i)
        assert start - margin <= got.start and got.end <= end + margin, (got, SPOKEN_WORDS[i], start, end,
                                                                         transcript.text)
        if got.text == SPOKEN_WORDS[i]:
            assert abs(got.start - start) <= margin and abs(got.end - end) <= margin, (got, start, end)
    # Enough words to judge: a model that hears fewer is not one the demo trains (the demo's
    # models hear 149 or 150 of 150 such words).
    assert len(heard) >= len(SPOKEN_WORDS) // 2, transcript.text


@needs_espeak
@pytest.mark.slow
def test_trained_model_ten_minute_recording_loses_and_doubles_nothing(trained_model: Path, tmp_path: Path) -> None:
    """Ten minutes of one recording (clean utterances 0.3 s apart under one pink noise, 25 dB
    below the speech), transcribed as one file: read in blocks, cut into pieces, stitched.

    Whatever the model: the words come out in time order without overlapping (no stretch
    decoded twice), and every word the model hears in an utterance decoded alone has a word of
    the long file's transcript at its time, within the aligner's margin (a letter counts as
    heard HEARD_SECONDS from sound; edges move on the output grid): a piece or seam that lost
    audio would leave words heard alone with nothing there. Spelling and word breaks may
    differ, as each utterance hears its neighbours in the file: that moves with the model,
    and scripts/bench_longform.py reports it.
    """
    from asr.corpora.synthetic.recordings import clean_utterances, continuous_recording

    recording = continuous_recording(clean_utterances(tmp_path / "corpus"), seconds=600)
    long_path = tmp_path / "long.flac"
    sf.write(long_path, recording.audio, SAMPLE_RATE)
    one_paths = [tmp_path / f"one-{i:04d}.flac" for i in range(len(recording.spans))]
    for i, path in enumerate(one_paths):
        sf.write(path, recording.segment(i), SAMPLE_RATE)
    loaded = load_model(trained_model)
    decoder = GreedyDecoder(loaded.vocab)
    one_by_one = list(transcribe_files(loaded, one_paths, decoder))
    (long,) = transcribe_files(loaded, [long_path], decoder)

    assert long.error is None and long.duration == pytest.approx(len(recording.audio) / SAMPLE_RATE)
    _assert_words_in_order(long.words, long.duration)
    from asr.align import HEARD_SECONDS
    from asr.batching import frame_seconds

    margin = HEARD_SECONDS + frame_seconds(loaded)
    starts, ends = np.array([w.start for w in long.words]), np.array([w.end for w in long.words])
    for (offset, _), alone in zip(recording.spans, one_by_one):
        for word in alone.words:
            start, end = offset + word.start, offset + word.end
            distance = np.maximum(0.0, np.maximum(starts - end, start - ends)).min()  # to the nearest long-file word
            assert distance <= margin, f"{word.text} at {start:.2f}-{end:.2f} s (alone: {alone.text}) is missing"
