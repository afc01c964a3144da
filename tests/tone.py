"""The tone model: a fixed module that hears each letter as a pure tone at the centre
frequency of its own mel bin, so that the whole transcription pipeline (reading, resampling,
cutting, batching, decoding, alignment, stitching) is checked deterministically and exactly,
with known word boundaries. :func:`speak` makes its audio."""

from __future__ import annotations

import librosa
import numpy as np
import torch
from torch import nn

from asr.audio import SAMPLE_RATE
from asr.checkpoint import LoadedModel
from asr.config import ExperimentConfig
from asr.model import ModelConfig
from asr.text import Vocabulary

VOCAB = Vocabulary()

FIRST_BIN, BIN_STEP = 10, 2  # letter k sounds at the centre of mel bin 10 + 2k
BIN_FREQUENCIES = librosa.mel_frequencies(82, fmin=0.0, fmax=SAMPLE_RATE / 2)[1:-1]  # Hz, centre of each bin
LETTER, LETTER_GAP, WORD_GAP = 0.06, 0.09, 0.12  # s: a letter's tone, silence between letters, around a space
LOUD = -5.0  # log-mel power above which a frame holds a tone (digital silence is -23)


class ToneModel(nn.Module):
    """log-mel (B, T, 80) -> log-probs (B, T', V): in each stacked frame, the letter whose
    bin is loudest, if a bin of a letter is loudest and loud enough, else blank."""

    def __init__(self, stack: int = 3) -> None:
        super().__init__()
        self.cfg = ModelConfig(stack=stack)
        self.unused = nn.Parameter(torch.zeros(()))  # inference finds the device from a parameter
        self.max_batch_samples = 0  # the largest padded batch it was given, in feature frames x rows

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch, frames, bins = feats.shape
        self.max_batch_samples = max(self.max_batch_samples, batch * frames)
        stack = self.cfg.stack
        feats = nn.functional.pad(feats, (0, 0, 0, (-frames) % stack), value=-23.0)
        peak, loudest = feats.reshape(batch, -1, stack, bins).amax(2).max(-1)  # (B, T')
        token = torch.div(loudest - FIRST_BIN, BIN_STEP, rounding_mode="floor")
        letter = ((loudest - FIRST_BIN) % BIN_STEP == 0) & (token >= 1) & (token < len(VOCAB)) & (peak > LOUD)
        token = torch.where(letter, token, 0)
        log_probs = (nn.functional.one_hot(token, len(VOCAB)).float() * 6).log_softmax(-1)
        return log_probs, torch.div(lengths + stack - 1, stack, rounding_mode="floor")


TONE_POSTERIOR = float(torch.tensor([6.0] + [0.0] * (len(VOCAB) - 1)).softmax(0)[0])


def tone_model() -> LoadedModel:
    return LoadedModel(ToneModel(), VOCAB, ExperimentConfig(), {})


def _tone(token: int) -> np.ndarray:
    n = round(LETTER * SAMPLE_RATE)
    ramp = np.minimum(1.0, np.minimum(np.arange(n), np.arange(n)[::-1]) / (0.005 * SAMPLE_RATE))  # no clicks
    t = np.arange(n) / SAMPLE_RATE
    return (0.5 * ramp * np.sin(2 * np.pi * BIN_FREQUENCIES[FIRST_BIN + BIN_STEP * token] * t)).astype(np.float32)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SAMPLE_RATE), np.float32)


def speak(text: str, pad: float = 0.3) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """16 kHz tone audio of ``text`` with ``pad`` s of silence around it, and each word's
    (word, start s, end s)."""
    parts, words, at = [silence(pad)], [], pad
    for i, word in enumerate(text.split()):
        if i:
            parts += [silence(WORD_GAP), _tone(VOCAB.space), silence(WORD_GAP)]
            at += 2 * WORD_GAP + LETTER
        start = at
        for j, token in enumerate(VOCAB.encode(word)):
            if j:
                parts.append(silence(LETTER_GAP))
                at += LETTER_GAP
            parts.append(_tone(token))
            at += LETTER
        words.append((word, start, at))
    parts.append(silence(pad))
    return np.concatenate(parts), words
