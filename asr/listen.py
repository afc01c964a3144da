"""Live transcription: a stream of audio in, text that updates as someone speaks.

A bidirectional model cannot run frame by frame, so :class:`Listener` decodes the open
segment (the audio since the last cut) again every ``update_seconds`` of audio and reports
its words as a partial result. Words become final, and never change after, in two ways:

- when a pause of ``pause_seconds`` follows speech, the segment is decoded up to the pause
  and all its words are final; the next segment starts in the pause;
- while speech goes on, a word that ends at least ``right_context_seconds`` before the newest
  audio, and that another word follows, is final: the backward direction has heard that much
  of what follows it.

The segment is decoded whole each time, left context included, so a word is heard as it
would be in a file. A segment longer than ``max_segment_seconds`` is cut after its last final
word, which bounds the cost of each update however long someone speaks without a pause:
at most ``max_segment_seconds / update_seconds`` seconds of audio decoded per second.
Memory holds one segment and a short history of frame energies (for the noise floor that
pauses are judged against), whatever the length of the stream.

Words are timed in seconds from the start of the stream, and finals never overlap: a word is
kept only when it begins where the last final word ended or after (give or take one output
frame). So no word is doubled where a segment is cut, nor when a decode with more context
joins a final word to the next (that longer word is dropped); a cut falls between words, so
none is lost there.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from asr.align import Word, energy_db
from asr.audio import SAMPLE_RATE
from asr.batching import decode_words, frame_seconds
from asr.formats import word_json
from asr.hypothesis import Decoder
from asr.inference import Recognizer
from asr.segment import LEAD_IN_SECONDS, MIN_PAUSE_SECONDS, PAUSE_FRAME, silent_frames

HISTORY_SECONDS = 30.0  # frame energies kept for the noise floor and speech level


@dataclass(frozen=True)
class ListenOptions:
    update_seconds: float = 0.25  # decode the open segment after this much new audio
    right_context_seconds: float = 0.6  # audio heard after a word before it is final
    pause_seconds: float = MIN_PAUSE_SECONDS  # silence after speech that closes a segment, as transcribe cuts
    max_segment_seconds: float = 12.0  # longest segment decoded at once

    def __post_init__(self) -> None:
        if not 0.05 <= self.update_seconds <= 5.0:
            raise ValueError(f"update interval {self.update_seconds} s: use 0.05 to 5 s")
        if not 0 <= self.right_context_seconds < self.max_segment_seconds / 2:
            raise ValueError(f"right context {self.right_context_seconds} s must be at least 0 and under half "
                             f"the longest segment ({self.max_segment_seconds} s)")
        if not 0.1 <= self.pause_seconds <= 5.0:
            raise ValueError(f"pause {self.pause_seconds} s: use 0.1 to 5 s")
        if not 2.0 <= self.max_segment_seconds <= 60.0:
            raise ValueError(f"longest segment {self.max_segment_seconds} s: use 2 to 60 s")


@dataclass(frozen=True)
class Update:
    """What changed: final words (``final``), or the open segment's other words as they are
    heard now (a partial result, which the next update replaces)."""

    words: tuple[Word, ...]
    final: bool
    start: float  # s from the start of the stream
    end: float
    endpoint: bool = False  # a final that closes its segment at a pause

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    def to_json(self) -> dict:
        return {"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3), "final": self.final,
                "words": [word_json(w) for w in self.words]}


class Listener:
    """Feed 16 kHz mono float32 audio as it arrives; get :class:`Update` objects back."""

    def __init__(self, recognizer: Recognizer, decoder: Decoder, options: ListenOptions | None = None) -> None:
        self.recognizer, self.decoder = recognizer, decoder
        self.options = options or ListenOptions()
        self.segment = np.zeros(0, np.float32)  # the open segment's audio
        self.start = 0  # stream sample where the segment begins
        self.final_until = 0.0  # s: end of the last final word
        # s: one output frame (and float rounding), how far two decodes may time one word edge apart
        self.jitter = frame_seconds(recognizer) + 1e-6
        self.fresh = 0  # samples received since the last update
        self.history: collections.deque[np.ndarray] = collections.deque()  # energies of past frames, in blocks
        self.history_frames = 0
        self.pending = np.zeros(0, np.float32)  # samples short of a whole 10 ms frame
        self.partial = False  # the last partial result had words

    @property
    def now(self) -> float:
        """Seconds of audio received."""
        return (self.start + len(self.segment)) / SAMPLE_RATE

    def feed(self, samples: np.ndarray) -> list[Update]:
        """Take the next samples of the stream (any number); the updates they bring."""
        updates: list[Update] = []
        step = round(self.options.update_seconds * SAMPLE_RATE)
        samples = np.asarray(samples, np.float32)
        while len(samples):
            take = min(len(samples), step - self.fresh)
            self._append(samples[:take])
            samples, self.fresh = samples[take:], self.fresh + take
            if self.fresh >= step:
                self.fresh = 0
                updates += self._update()
        return updates

    def finish(self) -> list[Update]:
        """The end of the stream: the open segment's words are final."""
        updates = self._close(len(self.segment), endpoint=True)
        self.fresh = 0
        return updates

    # --- inside -------------------------------------------------------------------------

    def _append(self, samples: np.ndarray) -> None:
        self.segment = np.concatenate([self.segment, samples])
        whole = np.concatenate([self.pending, samples])
        frames = len(whole) // PAUSE_FRAME
        self.pending = whole[frames * PAUSE_FRAME :]
        if frames:
            self.history.append(energy_db(whole[: frames * PAUSE_FRAME], PAUSE_FRAME))
            self.history_frames += frames
            limit = HISTORY_SECONDS * SAMPLE_RATE / PAUSE_FRAME
            while self.history_frames - len(self.history[0]) >= limit:
                self.history_frames -= len(self.history.popleft())

    def _silence(self) -> np.ndarray:
        """Which 10 ms frames of the segment are pause; (T,) bool."""
        energy = energy_db(self.segment, PAUSE_FRAME)
        return silent_frames(energy, np.concatenate(self.history) if self.history else energy)

    def _update(self) -> list[Update]:
        silent = self._silence()
        sound = np.flatnonzero(~silent)
        pause = round(self.options.pause_seconds * SAMPLE_RATE / PAUSE_FRAME)
        lead_in = round(LEAD_IN_SECONDS * SAMPLE_RATE)  # as transcription keeps before a piece
        if not len(sound):  # nothing said since the cut: keep a lead-in of the silence, drop the rest
            self._drop(len(self.segment) - lead_in)
            return []
        if sound[0] * PAUSE_FRAME > lead_in:  # a model hears a long lead-in of noise worse than a long tail
            self._drop(sound[0] * PAUSE_FRAME - lead_in)
            silent, sound = silent[sound[0] - lead_in // PAUSE_FRAME :], sound - (sound[0] - lead_in // PAUSE_FRAME)
        if len(silent) - 1 - sound[-1] >= pause:  # speech, then a pause: the segment closes in it
            cut = (sound[-1] + 1 + pause // 2) * PAUSE_FRAME
            return self._close(min(cut, len(self.segment)), endpoint=True)
        words = self._decode(len(self.segment))
        # Final: words heard with the right context after them, and followed by another word
        # (the last one may still grow).
        newest = self.now - self.options.right_context_seconds
        count = next((i for i, w in enumerate(words[:-1]) if w.end > newest), max(0, len(words) - 1))
        final, rest = words[:count], words[count:]
        updates = self._emit(final, endpoint=False)
        longest = self.options.max_segment_seconds * SAMPLE_RATE
        if len(self.segment) > longest and (len(rest) > 1 or final or len(self.segment) > 2 * longest):
            # Cut between the last final word and the next, making every word but the last
            # final first if need be (past twice the length, the last one too).
            if not final:
                final = rest[:-1] if len(self.segment) <= 2 * longest else rest
                rest = rest[len(final) :]
                updates += self._emit(final, endpoint=False)
            after = rest[0].start if rest else self.now
            edge = final[-1].end if final else newest  # no words in all that sound: noise
            self._drop(round((edge + after) / 2 * SAMPLE_RATE) - self.start)
        # While there is speech, a partial result every update, changed or not.
        self.partial = bool(rest)
        start, end = (rest[0].start, rest[-1].end) if rest else (self.now, self.now)
        return updates + [Update(tuple(rest), False, start, end)]

    def _close(self, cut: int, endpoint: bool) -> list[Update]:
        """Decode the segment up to sample ``cut`` of it, make its words final, and start
        the next segment there."""
        updates = self._emit(self._decode(cut), endpoint) if cut else []
        self._drop(cut)
        return updates

    def _decode(self, samples: int) -> list[Word]:
        (words,) = decode_words(self.recognizer, self.decoder, [(self.segment[:samples], self.start / SAMPLE_RATE)])
        return self._after_finals(words)

    def _after_finals(self, words: list[Word]) -> list[Word]:
        """The words that begin where the finals end, each after the one before it, so that
        whatever part of them becomes final covers no audio that is final already."""
        kept: list[Word] = []
        floor = self.final_until
        for w in words:
            # A word that begins further back than a frame's jitter was heard again over final
            # audio, often joined to the next (ARICHE final, then ARICHETEXSAS): it is dropped,
            # not cut, since a word's letters carry no times to cut it by, and losing the tail of
            # one misheard word reads better than a caption that says its start twice.
            if w.end > floor and w.start >= floor - self.jitter:
                kept.append(Word(w.text, max(w.start, floor), w.end, w.confidence))
                floor = w.end
        return kept

    def _emit(self, words: list[Word], endpoint: bool) -> list[Update]:
        shown, self.partial = self.partial, self.partial and not endpoint
        if not words:  # a segment that closes without words still clears a partial result on show
            return [Update((), True, self.now, self.now, endpoint=True)] if endpoint and shown else []
        self.final_until = words[-1].end
        return [Update(tuple(words), True, words[0].start, words[-1].end, endpoint)]

    def _drop(self, samples: int) -> None:
        samples = max(0, min(samples, len(self.segment)))
        self.segment = self.segment[samples:]
        self.start += samples


def listen(listener: Listener, blocks: Iterable[np.ndarray]) -> Iterator[Update]:
    """Feed ``blocks`` of 16 kHz audio to ``listener``; every update, then the end's finals."""
    for block in blocks:
        yield from listener.feed(block)
    yield from listener.finish()
