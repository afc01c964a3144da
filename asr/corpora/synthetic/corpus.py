"""The embedded synthetic corpus: English sentences spoken by espeak-ng, festival and flite.

``synthesize_corpus`` writes train/dev/test/test-indomain/test-engine in LibriSpeech layout::

    OUT/train/SPK/CHAP/SPK-CHAP-UUUU.flac      16 kHz mono 16-bit FLAC
    OUT/train/SPK/CHAP/SPK-CHAP.trans.txt      "SPK-CHAP-UUUU TEXT" lines, sorted
    OUT/SPEAKERS.TXT                           who each speaker is
    OUT/synth.json                             settings and counts; marks the corpus done

Who speaks which split is :mod:`~asr.corpora.synthetic.speakers`'s business: espeak-ng and
festival in training, espeak-ng's held-out variants in dev, test and test-indomain, flite
(which training never hears) in test-engine. No speaker speaks in two splits, and no sentence
occurs twice in the corpus except in test-engine, which speaks test's sentences again.

With ``text = "english"`` (the default; see :mod:`asr.corpora.synthetic.english`) training
reads WordNet's sentences and some generated ones; **dev and test** are everyday English from
the fortune files, a source training never draws on; **test-indomain** holds out WordNet and
generated sentences, the kind training read. With ``text = "generator"`` every split is
generated. Output depends only on the config, not on the number of worker processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
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
from asr.corpora.synthetic import espeak, festival, flite
from asr.corpora.synthetic.config import SPLITS, TEXTS, SynthConfig
from asr.corpora.synthetic.english import english_splits
from asr.corpora.synthetic.espeak import EspeakNotFoundError
from asr.corpora.synthetic.festival import FestivalNotFoundError
from asr.corpora.synthetic.flite import FliteNotFoundError
from asr.corpora.synthetic.perturb import reshape_voice, reverberate, room_impulse_response
from asr.corpora.synthetic.sentences import generate_sentences
from asr.corpora.synthetic.speakers import SPEAKERS_FILE, Speaker, make_speakers, write_speakers
from asr.errors import UserError
from asr.corpora.synthetic.phonemes import US_ENGLISH, phonemize_by_voice
from asr.io import atomic_path, atomic_write, write_text_atomic
from asr.progress import progress as progress_bar
from asr.progress import write as write_progress

__all__ = ["SPLITS", "TEXTS", "CorpusMismatchError", "EspeakNotFoundError", "FestivalNotFoundError",
           "FliteNotFoundError", "Speaker", "SynthConfig", "SynthReport", "colored_noise", "synthesize_corpus"]

PEAK = 0.9  # full scale; peak level after normalisation, headroom below 16-bit clipping
SILENCE_LEVEL = 0.02  # of the peak amplitude; quieter samples at the end count as silence
TRAILING_SILENCE = 0.1  # s of pause kept after the last sound
UTTERANCES_PER_CHAPTER = 50
CHUNK_SIZE = 8  # utterances per task sent to a worker; amortises inter-process overhead
FIRST_CHAPTER_ID = 1000
# Noise colours as the exponent of the power spectrum, P(f) ~ 1 / f**exponent.
NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
# Independent random streams drawn from the corpus seed (speakers.py draws 0, 3 and 4).
_NOISE_STREAM, _SILENCE_STREAM, _ROOM_STREAM = 1, 2, 5
SYNTH_FILE = "synth.json"
# engine -> its executable, what says it is missing, and its voice check
_ENGINES = {"espeak": (espeak.ESPEAK, EspeakNotFoundError, espeak.check_voices),
            "festival": (festival.FESTIVAL, FestivalNotFoundError, festival.check_voices),
            "flite": (flite.FLITE, FliteNotFoundError, flite.check_voices)}


class CorpusMismatchError(UserError, RuntimeError):
    """The output directory holds a corpus made with other settings."""


@dataclass(frozen=True)
class SynthReport:
    """What ``synthesize_corpus`` found or made."""

    out_dir: Path
    utterances: dict[str, int]  # split -> utterances on disk
    audio_seconds: float
    failures: tuple[str, ...]  # utterance ids a synthesizer could not render
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


def _split_texts(config: SynthConfig) -> dict[str, list[str]]:
    own_text = SPLITS[:4]  # test-engine speaks test's sentences again
    if config.text == "english":
        text = english_splits(*(config.utterances(s) for s in own_text), seed=config.seed,
                              min_words=config.min_words, max_words=config.max_words)
        texts = {"train": text.train, "dev": text.dev, "test": text.test, "test-indomain": text.test_indomain}
    else:
        sentences = iter(generate_sentences(sum(config.utterances(s) for s in own_text), config.seed,
                                            config.min_words, config.max_words))
        texts = {split: [next(sentences) for _ in range(config.utterances(split))] for split in own_text}
    return {**texts, "test-engine": texts["test"][: config.test_engine_utterances]}


def _plan(config: SynthConfig) -> list[_Utterance]:
    """Every utterance of the corpus: sentence, speaker, chapter and number."""
    speakers = make_speakers(config)
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
    executable: str  # of the speaker's engine
    seed: int
    noise: float
    snr_db: tuple[float, float]
    edge_silence: tuple[float, float]


def _espeak_wav(executable: str, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
    """Speak ``text`` in ``speaker``'s voice; float32 samples in [-1, 1] and their sample rate."""
    return espeak.speak(text, f"{speaker.voice}+{speaker.variant}", speaker.rate, speaker.pitch, executable)


