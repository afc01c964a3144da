"""The embedded synthetic corpus: English sentences spoken by espeak-ng.

``synthesize_corpus`` writes train/dev/test/test-indomain in LibriSpeech layout::

    OUT/train/SPK/CHAP/SPK-CHAP-UUUU.flac      16 kHz mono 16-bit FLAC
    OUT/train/SPK/CHAP/SPK-CHAP.trans.txt      "SPK-CHAP-UUUU TEXT" lines, sorted
    OUT/SPEAKERS.TXT                           who each speaker is
    OUT/synth.json                             settings and counts; marks the corpus done

A speaker is one espeak-ng English voice with one variant, rate and pitch. No voice and
variant pair is shared between splits, the variants that speak dev and test never speak in
training, and no sentence occurs twice in the corpus.

With ``text = "english"`` (the default; see :mod:`asr.corpora.synthetic.english`) training
reads WordNet's sentences and some generated ones; **dev and test** are everyday English from
the fortune files, a source training never draws on; **test-indomain** holds out WordNet and
generated sentences, the kind training read. With ``text = "generator"`` every split is
generated. Output depends only on the config, not on the number of worker processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import json
import math
import os
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from asr.audio import SAMPLE_RATE
from asr.corpora.synthetic.english import english_splits
from asr.corpora.synthetic.espeak import (
    ESPEAK,
    FEMALE_VARIANTS,
    MALE_VARIANTS,
    VOICES,
    EspeakNotFoundError,
    check_voices,
    speak,
)
from asr.corpora.synthetic.sentences import generate_sentences
from asr.errors import UserError
from asr.corpora.synthetic.phonemes import phonemize_by_voice
from asr.io import atomic_path, atomic_write
from asr.progress import progress as progress_bar
from asr.progress import write as write_progress

PEAK = 0.9  # full scale; peak level after normalisation, headroom below 16-bit clipping
SILENCE_LEVEL = 0.02  # of the peak amplitude; quieter samples at the end count as silence
TRAILING_SILENCE = 0.1  # s of pause kept after the last sound
SPLITS = ("train", "dev", "test", "test-indomain")
TEXTS = ("english", "generator")
UTTERANCES_PER_CHAPTER = 50
CHUNK_SIZE = 8  # utterances per task sent to a worker; amortises inter-process overhead
FIRST_SPEAKER_ID = 100
FIRST_CHAPTER_ID = 1000
# Noise colours as the exponent of the power spectrum, P(f) ~ 1 / f**exponent.
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Independent random streams drawn from the corpus seed.
_SPEAKER_STREAM, _NOISE_STREAM, _SILENCE_STREAM = 0, 1, 2
SYNTH_FILE = "synth.json"
SPEAKERS_FILE = "SPEAKERS.TXT"


class CorpusMismatchError(UserError, RuntimeError):
    """The output directory holds a corpus made with other settings."""


@dataclass(frozen=True)
class SynthConfig:
    """What to synthesise. ``jobs`` changes the speed, never the output."""

    text: str = "english"  # or "generator": every split generated (see the module docstring)
    # 11,000 sentences (~9 h of audio) fit four epochs into the demo's 15 minutes (about 13 in
    # all on 2 cores); the covering selection finds 23,000 distinct words in them.
    train_utterances: int = 11000
    dev_utterances: int = 200
    test_utterances: int = 300
    test_indomain_utterances: int = 200
    # Many training speakers with few utterances each generalise to unseen voices far better
    # than few with many: 240 speakers gave 68% dev WER after two epochs where 40 gave 81%.
    train_speakers: int = 300
    dev_speakers: int = 8
    test_speakers: int = 8
    test_indomain_speakers: int = 8
    # Female and male espeak-ng variants that speak only outside training (dev and the tests),
    # in every accent: the tests hear voices, not just voice and accent pairs, that training never did.
    held_out_variants: tuple[int, int] = (3, 5)
    seed: int = 0
    noise: float = 0.2  # probability that an utterance gets background noise
    snr_db: tuple[float, float] = (20.0, 35.0)  # dB, speech power over noise power
    # s of silence added before the speech and, drawn apart, after it. espeak-ng starts
    # speaking at the first sample; a model that never hears a lead-in fails on one: the
    # demo model trained without this lost the first word of many utterances behind 50 ms
    # of silence (10.7% -> 17.4% WER), and so of every piece cut from a long file.
    edge_silence: tuple[float, float] = (0.0, 0.4)
    rate_wpm: tuple[int, int] = (130, 190)  # words per minute, inclusive
    pitch: tuple[int, int] = (30, 70)  # espeak-ng pitch 0..99, inclusive
    min_words: int = 3
    max_words: int = 15
    jobs: int = os.cpu_count() or 1

    def __post_init__(self) -> None:
        for split in SPLITS:
            utterances, speakers = self.utterances(split), self.speakers(split)
            if utterances < 0 or speakers < 0 or (utterances > 0 and not 0 < speakers <= utterances):
                raise ValueError(f"{split}: need 1 <= speakers <= utterances, got {speakers} and {utterances}")
        if self.text not in TEXTS:
            raise ValueError(f"text must be one of {', '.join(TEXTS)}, got {self.text!r}")
        female, male = self.held_out_variants
        if not (0 <= female < len(FEMALE_VARIANTS) and 0 <= male < len(MALE_VARIANTS)):
            raise ValueError(f"held_out_variants: at most {len(FEMALE_VARIANTS) - 1} female and "
                             f"{len(MALE_VARIANTS) - 1} male variants can be held out")
        train_pairs = len(VOICES) * (len(FEMALE_VARIANTS) + len(MALE_VARIANTS) - female - male)
        if self.train_speakers > train_pairs:
            raise ValueError(f"at most {train_pairs} training speakers (voice and variant pairs) are available")
        held_out = len(VOICES) * (female + male)
        if held_out and sum(self.speakers(s) for s in SPLITS[1:]) > held_out:
            raise ValueError(f"at most {held_out} dev and test speakers (held-out voice and variant pairs) are available")
        if not held_out and sum(self.speakers(s) for s in SPLITS) > train_pairs:
            raise ValueError(f"at most {train_pairs} speakers (voice and variant pairs) are available")
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f"noise is a probability, got {self.noise}")
        if not (self.snr_db[0] <= self.snr_db[1] and 80 <= self.rate_wpm[0] <= self.rate_wpm[1]
                and 0 <= self.pitch[0] <= self.pitch[1] <= 99 and 0 <= self.edge_silence[0] <= self.edge_silence[1]):
            raise ValueError("snr_db, rate_wpm, pitch and edge_silence must be (low, high) ranges; "
                             "rate >= 80, pitch 0..99, silence >= 0")
        if self.jobs < 1:
            raise ValueError(f"jobs must be at least 1, got {self.jobs}")

    def utterances(self, split: str) -> int:
        return getattr(self, f"{split.replace('-', '_')}_utterances")

    def speakers(self, split: str) -> int:
        return getattr(self, f"{split.replace('-', '_')}_speakers")


@dataclass(frozen=True)
class Speaker:
    """One line of SPEAKERS.TXT: an espeak-ng voice, variant, rate and pitch."""

    id: int
    sex: str  # "F" or "M"
    subset: str
    voice: str
    variant: str
    rate_wpm: int
    pitch: int


@dataclass(frozen=True)
class SynthReport:
    """What ``synthesize_corpus`` found or made."""

    out_dir: Path
    utterances: dict[str, int]  # split -> utterances on disk
    audio_seconds: float
    failures: tuple[str, ...]  # utterance ids espeak-ng could not render
    wall_seconds: float
    already_done: bool  # the corpus was complete before this call


@dataclass(frozen=True)
class _Utterance:
    index: int  # position in the corpus; seeds this utterance's noise
    split: str
    speaker: Speaker
    chapter: int
    number: int
    text: str

    @property
    def id(self) -> str:
        return f"{self.speaker.id}-{self.chapter}-{self.number:04d}"

    @property
    def path(self) -> Path:
        return Path(self.split, str(self.speaker.id), str(self.chapter), self.id + ".flac")


def _make_speakers(config: SynthConfig) -> list[Speaker]:
    """Speakers of all splits, alternately female and male while female voices last; each
    gets a voice and variant pair that no other speaker has, and only the held-out variants
    speak outside training (all of them when none are held out)."""
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
    for split in SPLITS:
        candidates = (p for p in interleaved[split == "train"] if p[:2] not in used)
        for _ in range(config.speakers(split)):
            voice, variant, sex = next(candidates)
            used.add((voice, variant))
            rate = int(rng.integers(config.rate_wpm[0], config.rate_wpm[1] + 1))
            pitch = int(rng.integers(config.pitch[0], config.pitch[1] + 1))
            speakers.append(Speaker(FIRST_SPEAKER_ID + len(speakers), sex, split, voice, variant, rate, pitch))
    return speakers


def _split_texts(config: SynthConfig) -> dict[str, list[str]]:
    if config.text == "english":
        text = english_splits(*(config.utterances(s) for s in SPLITS), seed=config.seed,
                              min_words=config.min_words, max_words=config.max_words)
        return {"train": text.train, "dev": text.dev, "test": text.test, "test-indomain": text.test_indomain}
    sentences = iter(generate_sentences(sum(config.utterances(s) for s in SPLITS), config.seed,
                                        config.min_words, config.max_words))
    return {split: [next(sentences) for _ in range(config.utterances(split))] for split in SPLITS}


def _plan(config: SynthConfig) -> list[_Utterance]:
    """Every utterance of the corpus: sentence, speaker, chapter and number."""
    speakers = _make_speakers(config)
    plan: list[_Utterance] = []
    chapter = FIRST_CHAPTER_ID
    for split, texts in _split_texts(config).items():
        group = [s for s in speakers if s.subset == split]
        for k, speaker in enumerate(group):
            own = texts[k :: len(group)]  # sentences are in random order, so round-robin is fair
            for number, text in enumerate(own):
                plan.append(_Utterance(len(plan), split, speaker, chapter + number // UTTERANCES_PER_CHAPTER,
                                       number % UTTERANCES_PER_CHAPTER, text))
            chapter += math.ceil(len(own) / UTTERANCES_PER_CHAPTER)
    return plan


@dataclass(frozen=True)
class _Job:
    utterance: _Utterance
    out_path: Path
    espeak: str
    seed: int
    noise: float
    snr_db: tuple[float, float]
    edge_silence: tuple[float, float]


def _espeak_wav(espeak: str, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
    """Speak ``text`` in ``speaker``'s voice; float32 samples in [-1, 1] and their sample rate."""
    return speak(text, f"{speaker.voice}+{speaker.variant}", speaker.rate_wpm, speaker.pitch, espeak)


