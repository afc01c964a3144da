"""asr listen: live captions of a stream. The tone model (tests/tone.py) hears every word
exactly, so finals can be checked word for word against what was spoken."""

from __future__ import annotations

import json
import subprocess
import sys
import tracemalloc
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from asr.audio import SAMPLE_RATE
from asr.checkpoint import LoadedModel
from asr.config import ExperimentConfig
from asr.decode import GreedyDecoder
from asr.listen import Listener, ListenOptions, listen
from asr.model import AcousticModel, ModelConfig
from asr.text import Vocabulary
from asr.transcribe import transcribe_files
from tone import LETTER_GAP, VOCAB, silence, speak, tone_model  # noqa: E402  (tests/ is on the path)

BLOCK = 1600  # samples fed at a time: 0.1 s


def stream(*parts: str | float) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Tone speech of each text, with each number a pause of that many seconds; every word's times."""
    audio, words, at = [], [], 0.0
    for part in parts:
        if isinstance(part, float):
            audio.append(silence(part))
        else:
            spoken, timed = speak(part, pad=0.1)
            audio.append(spoken)
            words += [(w, at + s, at + e) for w, s, e in timed]
        at += len(audio[-1]) / SAMPLE_RATE
    return np.concatenate(audio), words


def run(audio: np.ndarray, options: ListenOptions | None = None) -> list:
    listener = Listener(tone_model(), GreedyDecoder(VOCAB), options)
    return list(listen(listener, [audio[i : i + BLOCK] for i in range(0, len(audio), BLOCK)]))


def finals(updates: list) -> list:
    return [w for u in updates if u.final for w in u.words]


TEXTS = ("THE QUICK BROWN FOX", 0.6, "JUMPS OVER THE LAZY DOG", 0.2, "AND RUNS AWAY", 1.5, "QUIZ")


@pytest.mark.parametrize("options", [ListenOptions(), ListenOptions(right_context_seconds=0.2, max_segment_seconds=2.0),
                                     ListenOptions(update_seconds=0.1, pause_seconds=1.0)],
                         ids=["default", "short segments", "long pauses"])
def test_finals_are_every_word_once_in_order_with_their_times(options: ListenOptions) -> None:
    audio, spoken = stream(*TEXTS)
    got = finals(run(audio, options))
    assert [w.text for w in got] == [w for w, _, _ in spoken]  # none dropped or doubled across segments
    for word, (_, start, end) in zip(got, spoken):
        assert abs(word.start - start) <= 0.06 and abs(word.end - end) <= 0.06, (word, start, end)


def test_finals_never_change_and_partials_lead_up_to_them() -> None:
    audio, spoken = stream(*TEXTS)
    updates = run(audio)
    shown: list[str] = []  # what a caption display shows: the finals so far, then the partial
    for update in updates:
        if update.final:
            shown += [w.text for w in update.words]
        # Every final word is one that was spoken, at its place: finals only ever extend.
        assert shown == [w for w, _, _ in spoken][: len(shown)]
    ends = [u.end for u in updates if u.final and u.words]
    assert ends == sorted(ends)


def test_matches_transcribe_on_the_same_audio(tmp_path: Path) -> None:
    import soundfile as sf

    audio, _ = stream(*TEXTS, 0.3, "HELLO THERE IT'S A QUIZ OF ZEBRAS JUMPING OVER BOXES")
    path = tmp_path / "stream.flac"
    sf.write(path, audio, SAMPLE_RATE)
    (transcript,) = transcribe_files(tone_model(), [path], GreedyDecoder(VOCAB))
    assert " ".join(w.text for w in finals(run(audio))) == transcript.text


def test_partial_results_come_every_update_while_speech_goes_on() -> None:
    audio, spoken = stream(0.5, "THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG", 1.0)
    listener = Listener(tone_model(), GreedyDecoder(VOCAB), ListenOptions(update_seconds=0.25))
    fed, times = 0, []
    for i in range(0, len(audio), BLOCK):
        fed += len(audio[i : i + BLOCK])
        if listener.feed(audio[i : i + BLOCK]):
            times.append(fed / SAMPLE_RATE)
    speech = [t for t in times if spoken[0][1] <= t <= spoken[-1][2]]
    assert speech and max(np.diff([spoken[0][1], *speech, spoken[-1][2]])) <= 0.25 + BLOCK / SAMPLE_RATE + 1e-6