def _speak(executable: str, text: str, speaker: Speaker) -> tuple[np.ndarray, int]:
    """Speak ``text`` in ``speaker``'s voice with its engine; float32 samples in [-1, 1] and their sample rate."""
    if speaker.engine == "festival":
        return festival.speak(text, speaker.voice, 100 / speaker.rate, speaker.pitch, executable)
    if speaker.engine == "flite":
        return flite.speak(text, speaker.voice, 100 / speaker.rate, executable)
    return _espeak_wav(executable, text, speaker)


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
        audio, rate = _speak(job.executable, utterance.text, utterance.speaker)
    except subprocess.CalledProcessError as err:
        return utterance.id, err.stderr.decode(errors="replace").strip() or f"exit status {err.returncode}"
    except (OSError, ValueError, subprocess.SubprocessError) as err:
        return utterance.id, str(err)
    speaker = utterance.speaker
    # soxr directly (librosa's "soxr_hq" backend) skips librosa's ~2 s first-call import in every worker.
    speech = soxr.resample(audio, rate, SAMPLE_RATE, quality="HQ")
    speech = _trim_trailing_silence(reshape_voice(speech, speaker.warp, speaker.tempo))
    if speaker.rt60:  # one room per speaker: its impulse response drawn from the speaker's id
        room = np.random.default_rng([job.seed, _ROOM_STREAM, speaker.id])
        speech = reverberate(speech, room_impulse_response(room, speaker.rt60, speaker.drr_db, SAMPLE_RATE))
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
        digest.update(f"{u.path}|{u.text}|{s.label}+{s.variant}|{s.rate}|{s.pitch}|{s.warp}|{s.tempo}|"
                      f"{s.rt60}|{s.drr_db}\n".encode())
    return json.loads(json.dumps({"config": settings, "plan_sha256": digest.hexdigest()}))


def _write_transcripts(out_dir: Path, plan: list[_Utterance]) -> None:
    chapters: dict[Path, list[str]] = {}
    for u in plan:
        if (out_dir / u.path).exists():
            chapters.setdefault(out_dir / u.path.parent, []).append(f"{u.id} {u.text}")
    for directory, lines in chapters.items():
        speaker, chapter = directory.parent.name, directory.name
        write_text_atomic(directory / f"{speaker}-{chapter}.trans.txt", "\n".join(sorted(lines)) + "\n")


def _write_phones(out_dir: Path, plan: list[_Utterance], executable: str, jobs: int) -> None:
    """``SPK-CHAP.phones.txt`` beside each chapter's transcript that lacks one: the phones
    each utterance was spoken with (asr/corpora/synthetic/phonemes.py), which ``asr prepare``
    puts in the manifest for phone models."""
    missing = [u for u in plan if (out_dir / u.path).exists()
               and not (out_dir / u.path.parent / f"{u.speaker.id}-{u.chapter}.phones.txt").exists()]
    if not missing:
        return
    # An espeak-ng voice's own phonemes; other engines' voices take US English's.
    phones = phonemize_by_voice(((u.text, u.speaker.voice if u.speaker.engine == "espeak" else US_ENGLISH)
                                 for u in missing), executable, jobs)
    chapters: dict[Path, list[str]] = {}
    for u, spoken in zip(missing, phones):
        chapters.setdefault(out_dir / u.path.parent, []).append(f"{u.id} {spoken}")
    for directory, lines in chapters.items():
        with atomic_write(directory / f"{directory.parent.name}-{directory.name}.phones.txt") as f:
            f.write("\n".join(sorted(lines)) + "\n")


