"""Word timings from CTC output, and where the audio holds sound or silence.

A CTC model emits each letter as a spike, usually one or two frames long, somewhere inside
the sound it stands for. :func:`align_words` turns a decoded hypothesis into words with
start and end times and a confidence; given which frames are loud, it also moves each
word's edges out to where its sound begins and ends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from asr.hypothesis import Hypothesis
from asr.text import WORD_SEP, WORD_START, Vocabulary

WORD_PAUSE_SECONDS = 0.5  # time between two letters that ends a word: longer than any pause inside one
SILENCE_SPLIT_SECONDS = 0.25  # silence between two letters that ends a word: longer than a stop's closure
SNAP_SECONDS = 0.2  # how far a word's edges may move out to where its sound ends
HEARD_SECONDS = 0.1  # a letter emitted this close to sound is heard; one farther off is a CTC edge spike
POWER_FLOOR = 1e-10  # before the log: -100 dB, below any real signal
DIGITAL_SILENCE_DB = -90.0  # frames below this are digital silence (16-bit quantisation noise is about -100)


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # s
    end: float  # s
    confidence: float  # in [0, 1]: the lowest posterior among its letters


def energy_db(samples: np.ndarray, frame_samples: int, n_frames: int | None = None) -> np.ndarray:
    """Mean power in dB of consecutive frames of ``frame_samples``; samples (N,) -> (n_frames,).

    ``n_frames`` defaults to the frames ``samples`` fills, the last one partly; missing
    samples count as silence.
    """
    if n_frames is None:
        n_frames = -(-len(samples) // frame_samples)
    padded = np.zeros(n_frames * frame_samples, np.float32)
    used = min(len(samples), len(padded))
    padded[:used] = samples[:used]
    power = np.square(padded, dtype=np.float64).reshape(n_frames, frame_samples).mean(axis=1)
    return 10 * np.log10(power + POWER_FLOOR)


def noise_floor(energy: np.ndarray) -> float:
    """dB of the quietest 5 % of the frames that are not digital silence; energy: (T,) dB, T > 0.

    Leaving out digital silence (joins, padding) lets the noise of a recording still count
    as silence beside it.
    """
    audible = energy[energy > DIGITAL_SILENCE_DB]
    return float(np.percentile(audible, 5)) if len(audible) else DIGITAL_SILENCE_DB


def loud_frames(samples: np.ndarray, frame_samples: int, n_frames: int) -> np.ndarray:
    """Which of ``n_frames`` frames of ``frame_samples`` hold sound rather than silence; (n_frames,) bool.

    Silence is whichever is higher of 10 dB above the quietest tenth of the frames and
    45 dB below the loudest. Digital silence counts in that tenth: beside it, everything
    recorded is sound, so the quiet edges of words in clean audio stay words.
    """
    energy = energy_db(samples, frame_samples, n_frames)
    if not n_frames:
        return energy > 0
    return energy > max(float(np.percentile(energy, 10)) + 10.0, float(energy.max()) - 45.0)


def _longest_silence(loud: np.ndarray) -> int:
    """Length of the longest run of False in a (T,) bool array."""
    longest = run = 0
    for sound in loud:
        run = 0 if sound else run + 1
        longest = max(longest, run)
    return longest


def align_words(
    hyp: Hypothesis,
    log_probs: torch.Tensor,
    vocab: Vocabulary,
    frame_seconds: float,
    offset: float = 0.0,
    loud: np.ndarray | None = None,
) -> list[Word]:
    """Time and score the words of ``hyp`` from the log-probabilities it was decoded from.

    log_probs: (T, V), the utterance's valid frames. A letter starts at the frame where the
    decoder first emitted it and lasts while it stays the most likely token (the frames a
    CTC path repeats it on); its posterior is the highest it reaches there. A word runs from
    its first letter's start to its last letter's end; times are in seconds plus ``offset``.

    Words end at a space, and also at ``WORD_PAUSE_SECONDS`` between letters: a model learns
    the space from sentence-internal word boundaries and may emit none between two
    sentences heard together. With ``loud`` ((T,) bool, see :func:`loud_frames`) a word
    also ends at ``SILENCE_SPLIT_SECONDS`` of silence between letters, and its edges move
    out over sound (at most ``SNAP_SECONDS``, never into a neighbour): a CTC model emits
    the first letter after a word begins and the last before its sound dies away. Neither
    split happens next to a letter emitted in silence (no sound within ``HEARD_SECONDS``):
    a bidirectional model may emit an utterance's first or last letter anywhere in the
    silence around it ("T ... HE"), and that letter belongs to its word. Such letters do
    not time a word that has heard ones.
    """
    best = log_probs.argmax(dim=-1)  # (T,)
    n_frames = log_probs.shape[0]
    separator = next((vocab.tokens.index(t) for t in (" ", WORD_SEP) if t in vocab.tokens), -1)
    pause, silence = round(WORD_PAUSE_SECONDS / frame_seconds), round(SILENCE_SPLIT_SECONDS / frame_seconds)
    near = round(HEARD_SECONDS / frame_seconds)
    starts, names = _word_starts(hyp, vocab)

    def heard(frame: int) -> bool:
        return loud is None or bool(loud[max(0, frame - near) : frame + near + 1].any())

    groups: list[list[tuple[str, int, int, float]]] = [[]]  # units: (unit, first frame, last frame, posterior)
    for i, (token, frame) in enumerate(zip(hyp.tokens, hyp.frames)):
        if token == separator and vocab.units != "bpe":
            if names is None:
                groups.append([])
            continue
        if i in starts:
            groups.append([])
        elif groups[-1] and names is None:  # the decoder did not say where words are: pauses may
            previous_end = groups[-1][-1][2]
            quiet = loud is not None and _longest_silence(loud[previous_end + 1 : frame]) >= silence
            if (frame - previous_end - 1 >= pause or quiet) and heard(groups[-1][-1][1]) and heard(frame):
                groups.append([])
        limit = hyp.frames[i + 1] if i + 1 < len(hyp.frames) else n_frames
        end = frame
        while end + 1 < limit and best[end + 1] == token:
            end += 1
        posterior = min(1.0, float(log_probs[frame : end + 1, token].max().exp()))
        groups[-1].append((vocab.tokens[token], frame, end, posterior))
    groups = [g for g in groups if g]

    spans = []  # [first frame, end frame) of each word: of its heard letters, if it has any
    for g in groups:
        timed = [letter for letter in g if heard(letter[1])] or g
        spans.append((timed[0][1], timed[-1][2] + 1))
    if loud is not None:
        reach = round(SNAP_SECONDS / frame_seconds)
        previous_end = 0
        for i, (start, end) in enumerate(spans):
            next_start = spans[i + 1][0] if i + 1 < len(spans) else n_frames
            floor, ceiling = max(previous_end, start - reach), min(next_start, end + reach, len(loud))
            while start > floor and loud[start - 1]:
                start -= 1
            while end < ceiling and loud[end]:
                end += 1
            spans[i] = (start, end)
            previous_end = end
    texts = names if names is not None else [vocab.decode([vocab.tokens.index(u) for u, _, _, _ in g]).strip()
                                             for g in groups]
    return [
        Word(text, offset + start * frame_seconds, offset + end * frame_seconds, min(p for _, _, _, p in g))
        for text, g, (start, end) in zip(texts, groups, spans)
    ]


def _word_starts(hyp: Hypothesis, vocab: Vocabulary) -> tuple[set[int], list[str] | None]:
    """Indices of ``hyp.tokens`` that begin a word, and the words, where the units alone do
    not spell them: a lexicon search names its words and the frame each begins at
    (``extras["words"]``); a word piece that starts with ``▁`` begins a word. Characters:
    no starts (spaces and pauses divide them) and no names (their letters spell them)."""
    if "words" in hyp.extras:
        starts, token = set(), 0
        for _, first, _ in hyp.extras["words"]:
            while token < len(hyp.frames) and hyp.frames[token] < first:
                token += 1
            starts.add(token)
        return starts, [word for word, _, _ in hyp.extras["words"]]
    if vocab.units == "bpe":
        return {i for i, t in enumerate(hyp.tokens) if vocab.tokens[t].startswith(WORD_START)}, None
    return set(), None