def test_an_hour_stream_keeps_memory_flat() -> None:
    """An hour of speech and pauses (fed faster than real time): the listener holds a segment
    and a short history of energies, so memory after an hour is what it was after minutes."""
    pattern, _ = stream("THE QUICK BROWN FOX", 0.5, "JUMPS", 8.0)  # about 12 s: speech, then a long pause
    listener = Listener(tone_model(), GreedyDecoder(VOCAB), ListenOptions(update_seconds=1.0))
    block = SAMPLE_RATE  # one second at a time
    repeats = round(3600 * SAMPLE_RATE / len(pattern))
    tracemalloc.start()
    try:
        words = 0
        for repeat in range(repeats):
            for i in range(0, len(pattern), block):
                words += sum(len(u.words) for u in listener.feed(pattern[i : i + block]) if u.final)
            if repeat == repeats // 6:  # ten minutes in
                early, _ = tracemalloc.get_traced_memory()
        late, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert listener.now >= 3590
    assert words == 5 * repeats  # every word, every time
    assert late - early < 1 << 20, (early, late)  # less than 1 MB more after 50 more minutes
    assert peak < 64 << 20


# --- finals never overlap, on long streams -------------------------------------------------------

EPSILON = 1e-9  # s: float rounding
WORDS = "THE QUICK BROWN FOX JUMPS OVER LAZY DOG AND RUNS AWAY QUIZ HELLO THERE ZEBRA BOXES".split()
PAUSES = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5, 2.0)  # s between utterances
LONG_OPTIONS = [ListenOptions(), ListenOptions(right_context_seconds=0.2, max_segment_seconds=2.0),
                ListenOptions(update_seconds=0.1, right_context_seconds=0.0, max_segment_seconds=3.0),
                ListenOptions(update_seconds=0.5, pause_seconds=1.0, max_segment_seconds=4.0)]
LONG_IDS = ["default", "short segments", "no right context", "long updates"]


def assert_finals_never_overlap(updates: list) -> None:
    """Finals come in time order and each word starts where the last final word ended or
    later: no span of audio is final twice, and no final extends one that is."""
    problems, until = [], 0.0
    for update in (u for u in updates if u.final and u.words):
        if (update.start, update.end) != (update.words[0].start, update.words[-1].end):
            problems.append(f"update {update.text!r} [{update.start:.3f}-{update.end:.3f}] is not its words' span")
        for word in update.words:
            if not until - EPSILON <= word.start <= word.end:
                problems.append(f"{word.text} [{word.start:.3f}-{word.end:.3f}], the finals before it end at {until:.3f}")
            until = max(until, word.end)
    assert not problems, f"{len(problems)} overlapping finals: {problems[:5]}"


def long_stream(seed: int, utterances: int = 60, noise: float = 0.0) -> tuple[np.ndarray, str]:
    """Tone speech of ``utterances`` random phrases, each followed by a pause drawn from
    ``PAUSES`` (after a letter's gap: at 0 the next phrase runs on), with Gaussian noise of
    ``noise`` amplitude; the audio and its letters."""
    rng = np.random.default_rng(seed)
    parts, letters = [], ""
    for _ in range(utterances):
        text = " ".join(rng.choice(WORDS, rng.integers(1, 5)))
        parts += [speak(text, pad=0.0)[0], silence(LETTER_GAP + float(rng.choice(PAUSES)))]
        letters += text.replace(" ", "")
    audio = np.concatenate(parts)
    return audio + rng.normal(0, noise, len(audio)).astype(np.float32), letters


def varied_blocks(audio: np.ndarray, seed: int) -> Iterator[np.ndarray]:
    """``audio`` in blocks of sizes drawn from under a pause frame to over an update."""
    rng = np.random.default_rng(seed)
    at = 0
    while at < len(audio):
        size = int(rng.choice([37, 160, 800, 1234, 1600, 4000, 8000, 16000]))
        yield audio[at : at + size]
        at += size


def random_model() -> LoadedModel:
    """A real model with random weights. Its output layer is sharpened, and blank and space
    made likelier, so that like a trained model it emits letters, blanks and spaces; unlike
    one, it hears each word differently as context comes, so words split and join from one
    decode to the next (as in noisy speech, where live captions once finalised ``ARICHE``
    and then ``ARICHETEXSAS`` over the same audio)."""
    cfg = ExperimentConfig(model=ModelConfig(hidden=16, layers=1))
    torch.manual_seed(0)
    model = AcousticModel(cfg.model)
    model.set_normalization(torch.full((80,), -8.0), torch.full((80,), 4.0))
    with torch.no_grad():
        model.output.weight.mul_(2.0)
        model.output.bias[:2] += 0.5  # blank, space
    return LoadedModel(model.eval(), Vocabulary(), cfg, {})