def synthesize_corpus(out_dir: Path, config: SynthConfig, progress: bool = True) -> SynthReport:
    """Render the corpus ``config`` describes into ``out_dir``; resume or skip if partly or fully there.

    Raises ``EspeakNotFoundError``, ``FestivalNotFoundError`` or ``FliteNotFoundError`` when
    a synthesizer the corpus needs is missing (one it does not need may be), and
    ``CorpusMismatchError`` when ``out_dir`` holds a corpus made with other settings.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    plan = _plan(config)
    fingerprint = _fingerprint(config, plan)
    state_path = out_dir / SYNTH_FILE
    if state_path.exists():
        try:
            state = json.loads(state_path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            state = {}  # damaged: not this corpus's record, so it is refused below
        if not isinstance(state, dict) or {k: state.get(k) for k in fingerprint} != fingerprint:
            raise CorpusMismatchError(
                f"{out_dir} holds a corpus made with other settings: delete it or choose another output directory"
            )
        if state.get("complete") and all((out_dir / u.path).exists() for u in plan):
            executable = shutil.which(espeak.ESPEAK)
            if executable is not None:  # a corpus made before phones were written gets them now
                _write_phones(out_dir, plan, executable, config.jobs)
            return SynthReport(out_dir, state["utterances"], state["audio_seconds"], (),
                               time.perf_counter() - start, already_done=True)

    executables = {}
    for engine in sorted({u.speaker.engine for u in plan}):
        name, missing, check_voices = _ENGINES[engine]
        executables[engine] = shutil.which(name)
        if executables[engine] is None:
            raise missing()
        check_voices(executables[engine])
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(state_path, json.dumps({**fingerprint, "complete": False}, indent=2) + "\n")
    write_speakers(out_dir / SPEAKERS_FILE, sorted({u.speaker for u in plan}, key=lambda s: s.id))

    durations: dict[str, float] = {}
    pending = []
    for u in plan:
        if (out_dir / u.path).exists():
            durations[u.id] = sf.info(out_dir / u.path).duration
        else:
            pending.append(_Job(u, out_dir / u.path, executables[u.speaker.engine], config.seed, config.noise,
                                config.snr_db, config.edge_silence))
    failures: list[str] = []
    engines = {job.utterance.id: _ENGINES[job.utterance.speaker.engine][0] for job in pending}
    with contextlib.ExitStack() as stack:
        stack.callback(festival.stop)  # the festival this process started when jobs == 1
        if config.jobs > 1 and len(pending) > 1:
            pool = stack.enter_context(Pool(min(config.jobs, len(pending))))
            results = pool.imap_unordered(_render, pending, chunksize=CHUNK_SIZE)
        else:
            results = map(_render, pending)
        for utterance_id, result in progress_bar(results, total=len(pending), desc="synthesising", unit="utt",
                                                 disable=not progress):
            if isinstance(result, str):
                failures.append(utterance_id)
                write_progress(f"{engines[utterance_id]} failed on {utterance_id}: {result}")
            else:
                durations[utterance_id] = result

    _write_transcripts(out_dir, plan)
    _write_phones(out_dir, plan, executables.get("espeak") or espeak.ESPEAK, config.jobs)
    counts = {split: sum(u.split == split and u.id in durations for u in plan) for split in SPLITS}
    audio_seconds = round(sum(durations.values()), 3)
    state = {**fingerprint, "complete": not failures, "utterances": counts, "audio_seconds": audio_seconds,
             "failures": sorted(failures)}
    write_text_atomic(state_path, json.dumps(state, indent=2) + "\n")
    return SynthReport(out_dir, counts, audio_seconds, tuple(sorted(failures)), time.perf_counter() - start,
                       already_done=False)