def colored_noise(rng: np.random.Generator, n: int, exponent: float) -> np.ndarray:
    """Gaussian noise of length ``n`` with power spectrum ~ 1 / f**exponent, unit power."""
    size = 1 << max(n - 1, 1).bit_length()  # a power of two: FFTs of odd lengths are ~10x slower
    spectrum = np.fft.rfft(rng.standard_normal(size))
    frequencies = np.fft.rfftfreq(size)
    frequencies[0] = frequencies[1]  # keep DC finite
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2), size)[:n]
    return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)


def _trim_trailing_silence(audio: np.ndarray) -> np.ndarray:
    """Cut espeak-ng's trailing pause (~0.33 s, 14% of an average utterance) to TRAILING_SILENCE.

    Training time goes to speech instead of silence the model learns nothing from.
    """
    loud = np.flatnonzero(np.abs(audio) > SILENCE_LEVEL * np.max(np.abs(audio), initial=0.0))
    if loud.size == 0:
        return audio
    return audio[: min(audio.size, loud[-1] + 1 + round(TRAILING_SILENCE * SAMPLE_RATE))]


def _render(job: _Job) -> tuple[str, float | str]:
    """Synthesise one utterance; return its id and duration (s), or the error message."""
    utterance = job.utterance
    try:
        audio, rate = _espeak_wav(job.espeak, utterance.text, utterance.speaker)
    except subprocess.CalledProcessError as err:
        return utterance.id, err.stderr.decode(errors="replace").strip() or f"exit status {err.returncode}"
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        return utterance.id, str(err)
    # soxr directly (librosa's "soxr_hq" backend) skips librosa's ~2 s first-call import in every worker.
    speech = _trim_trailing_silence(soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ"))
    edges = np.random.default_rng([job.seed, _SILENCE_STREAM, utterance.index]).uniform(*job.edge_silence, size=2)
    before, after = (np.zeros(round(s * SAMPLE_RATE), np.float32) for s in edges)
    audio = np.concatenate([before, speech, after])
    rng = np.random.default_rng([job.seed, _NOISE_STREAM, utterance.index])
    if rng.random() < job.noise:
        exponent = NOISE_EXPONENTS[rng.choice(sorted(NOISE_EXPONENTS))]
        snr_db = rng.uniform(*job.snr_db)
        speech_power = np.mean(speech**2)
        audio = audio + colored_noise(rng, audio.size, exponent) * np.sqrt(speech_power / 10 ** (snr_db / 10))
    audio = audio * (PEAK / max(float(np.max(np.abs(audio))), 1e-9))
    job.out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(job.out_path) as partial:  # an interrupted run never leaves a truncated file
        sf.write(partial, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return utterance.id, audio.size / SAMPLE_RATE


def _fingerprint(config: SynthConfig, plan: list[_Utterance]) -> dict:
    """What makes two corpora the same: the settings (not ``jobs``) and the planned utterances."""
    settings = asdict(config)
    del settings["jobs"]
    digest = hashlib.sha256()
    for u in plan:
        s = u.speaker
        digest.update(f"{u.path}|{u.text}|{s.voice}+{s.variant}|{s.rate_wpm}|{s.pitch}\n".encode())
    return json.loads(json.dumps({"config": settings, "plan_sha256": digest.hexdigest()}))


def _write_speakers(out_dir: Path, speakers: list[Speaker]) -> None:
    lines = [";ID  |SEX| SUBSET | VOICE          | VARIANT  | RATE | PITCH"]
    lines += [f"{s.id:<4d} | {s.sex} | {s.subset:<6} | {s.voice:<14} | {s.variant:<8} | "
              f"{s.rate_wpm:4d} | {s.pitch:5d}" for s in speakers]
    (out_dir / SPEAKERS_FILE).write_text("\n".join(lines) + "\n")


def _write_transcripts(out_dir: Path, plan: list[_Utterance]) -> None:
    chapters: dict[Path, list[str]] = {}
    for u in plan:
        if (out_dir / u.path).exists():
            chapters.setdefault(out_dir / u.path.parent, []).append(f"{u.id} {u.text}")
    for directory, lines in chapters.items():
        speaker, chapter = directory.parent.name, directory.name
        (directory / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(sorted(lines)) + "\n")


def _write_phones(out_dir: Path, plan: list[_Utterance], espeak: str, jobs: int) -> None:
    """``SPK-CHAP.phones.txt`` beside each chapter's transcript that lacks one: the phones
    each utterance was spoken with (asr/corpora/synthetic/phonemes.py), which ``asr prepare``
    puts in the manifest for phone models."""
    missing = [u for u in plan if (out_dir / u.path).exists()
               and not (out_dir / u.path.parent / f"{u.speaker.id}-{u.path.parent.name}.phones.txt").exists()]
    if not missing:
        return
    phones = phonemize_by_voice(((u.text, u.speaker.voice) for u in missing), espeak, jobs)
    chapters: dict[Path, list[str]] = {}
    for u, spoken in zip(missing, phones):
        chapters.setdefault(out_dir / u.path.parent, []).append(f"{u.id} {spoken}")
    for directory, lines in chapters.items():
        with atomic_write(directory / f"{directory.parent.name}-{directory.name}.phones.txt") as f:
            f.write("\n".join(sorted(lines)) + "\n")


def synthesize_corpus(out_dir: Path, config: SynthConfig, progress: bool = True) -> SynthReport:
    """Render the corpus ``config`` describes into ``out_dir``; resume or skip if partly or fully there.

    Raises ``EspeakNotFoundError`` when espeak-ng is missing and ``CorpusMismatchError``
    when ``out_dir`` holds a corpus made with other settings.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    plan = _plan(config)
    fingerprint = _fingerprint(config, plan)
    state_path = out_dir / SYNTH_FILE
    if state_path.exists():
        state = json.loads(state_path.read_text())
        if {k: state.get(k) for k in fingerprint} != fingerprint:
            raise CorpusMismatchError(
                f"{out_dir} holds a corpus made with other settings: delete it or choose another output directory"
            )
        if state.get("complete") and all((out_dir / u.path).exists() for u in plan):
            espeak = shutil.which(ESPEAK)
            if espeak is not None:  # a corpus made before phones were written gets them now
                _write_phones(out_dir, plan, espeak, config.jobs)
            return SynthReport(out_dir, state["utterances"], state["audio_seconds"], (),
                               time.perf_counter() - start, already_done=True)

    espeak = shutil.which(ESPEAK)
    if espeak is None:
        raise EspeakNotFoundError()
    check_voices(espeak)
    out_dir.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps({**fingerprint, "complete": False}, indent=2) + "\n")
    _write_speakers(out_dir, sorted({u.speaker for u in plan}, key=lambda s: s.id))

    durations: dict[str, float] = {}
    pending = []
    for u in plan:
        if (out_dir / u.path).exists():
            durations[u.id] = sf.info(out_dir / u.path).duration
        else:
            pending.append(_Job(u, out_dir / u.path, espeak, config.seed, config.noise, config.snr_db,
                                        config.edge_silence))
    failures: list[str] = []
    with contextlib.ExitStack() as stack:
        if config.jobs > 1 and len(pending) > 1:
            pool = stack.enter_context(Pool(min(config.jobs, len(pending))))
            results = pool.imap_unordered(_render, pending, chunksize=CHUNK_SIZE)
        else:
            results = map(_render, pending)
        for utterance_id, result in progress_bar(results, total=len(pending), desc="synthesising", unit="utt",
                                                 disable=not progress):
            if isinstance(result, str):
                failures.append(utterance_id)
                write_progress(f"{ESPEAK} failed on {utterance_id}: {result}")
            else:
                durations[utterance_id] = result

    _write_transcripts(out_dir, plan)
    _write_phones(out_dir, plan, espeak, config.jobs)
    counts = {split: sum(u.split == split and u.id in durations for u in plan) for split in SPLITS}
    audio_seconds = round(sum(durations.values()), 3)
    state = {**fingerprint, "complete": not failures, "utterances": counts, "audio_seconds": audio_seconds,
             "failures": sorted(failures)}
    state_path.write_text(json.dumps(state, indent=2) + "\n")
    return SynthReport(out_dir, counts, audio_seconds, tuple(sorted(failures)), time.perf_counter() - start,
                       already_done=False)