@pytest.mark.parametrize("index", range(len(LONG_OPTIONS)), ids=LONG_IDS)
def test_tone_finals_never_overlap_on_long_streams(index: int) -> None:
    audio, letters = long_stream(index, noise=0.003 * (index % 2))
    updates = list(listen(Listener(tone_model(), GreedyDecoder(VOCAB), LONG_OPTIONS[index]), varied_blocks(audio, index)))
    assert_finals_never_overlap(updates)
    assert "".join(w.text for w in finals(updates)) == letters  # every letter final once: none lost or doubled


@pytest.mark.parametrize("index", range(len(LONG_OPTIONS)), ids=LONG_IDS)
def test_changing_words_never_overlap_finals(index: int) -> None:
    audio, _ = long_stream(30 + index, noise=0.01)
    updates = list(listen(Listener(random_model(), GreedyDecoder(VOCAB), LONG_OPTIONS[index]), varied_blocks(audio, index)))
    assert len(finals(updates)) >= 50  # words enough to test
    assert_finals_never_overlap(updates)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="right context"):
        ListenOptions(right_context_seconds=7.0, max_segment_seconds=12.0)
    with pytest.raises(ValueError, match="update interval"):
        ListenOptions(update_seconds=0.0)


# --- the command ------------------------------------------------------------------------------


def test_stdin_pcm_in_jsonl_out(random_checkpoint: Path) -> None:
    audio, _ = stream("HELLO THERE", 0.6, "ALPHA BETA")
    noise = np.random.default_rng(0).normal(0, 0.01, len(audio)).astype(np.float32)
    pcm = (np.clip(audio + noise, -1, 1) * 32767).astype("<i2").tobytes()
    result = subprocess.run([sys.executable, "-m", "asr", "listen", "--model", str(random_checkpoint), "--input", "-",
                             "--format", "jsonl"], input=pcm, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stderr.decode()
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert lines and all(set(line) == {"text", "start", "end", "final", "words"} for line in lines)
    assert any(not line["final"] for line in lines)  # partial results came while it was spoken
    final_words = [w for line in lines if line["final"] for w in line["words"]]
    assert all(0 <= w["start"] <= w["end"] <= len(audio) / SAMPLE_RATE + 1e-3 for w in final_words)
    assert [w["end"] for w in final_words] == sorted(w["end"] for w in final_words)
    # The same stream at 8 kHz is resampled on the way in.
    slow = subprocess.run([sys.executable, "-m", "asr", "listen", "--model", str(random_checkpoint), "--rate", "8000",
                           "--format", "jsonl"], input=pcm[::4], capture_output=True, timeout=120)
    assert slow.returncode == 0 and slow.stdout


def test_listen_errors_are_one_line(random_checkpoint: Path, tmp_path: Path) -> None:
    for args, words in ((["--input", str(tmp_path / "missing.wav")], "no such file"),
                        (["--input", "mic"], "mic"), (["--right-context", "9"], "right context")):
        result = subprocess.run([sys.executable, "-m", "asr", "listen", "--model", str(random_checkpoint), *args],
                                capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert result.returncode == 2 and result.stderr.count("\n") == 1 and words in result.stderr, result.stderr


def test_endless_noise_without_words_stays_bounded() -> None:
    """Sound that never becomes words (a fan, music without speech) is cut as a long segment is."""
    noise = (np.random.default_rng(0).normal(0, 0.1, 60 * SAMPLE_RATE)).astype(np.float32)
    options = ListenOptions(max_segment_seconds=4.0)
    listener = Listener(tone_model(), GreedyDecoder(VOCAB), options)
    for i in range(0, len(noise), BLOCK):
        listener.feed(noise[i : i + BLOCK])
        assert len(listener.segment) <= (2 * options.max_segment_seconds + options.update_seconds) * SAMPLE_RATE + BLOCK


def test_on_a_terminal_the_partial_line_is_rewritten_in_place(random_checkpoint: Path, tmp_path: Path) -> None:
    import os
    import pty

    import soundfile as sf

    audio, _ = stream("HELLO THERE", 0.6, "ALPHA BETA")
    noise = np.random.default_rng(0).normal(0, 0.01, len(audio)).astype(np.float32)
    sf.write(tmp_path / "talk.flac", audio + noise, SAMPLE_RATE)
    leader, follower = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "asr", "listen", "--model", str(random_checkpoint),
                                    "--input", str(tmp_path / "talk.flac")], stdout=follower,
                                   stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        os.close(follower)
        shown = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed with the process
                break
            if not chunk:
                break
            shown += chunk
        assert process.wait(120) == 0, process.stderr.read().decode()
    finally:
        os.close(leader)
    assert b"\r\x1b[K" in shown  # each update rewrites the line
    assert shown.endswith(b"\n")  # and the stream's end leaves the last line standing
