"""Recordings whose word and utterance times are known, made from synthetic speech.

They serve the tests and benchmarks of what only a trained model shows: word timing
(:func:`spoken_words`) and long-audio transcription (:func:`continuous_recording`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

from asr.audio import SAMPLE_RATE, load_audio
from asr.corpora.synthetic.corpus import SynthConfig, colored_noise, synthesize_corpus
from asr.corpora.synthetic.espeak import speak

TRIM_DB = 40.0  # a word's sound ends where its 4 ms frames fall this far below its loudest


@dataclass(frozen=True)
class Recording:
    """Audio (N,) at 16 kHz and what is said in it: ``spans[i]`` (start, end, in seconds)
    holds ``texts[i]``; between spans there is only silence or background noise."""

    audio: np.ndarray
    texts: tuple[str, ...]
    spans: tuple[tuple[float, float], ...]

    def segment(self, i: int) -> np.ndarray:
        """The samples of span ``i``: (n,)."""
        start, end = self.spans[i]
        return self.audio[round(start * SAMPLE_RATE) : round(end * SAMPLE_RATE)]


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), np.float32)


def sound_span(audio: np.ndarray, top_db: float = TRIM_DB, frame: int = 64) -> tuple[int, int]:
    """Samples where ``audio``'s first frame within ``top_db`` of its loudest begins and its last
    such frame ends; (0, 0) for silence."""
    frames = len(audio) // frame
    power = np.square(audio[: frames * frame], dtype=np.float64).reshape(frames, frame).mean(axis=1)
    loud = np.flatnonzero(10 * np.log10(power + 1e-20) > 10 * np.log10(power.max() + 1e-20) - top_db)
    if not len(loud):
        return 0, 0
    return int(loud[0]) * frame, (int(loud[-1]) + 1) * frame


def _trim(audio: np.ndarray, top_db: float = TRIM_DB, frame: int = 64) -> np.ndarray:
    """``audio`` without the leading and trailing frames quieter than ``top_db`` below its peak."""
    start, end = sound_span(audio, top_db, frame)
    return audio[start:end]


def spoken_words(words: list[str], seed: int = 0, voice: str = "en-us", rate_wpm: int = 160,
                 pause: tuple[float, float] = (0.3, 0.7), lead: float = 0.5) -> Recording:
    """Each word spoken on its own by espeak-ng, trimmed to its sound, ``pause`` seconds
    (uniform, seeded) of digital silence between words and ``lead`` before the first."""
    rng = np.random.default_rng(seed)
    pieces, spans, at = [_silence(lead)], [], lead
    for word in words:
        audio, rate = speak(word, voice, rate_wpm)
        sound = _trim(soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ").astype(np.float32))
        spans.append((at, at + len(sound) / SAMPLE_RATE))
        gap = _silence(rng.uniform(*pause))
        pieces += [sound, gap]
        at += (len(sound) + len(gap)) / SAMPLE_RATE
    return Recording(np.concatenate(pieces), tuple(words), tuple(spans))


def continuous_recording(utterances: list[tuple[str | Path, str]], seconds: float, gap: float = 0.3,
                         snr_db: float = 25.0, seed: int = 0) -> Recording:
    """One recording of ``utterances`` ((audio path, text), in order) ``gap`` seconds apart,
    until it is ``seconds`` long, under one continuous pink noise ``snr_db`` below the speech.

    Joining noisy files as they are would add what no recording has: noise that stops dead
    at a file's end, which a model hears as a burst. So the utterances should be clean ones.
    """
    pieces, spans, texts, at = [], [], [], 0
    for path, text in utterances:
        audio = load_audio(path)
        spans.append((at, at + len(audio)))
        texts.append(text)
        pieces += [audio, _silence(gap)]
        at += len(audio) + len(pieces[-1])
        if at >= seconds * SAMPLE_RATE:
            break
    recording = np.concatenate(pieces)
    speech_power = np.mean(np.concatenate([recording[a:b] for a, b in spans]) ** 2)
    noise = colored_noise(np.random.default_rng(seed), recording.size, exponent=1.0)
    recording = (recording + noise * np.sqrt(speech_power / 10 ** (snr_db / 10))).astype(np.float32)
    return Recording(recording, tuple(texts), tuple((a / SAMPLE_RATE, b / SAMPLE_RATE) for a, b in spans))


def clean_utterances(out_dir: Path, count: int = 260, speakers: int = 4, seed: int = 11,
                     jobs: int = 1) -> list[tuple[Path, str]]:
    """``count`` noise-free synthetic utterances by ``speakers`` voices, made under ``out_dir``
    (a rerun finds them made), as (audio path, text) in utterance-id order."""
    config = SynthConfig(text="generator", train_utterances=0, dev_utterances=0, test_utterances=count,
                         test_indomain_utterances=0, test_engine_utterances=0, train_speakers=0, dev_speakers=0,
                         test_speakers=speakers, test_indomain_speakers=0, test_engine_speakers=0,
                         held_out_variants=(0, 0), noise=0.0, seed=seed, jobs=jobs)
    synthesize_corpus(out_dir, config, progress=False)
    utterances = []
    for trans in sorted((out_dir / "test").glob("*/*/*.trans.txt")):
        for line in trans.read_text().splitlines():
            utterance_id, text = line.split(" ", 1)
            utterances.append((trans.parent / f"{utterance_id}.flac", text))
    return sorted(utterances)
