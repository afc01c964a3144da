"""What the synthetic corpus holds: :class:`SynthConfig`, its splits and its settings."""

from __future__ import annotations

import os
from dataclasses import dataclass

from asr.corpora.synthetic.espeak import FEMALE_VARIANTS, MALE_VARIANTS, VOICES

SPLITS = ("train", "dev", "test", "test-indomain", "test-engine")
TEXTS = ("english", "generator")


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesise. ``jobs`` changes the speed, never the output."""

    text: str = "english"  # or "generator": every split generated (see the corpus module's docstring)
    # 11,000 sentences (~9 h of audio) fit four epochs into the demo's 15 minutes (about 13 in
    # all on 2 cores); the covering selection finds 23,000 distinct words in them.
    train_utterances: int = 11000
    dev_utterances: int = 200
    test_utterances: int = 300
    test_indomain_utterances: int = 200
    # The first test_engine_utterances sentences of test, spoken again by flite, a synthesizer
    # training never hears: how much of the model's accuracy belongs to espeak-ng alone.
    test_engine_utterances: int = 300
    # Many training speakers with few utterances each generalise to unseen voices far better
    # than few with many: 240 speakers gave 68% dev WER after two epochs where 40 gave 81%.
    train_speakers: int = 300
    dev_speakers: int = 8
    test_speakers: int = 8
    test_indomain_speakers: int = 8
    test_engine_speakers: int = 10  # each flite voice twice, at two speeds
    # Female and male espeak-ng variants that speak only outside training (dev and the tests),
    # in every accent: the tests hear voices, not just voice and accent pairs, that training never did.
    held_out_variants: tuple[int, int] = (3, 5)
    # Share of the training speakers that are festival voices rather than espeak-ng ones (0:
    # espeak-ng alone). Only training hears festival; dev and the espeak-ng tests stay as they were.
    festival_share: float = 0.2
    seed: int = 0
    noise: float = 0.2  # probability that an utterance gets background noise
    snr_db: tuple[float, float] = (20.0, 35.0)  # dB, speech power over noise power
    # s of silence added before the speech and, drawn apart, after it. espeak-ng starts
    # speaking at the first sample; a model that never hears a lead-in fails on one: the
    # demo model trained without this lost the first word of many utterances behind 50 ms
    # of silence (10.7% -> 17.4% WER), and so of every piece cut from a long file.
    edge_silence: tuple[float, float] = (0.0, 0.4)
    rate_wpm: tuple[int, int] = (130, 190)  # espeak-ng words per minute, inclusive
    pitch: tuple[int, int] = (30, 70)  # espeak-ng pitch 0..99, inclusive
    # festival and flite speakers' speed, % of their voice's own (Duration_Stretch = 100 / speed), inclusive
    speed_percent: tuple[int, int] = (85, 120)
    f0_mean: tuple[int, int] = (80, 150)  # Hz, mean pitch of festival's diphone voices (their own: 105)
    # Per training speaker, any engine, drawn apart: the share whose vocal tract and pitch are
    # scaled by a factor from `warp` (resampled, then stretched back to their length)...
    warp_share: float = 0.3
    warp: tuple[float, float] = (0.9, 1.1)
    # ... whose speech is sped up or slowed down, pitch kept, by a factor from `tempo`...
    tempo_share: float = 0.2
    tempo: tuple[float, float] = (0.85, 1.15)
    # ... and who speak in a room: exponentially decaying noise after the direct sound, dying
    # away by 60 dB in `rt60` s, with the direct sound `drr_db` dB above the reverberation.
    room_share: float = 0.2
    rt60: tuple[float, float] = (0.2, 0.6)
    drr_db: tuple[float, float] = (0.0, 10.0)
    min_words: int = 3
    max_words: int = 15
    jobs: int = os.cpu_count() or 1

    def __post_init__(self) -> None:
        for split in SPLITS:
            utterances, speakers = self.utterances(split), self.speakers(split)
            if utterances < 0 or speakers < 0 or (utterances > 0 and not 0 < speakers <= utterances):
                raise ValueError(f"{split}: need 1 <= speakers <= utterances, got {speakers} and {utterances}")
        if self.test_engine_utterances > self.test_utterances:
            raise ValueError(f"test-engine speaks test's sentences: at most {self.test_utterances} utterances "
                             f"(the test split's), got {self.test_engine_utterances}")
        if self.text not in TEXTS:
            raise ValueError(f"text must be one of {', '.join(TEXTS)}, got {self.text!r}")
        female, male = self.held_out_variants
        if not (0 <= female < len(FEMALE_VARIANTS) and 0 <= male < len(MALE_VARIANTS)):
            raise ValueError(f"held_out_variants: at most {len(FEMALE_VARIANTS) - 1} female and "
                             f"{len(MALE_VARIANTS) - 1} male variants can be held out")
        train_pairs = len(VOICES) * (len(FEMALE_VARIANTS) + len(MALE_VARIANTS) - female - male)
        if self.espeak_train_speakers > train_pairs:
            raise ValueError(f"at most {train_pairs} espeak-ng training speakers (voice and variant pairs) "
                             "are available")
        held_out = len(VOICES) * (female + male)
        espeak_tests = sum(self.speakers(s) for s in ("dev", "test", "test-indomain"))
        if held_out and espeak_tests > held_out:
            raise ValueError(f"at most {held_out} dev and test speakers (held-out voice and variant pairs) are available")
        if not held_out and self.espeak_train_speakers + espeak_tests > train_pairs:
            raise ValueError(f"at most {train_pairs} espeak-ng speakers (voice and variant pairs) are available")
        for name in ("noise", "festival_share", "warp_share", "tempo_share", "room_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} is a probability, got {getattr(self, name)}")
        if not (self.snr_db[0] <= self.snr_db[1] and 80 <= self.rate_wpm[0] <= self.rate_wpm[1]
                and 0 <= self.pitch[0] <= self.pitch[1] <= 99 and 0 <= self.edge_silence[0] <= self.edge_silence[1]):
            raise ValueError("snr_db, rate_wpm, pitch and edge_silence must be (low, high) ranges; "
                             "rate >= 80, pitch 0..99, silence >= 0")
        if not (25 <= self.speed_percent[0] <= self.speed_percent[1] <= 400
                and 40 <= self.f0_mean[0] <= self.f0_mean[1] <= 400):
            raise ValueError("speed_percent and f0_mean must be (low, high) ranges; speed 25..400 %, f0 40..400 Hz")
        if not (0.5 <= self.warp[0] <= self.warp[1] <= 2.0 and 0.5 <= self.tempo[0] <= self.tempo[1] <= 2.0
                and 0.0 < self.rt60[0] <= self.rt60[1] and self.drr_db[0] <= self.drr_db[1]):
            raise ValueError("warp, tempo, rt60 and drr_db must be (low, high) ranges; warp and tempo 0.5..2, rt60 > 0")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")

    def utterances(self, split: str) -> int:
        return getattr(self, f"{split.replace('-', '_')}_utterances")

    def speakers(self, split: str) -> int:
        return getattr(self, f"{split.replace('-', '_')}_speakers")

    @property
    def festival_train_speakers(self) -> int:
        return round(self.festival_share * self.train_speakers)

    @property
    def espeak_train_speakers(self) -> int:
        return self.train_speakers - self.festival_train_speakers
