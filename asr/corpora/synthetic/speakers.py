"""Who speaks the synthetic corpus: each speaker's engine, voice and settings, and SPEAKERS.TXT.

- **train**: espeak-ng voice and variant pairs, and a share of festival voices (each at its
  own speed and, for the diphone voices, pitch); some of either reshaped (vocal tract and
  pitch, tempo) or put in a room (:mod:`~asr.corpora.synthetic.perturb`);
- **dev, test, test-indomain**: espeak-ng pairs of the held-out variants, unperturbed;
- **test-engine**: flite voices, a synthesizer training never hears, unperturbed.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from asr.corpora.synthetic import festival, flite
from asr.corpora.synthetic.config import SPLITS, SynthConfig
from asr.corpora.synthetic.espeak import FEMALE_VARIANTS, MALE_VARIANTS, VOICES
from asr.io import write_text_atomic

FIRST_SPEAKER_ID = 100
SPEAKERS_FILE = "SPEAKERS.TXT"
ENGINES = ("espeak", "festival", "flite")
# Independent random streams drawn from the corpus seed (the corpus module uses 1 and 2).
_SPEAKER_STREAM, _ENGINE_STREAM, _PERTURB_STREAM = 0, 3, 4


@dataclass(frozen=True)
class Speaker:
    """One line of SPEAKERS.TXT: an engine's voice, its settings, and what was done to it after."""

    id: int
    sex: str  # "F" or "M"
    subset: str
    voice: str
    variant: str  # espeak-ng's; "-" for other engines
    rate: int  # espeak-ng: words per minute; festival, flite: % of the voice's own speed
    pitch: int  # espeak-ng: 0..99; festival's diphone voices: mean F0 in Hz; 0: the voice's own
    engine: str = "espeak"
    warp: float = 1.0  # vocal tract and pitch scaled by this (perturb.reshape_voice)
    tempo: float = 1.0  # sped up by this, pitch kept
    rt60: float = 0.0  # s; 0: no room
    drr_db: float = 0.0  # direct sound over reverberation, when in a room

    @property
    def label(self) -> str:
        """SPEAKERS.TXT's VOICE column: espeak-ng's voice name, or ``engine:voice`` for the others."""
        return self.voice if self.engine == "espeak" else f"{self.engine}:{self.voice}"


def _espeak_speakers(config: SynthConfig) -> list[Speaker]:
    """espeak-ng speakers of train, dev, test and test-indomain, alternately female and male
    while female voices last; each gets a voice and variant pair that no other speaker has,
    and only the held-out variants speak outside training (all of them when none are held out)."""
    rng = np.random.default_rng([config.seed, _SPEAKER_STREAM])
    pools: dict[bool, list[list[tuple[str, str, str]]]] = {True: [], False: []}  # in training? -> per sex
    for sex, variants, held in (("F", FEMALE_VARIANTS, config.held_out_variants[0]),
                                ("M", MALE_VARIANTS, config.held_out_variants[1])):
        shuffled = [variants[i] for i in rng.permutation(len(variants))]
        for training, chosen in ((True, shuffled[held:]), (False, shuffled[:held] if held else shuffled)):
            pairs = [(voice, variant, sex) for voice in VOICES for variant in chosen]
            pools[training].append([pairs[i] for i in rng.permutation(len(pairs))])
    interleaved = {training: [p for pair in itertools.zip_longest(*by_sex) for p in pair if p is not None]
                   for training, by_sex in pools.items()}
    used: set[tuple[str, str]] = set()
    speakers: list[Speaker] = []
    for split in SPLITS[:4]:
        candidates = (p for p in interleaved[split == "train"] if p[:2] not in used)
        count = config.espeak_train_speakers if split == "train" else config.speakers(split)
        for _ in range(count):
            voice, variant, sex = next(candidates)
            used.add((voice, variant))
            rate = int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1))
            pitch = int(rng.integers(config.pitch[0], config.pitch[1] + 1))
            speakers.append(Speaker(0, sex, split, voice, variant, rate, pitch))
    return speakers


def _other_speakers(config: SynthConfig) -> list[Speaker]:
    """festival's training speakers and flite's test-engine ones, the voices taken in turn."""
    rng = np.random.default_rng([config.seed, _ENGINE_STREAM])
    speakers = []
    for split, engine, voices, count in (
        ("train", "festival", {v: sex for v, (sex, _) in festival.VOICES.items()}, config.festival_train_speakers),
        ("test-engine", "flite", flite.VOICES, config.test_engine_speakers),
    ):
        names = list(voices)
        for k in range(count):
            voice = names[k % len(names)]
            speed = int(rng.integers(config.speed_percent[0], config.speed_percent[1] + 1))
            f0 = int(rng.integers(config.f0_mean[0], config.f0_mean[1] + 1))
            pitch = f0 if engine == "festival" and voice in festival.PITCHED_VOICES else 0
            speakers.append(Speaker(0, voices[voice], split, voice, "-", speed, pitch, engine))
    return speakers


def _perturbed(config: SynthConfig, speaker: Speaker) -> Speaker:
    """``speaker`` reshaped and put in a room as the config's shares say; drawn from the seed
    and the speaker's id alone, so one speaker's draw never moves another's."""
    rng = np.random.default_rng([config.seed, _PERTURB_STREAM, speaker.id])
    draws = rng.random(3), rng.uniform(*config.warp), rng.uniform(*config.tempo)
    (warped, sped, roomed), warp, tempo = draws
    rt60, drr_db = round(rng.uniform(*config.rt60), 2), round(rng.uniform(*config.drr_db), 1)
    return replace(speaker,
                   warp=round(warp, 3) if warped < config.warp_share else 1.0,
                   tempo=round(tempo, 3) if sped < config.tempo_share else 1.0,
                   rt60=rt60 if roomed < config.room_share else 0.0,
                   drr_db=drr_db if roomed < config.room_share else 0.0)


def make_speakers(config: SynthConfig) -> list[Speaker]:
    """Every speaker of the corpus, numbered from FIRST_SPEAKER_ID in split order."""
    unnumbered = _espeak_speakers(config) + _other_speakers(config)
    speakers = []
    for split in SPLITS:
        for speaker in (s for s in unnumbered if s.subset == split):
            numbered = replace(speaker, id=FIRST_SPEAKER_ID + len(speakers))
            speakers.append(_perturbed(config, numbered) if split == "train" else numbered)
    return speakers


def write_speakers(path: Path, speakers: list[Speaker]) -> None:
    lines = [";RATE: espeak-ng words per minute, else % of the voice's own speed. PITCH: espeak-ng 0-99, else mean F0 "
             "in Hz (0: the voice's own).",
             ";WARP, TEMPO: vocal tract and pitch, and speed, scaled after synthesis. RT60: s of a room (0: none), "
             "DRR: dB of direct sound over the room's.",
             ";ID  |SEX| SUBSET        | VOICE                          | VARIANT  | RATE | PITCH | WARP  | TEMPO | RT60 | DRR"]
    lines += [f"{s.id:<4d} | {s.sex} | {s.subset:<13} | {s.label:<30} | {s.variant:<8} | {s.rate:4d} | {s.pitch:5d} | "
              f"{s.warp:5.3f} | {s.tempo:5.3f} | {s.rt60:4.2f} | {s.drr_db:4.1f}" for s in speakers]
    write_text_atomic(path, "\n".join(lines) + "\n")
