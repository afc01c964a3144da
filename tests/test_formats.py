"""Transcript files: segments for subtitles, and the txt, SRT, WebVTT and JSON layouts."""

from __future__ import annotations

import json
import random

from asr.align import Word
from asr.batching import Transcript
from asr.formats import render, split_segments, to_json


def _words(spec: list[tuple[str, float, float]]) -> tuple[Word, ...]:
    return tuple(Word(t, s, e, 0.9) for t, s, e in spec)


def test_segments_split_at_pauses_and_respect_limits() -> None:
    rng = random.Random(1)
    spec, at = [], 0.0
    for i in range(300):
        length = rng.uniform(0.1, 0.6)
        spec.append((rng.choice(["A", "WORD", "LONGERWORD", "MIDDLE"]), at, at + length))
        at += length + (1.0 if i % 17 == 16 else rng.uniform(0.0, 0.3))
    words = _words(spec)
    segments = split_segments(words)
    assert [w for s in segments for w in s.words] == list(words)
    for segment in segments:
        assert segment.end - segment.start <= 7.0
        gaps = [b.start - a.end for a, b in zip(segment.words, segment.words[1:])]
        assert all(g < 0.8 for g in gaps)
    cues = render(Transcript("x.wav", words), "srt").split("\n\n")
    assert len(cues) == len(segments)
    assert all(len(line) <= 42 for cue in cues for line in cue.splitlines()[2:])  # at most two lines of 42
    assert all(len(cue.splitlines()) <= 4 for cue in cues)
    # A long pause always separates segments, even when the text would fit.
    short = split_segments(_words([("ONE", 0, 0.3), ("TWO", 0.4, 0.7), ("THREE", 2.0, 2.4)]))
    assert [s.text for s in short] == ["ONE TWO", "THREE"]


def test_srt_vtt_and_json_layout() -> None:
    words = _words([("HELLO", 0.5, 0.9), ("WORLD", 1.0, 1.4), ("AGAIN", 3661.25, 3661.9)])
    transcript = Transcript("x.wav", words, duration=3662.0)
    assert render(transcript, "txt") == "HELLO WORLD AGAIN\n"
    assert render(transcript, "srt") == (
        "1\n00:00:00,500 --> 00:00:01,400\nHELLO WORLD\n\n2\n01:01:01,250 --> 01:01:01,900\nAGAIN\n")
    assert render(transcript, "vtt") == (
        "WEBVTT\n\n00:00:00.500 --> 00:00:01.400\nHELLO WORLD\n\n01:01:01.250 --> 01:01:01.900\nAGAIN\n")
    data = json.loads(render(transcript, "json"))
    assert data == to_json(transcript)
    assert set(data) == {"path", "text", "duration", "segments"} and data["text"] == "HELLO WORLD AGAIN"
    assert data["segments"][0] == {"start": 0.5, "end": 1.4, "text": "HELLO WORLD", "words": [
        {"word": "HELLO", "start": 0.5, "end": 0.9, "confidence": 0.9},
        {"word": "WORLD", "start": 1.0, "end": 1.4, "confidence": 0.9}]}
    twelve = _words([("WORD", i * 0.2, i * 0.2 + 0.1) for i in range(12)])
    wide = render(Transcript("y.wav", twelve), "srt")
    assert all(len(line) <= 42 for line in wide.splitlines())
