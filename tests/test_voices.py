"""Voices beyond espeak-ng: festival in training, flite in test-engine, and the perturbations."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.corpora.synthetic import festival, flite
from asr.corpora.synthetic.corpus import SynthConfig, synthesize_corpus
from asr.corpora.synthetic.perturb import reshape_voice, reverberate, room_impulse_response, stretch

SAMPLE_RATE = 16_000
needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")
needs_engines = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("espeak-ng", "festival", "flite")),
    reason="espeak-ng, festival or flite is not installed (apt-get install festival festvox-kallpc16k "
           "festvox-kdlpc16k festvox-us-slt-hts flite)")
# Every split but dev and test-indomain; training all festival, one speaker per voice, and
# test-engine one utterance per flite voice.
VOICES = SynthConfig(text="generator", train_utterances=6, dev_utterances=0, test_utterances=5,
                     test_indomain_utterances=0, test_engine_utterances=5, train_speakers=3, dev_speakers=0,
                     test_speakers=1, test_indomain_speakers=0, test_engine_speakers=5, festival_share=1.0,
                     warp_share=0.0, tempo_share=0.0, room_share=0.0, noise=0.0, max_words=8, seed=2, jobs=2)


def _peak_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(audio.size)))
    return float(np.fft.rfftfreq(audio.size, 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def test_stretch_changes_length_not_pitch() -> None:
    tone = np.sin(2 * np.pi * 150 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    for speed in (0.85, 1.15):
        out = stretch(tone, speed)
        assert out.size == round(tone.size / speed)
        assert _peak_frequency(out) == pytest.approx(150, abs=2)


def test_warp_scales_pitch_and_keeps_length() -> None:
    tone = np.sin(2 * np.pi * 150 * np.arange(SAMPLE_RATE) / SAMPLE_RATE).astype(np.float32)
    for warp in (0.9, 1.1):
        out = reshape_voice(tone, warp=warp)
        assert out.size == tone.size and _peak_frequency(out) == pytest.approx(150 * warp, abs=2)
    assert reshape_voice(tone, warp=1.1, tempo=1.2).size == round(tone.size / 1.2)


def test_room_is_deterministic_by_seed_and_has_the_asked_decay_and_ratio() -> None:
    first = room_impulse_response(np.random.default_rng(1), rt60=0.4, drr_db=5.0, sample_rate=SAMPLE_RATE)
    assert np.array_equal(first, room_impulse_response(np.random.default_rng(1), 0.4, 5.0, SAMPLE_RATE))
    assert not np.array_equal(first, room_impulse_response(np.random.default_rng(2), 0.4, 5.0, SAMPLE_RATE))
    assert first.size == round(0.4 * SAMPLE_RATE) and first[0] == 1.0
    assert 10 * np.log10(1 / np.sum(first[1:] ** 2)) == pytest.approx(5.0, abs=1e-3)
    tail = first[1:] ** 2
    tenth = tail.size // 10
    assert 10 * np.log10(tail[:tenth].sum() / tail[-tenth:].sum()) > 40  # dies away by ~54 dB over 0.9 RT60
    impulse = np.zeros(100, np.float32)
    impulse[0] = 1.0
    assert np.allclose(reverberate(impulse, first)[: first.size], first, atol=1e-6)


def _corpus_audio(root: Path) -> dict[str, np.ndarray]:
    return {p.stem: sf.read(p)[0] for p in sorted(root.rglob("*.flac"))}


@needs_espeak
def test_perturbations_are_deterministic_by_seed_and_change_the_audio(tmp_path: Path) -> None:
    plain = SynthConfig(text="generator", train_utterances=2, dev_utterances=0, test_utterances=0,
                        test_indomain_utterances=0, test_engine_utterances=0, train_speakers=1, dev_speakers=0,
                        test_speakers=0, test_indomain_speakers=0, test_engine_speakers=0, festival_share=0.0,
                        warp_share=0.0, tempo_share=0.0, room_share=0.0, noise=0.0, edge_silence=(0.0, 0.0),
                        max_words=6, seed=4, jobs=1)
    perturbed = replace(plain, warp_share=1.0, tempo_share=1.0, room_share=1.0)
    synthesize_corpus(tmp_path / "plain", plain, progress=False)
    for name in ("a", "b"):
        synthesize_corpus(tmp_path / name, perturbed, progress=False)
    a, b, clean = (_corpus_audio(tmp_path / name) for name in ("a", "b", "plain"))
    assert a.keys() == b.keys() == clean.keys() and len(a) == 2
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(a[k].shape != clean[k].shape or not np.allclose(a[k], clean[k], atol=0.05) for k in a)
    row = next(line for line in (tmp_path / "a" / "SPEAKERS.TXT").read_text().splitlines() if not line.startswith(";"))
    warp, tempo, rt60, _ = (float(f) for f in row.split("|")[7:])
    assert warp != 1.0 and tempo != 1.0 and rt60 > 0


@pytest.fixture(scope="module")
def voices_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not all(shutil.which(tool) for tool in ("espeak-ng", "festival", "flite")):
        pytest.skip("espeak-ng, festival or flite is not installed")
    root = tmp_path_factory.mktemp("voices") / "corpus"
    report = synthesize_corpus(root, VOICES, progress=False)
    assert report.failures == ()
    return root


def _speakers(root: Path) -> dict[str, tuple[str, str]]:
    """speaker id -> (subset, VOICE column)."""
    rows = [[f.strip() for f in line.split("|")] for line in (root / "SPEAKERS.TXT").read_text().splitlines()
            if not line.startswith(";")]
    return {r[0]: (r[2], r[3]) for r in rows}


def _transcripts(root: Path, split: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for trans in (root / split).glob("*/*/*.trans.txt")
                for line in trans.read_text().splitlines())


@needs_engines
def test_festival_and_flite_voices_speak_their_transcripts(voices_corpus: Path) -> None:
    speakers = _speakers(voices_corpus)
    expected = {("train", f"festival:{v}") for v in festival.VOICES} | {("test-engine", f"flite:{v}") for v in flite.VOICES}
    assert expected <= set(speakers.values())
    for split in ("train", "test-engine"):
        texts = _transcripts(voices_corpus, split)
        assert len(texts) == VOICES.utterances(split)
        for utterance_id, text in texts.items():
            path = voices_corpus / split / Path(*utterance_id.split("-")[:2]) / f"{utterance_id}.flac"
            audio, rate = sf.read(path)
            seconds = audio.size / rate
            # a sentence said, not a fragment: awb_time, the voice left out, says 14 words in 0.6 s
            assert rate == SAMPLE_RATE and 0.15 < seconds / len(text.split()) < 1.0, (speakers[utterance_id.split("-")[0]], text)
            assert np.sqrt(np.mean(audio**2)) > 0.02


@needs_engines
def test_test_engine_is_flite_speaking_test_sentences_with_no_training_speaker(voices_corpus: Path) -> None:
    speakers = _speakers(voices_corpus)
    engine = {s for s, (subset, _) in speakers.items() if subset == "test-engine"}
    assert engine and all(speakers[s][1].startswith("flite:") for s in engine)
    assert not any(voice.startswith("flite:") for subset, voice in speakers.values() if subset != "test-engine")
    assert not engine & {s for s, (subset, _) in speakers.items() if subset == "train"}
    test_engine = _transcripts(voices_corpus, "test-engine")
    assert {u.split("-")[0] for u in test_engine} == engine
    assert sorted(test_engine.values()) == sorted(_transcripts(voices_corpus, "test").values())


@needs_engines
def test_festival_output_does_not_depend_on_jobs(voices_corpus: Path, tmp_path: Path) -> None:
    synthesize_corpus(tmp_path, replace(VOICES, jobs=1), progress=False)
    ours, theirs = _corpus_audio(voices_corpus), _corpus_audio(tmp_path)
    assert ours.keys() == theirs.keys() and all(np.array_equal(ours[k], theirs[k]) for k in ours)


@pytest.mark.skipif(shutil.which("festival") is None, reason="festival is not installed")
def test_a_failed_festival_is_replaced() -> None:
    with pytest.raises(ValueError, match="unbound variable : voice_no_such_voice"):
        festival.speak("hello there", "no_such_voice")
    audio, rate = festival.speak("hello there", "kal_diphone")
    assert rate == SAMPLE_RATE and audio.size > rate // 4
    festival.stop()
