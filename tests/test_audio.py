"""Audio in the formats users have: what libsndfile cannot open is decoded by FFmpeg (PyAV).

Every file here is encoded by the test itself with PyAV: m4a/AAC as phones record, mp4 with
a video track as meetings are saved, webm/Opus as browsers record, Ogg and MP3.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import SAMPLE_RATE, AudioError, audio_duration, load_audio, resample, stream_audio
from asr.cli import main
from asr.transcribe import find_inputs
from asr.validate import validate_manifests

av = pytest.importorskip("av")

# (file name, container, codec, sample rate, channels, with a video track)
FORMATS = [
    ("phone.m4a", "ipod", "aac", 44_100, 2, False),
    ("meeting.mp4", "mp4", "aac", 48_000, 1, True),
    ("browser.webm", "webm", "libopus", 48_000, 1, False),
    ("voice.ogg", "ogg", "libopus", 48_000, 2, False),
    ("music.ogg", "ogg", "vorbis", 44_100, 2, False),
    ("podcast.mp3", "mp3", "libmp3lame", 22_050, 1, False),
]
SECONDS = 2.5


def _signal(rate: int) -> np.ndarray:
    """A voiced-speech-like test signal: harmonics of a gliding pitch under a syllable-rate
    envelope; (N,) float32."""
    t = np.arange(int(SECONDS * rate)) / rate
    pitch = 120 + 40 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 12))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t) ** 2
    return (0.2 * voice * envelope).astype(np.float32)


def encode(path: Path, container: str, codec: str, rate: int, channels: int, video: bool = False,
           samples: np.ndarray | None = None) -> np.ndarray:
    """Write ``samples`` (default :func:`_signal`) with PyAV; return the mono signal written."""
    mono = _signal(rate) if samples is None else samples
    planes = np.stack([mono] * channels)  # (C, N)
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        # FFmpeg's own Vorbis encoder is marked experimental; it writes valid files.
        sound = out.add_stream(codec, rate=rate, layout=layout, options={"strict": "experimental"})
        if picture is not None:
            for i in range(int(SECONDS * 10)):
                frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 8 * i, np.uint8), format="rgb24")
                frame.pts = i
                out.mux(picture.encode(frame))
            out.mux(picture.encode(None))
        for start in range(0, planes.shape[1], 1000):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planes[:, start:start + 1000]), format="fltp",
                                               layout=layout)
            frame.sample_rate, frame.pts = rate, start
            out.mux(sound.encode(frame))
        out.mux(sound.encode(None))
    return mono


def _resampled(mono: np.ndarray, rate: int) -> np.ndarray:
    import soxr

    return soxr.resample(mono, rate, SAMPLE_RATE, quality="HQ")


@pytest.mark.parametrize(("size", "rate"), [(16001, 44100), (4410, 44100), (8000, 8000), (12345, 32000), (1, 48000)])
def test_resample_gives_librosas_samples(size: int, rate: int) -> None:
    """asr resamples with soxr itself (importing librosa costs start-up time); the samples and
    their number must stay librosa.resample's, which models were trained on."""
    librosa = pytest.importorskip("librosa")
    samples = np.random.default_rng(size).standard_normal(size).astype(np.float32)
    expected = librosa.resample(samples, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    got = resample(samples, rate, SAMPLE_RATE)
    assert got.dtype == expected.dtype and np.array_equal(got, expected)


@pytest.mark.parametrize("spec", FORMATS, ids=[f[0] for f in FORMATS])
def test_compressed_formats_decode_to_the_signal_written(tmp_path: Path, spec) -> None:
    name, container, codec, rate, channels, video = spec
    path = tmp_path / name
    expected = _resampled(encode(path, container, codec, rate, channels, video), rate)
    got = load_audio(path)
    assert got.dtype == np.float32 and got.ndim == 1
    # Codecs pad to whole frames (AAC 1,024 samples, Opus 20 ms): the length holds within 50 ms.
    assert abs(len(got) - len(expected)) <= 0.05 * SAMPLE_RATE
    # Lossy, but the same waveform at the same place: the best lag is within 2 ms and the
    # normalised correlation there high.
    n = min(len(got), len(expected)) - 64
    lags = range(-32, 33)
    corr = [np.dot(got[32 + lag:32 + lag + n - 32], expected[32:n]) for lag in lags]
    best = int(np.argmax(corr))
    a, b = got[32 + lags[best]:32 + lags[best] + n - 32], expected[32:n]
    assert abs(lags[best]) <= 32
    assert np.dot(a, b) / np.sqrt(np.dot(a, a) * np.dot(b, b)) > 0.95
    # Streaming in blocks gives the same samples as reading whole (memory stays bounded).
    streamed = np.concatenate(list(stream_audio(path, read_seconds=0.37)))
    assert abs(len(streamed) - len(got)) <= 1
    m = min(len(streamed), len(got))
    np.testing.assert_allclose(streamed[:m], got[:m], atol=1e-6)
    assert audio_duration(path) == pytest.approx(len(got) / SAMPLE_RATE, abs=0.002)


def test_streamed_mp3_is_not_damaged_at_block_edges(tmp_path: Path) -> None:
    """libsndfile 1.2 misreads MP3 in blocks that are not whole MPEG frames; FFmpeg reads it."""
    path = tmp_path / "a.mp3"
    encode(path, "mp3", "libmp3lame", 16_000, 1)
    whole = load_audio(path)
    for read_seconds in (0.0625, 0.25, 1.0):  # 1,000, 4,000 and 16,000 samples: none a multiple of 1,152
        np.testing.assert_allclose(np.concatenate(list(stream_audio(path, read_seconds))), whole, atol=1e-6)


def test_broken_compressed_files_are_one_line_errors(tmp_path: Path) -> None:
    good = tmp_path / "good.m4a"
    encode(good, "ipod", "aac", 16_000, 1)
    data = good.read_bytes()
    cases = {
        "random.m4a": bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8)),
        "truncated.m4a": data[: len(data) // 3],  # the index (moov) is written last: no index, no audio
        "text.webm": b"this is not a recording\n" * 20,
    }
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
        for read in (load_audio, lambda p: list(stream_audio(p)), audio_duration):
            with pytest.raises(AudioError) as err:
                read(tmp_path / name)
            message = str(err.value)
            assert message.startswith(f"{tmp_path / name}: cannot decode audio") and "\n" not in message


def test_video_without_sound_says_so(tmp_path: Path) -> None:
    path = tmp_path / "silent-film.mp4"
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(AudioError, match="no audio stream"):
        load_audio(path)


def test_folder_search_finds_the_formats(tmp_path: Path) -> None:
    names = ["a.m4a", "b.MP4", "c.webm", "d.ogg", "e.mp3", "f.wma", "g.mkv", "h.aac", "notes.txt", "cover.jpg"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    inputs, errors = find_inputs([str(tmp_path)])
    assert not errors
    assert [Path(i.path).name for i in inputs] == names[:8]


def test_prepare_and_validate_read_compressed_utterances(tmp_path: Path) -> None:
    """A LibriSpeech-layout folder whose audio is m4a and mp3: prepare decodes it, and the
    durations it writes agree with what validate reads."""
    chapter = tmp_path / "subset" / "7" / "1"
    chapter.mkdir(parents=True)
    encode(chapter / "7-1-0000.m4a", "ipod", "aac", 44_100, 2)
    encode(chapter / "7-1-0001.mp3", "mp3", "libmp3lame", 22_050, 1)
    (chapter / "7-1-0002.m4a").write_bytes(b"not audio at all")
    (chapter / "7-1.trans.txt").write_text("7-1-0000 HELLO THERE\n7-1-0001 GOOD MORNING\n7-1-0002 BROKEN ONE\n")
    manifest = tmp_path / "m.jsonl"
    assert main(["prepare", str(tmp_path / "subset"), "--out", str(manifest)]) == 1  # one file skipped
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["7-1-0000", "7-1-0001"]
    assert all(r["duration"] == pytest.approx(SECONDS, abs=0.05) for r in rows)
    count, problems = validate_manifests([manifest])
    assert count == 2 and problems == []


def test_transcribe_reads_every_format_and_reports_a_corrupt_one(tmp_path: Path, random_checkpoint: Path,
                                                                  capsys) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    for name, container, codec, rate, channels, video in FORMATS:
        encode(folder / name, container, codec, rate, channels, video)
    (folder / "broken.m4a").write_bytes((folder / "phone.m4a").read_bytes()[:2000])
    code = main(["transcribe", "--model", str(random_checkpoint), "--format", "json", str(folder)])
    out, err = capsys.readouterr()
    assert code == 1
    done = [json.loads(line) for line in out.splitlines()]
    assert sorted(Path(d["path"]).name for d in done) == sorted(f[0] for f in FORMATS)
    assert all(d["duration"] == pytest.approx(SECONDS, abs=0.05) for d in done)
    errors = [line for line in err.splitlines() if line.startswith("asr: error:")]
    assert errors == [f"asr: error: {folder / 'broken.m4a'}: cannot decode audio "
                      "(FFmpeg: Invalid data found when processing input)"]
    assert err.splitlines()[-1] == f"transcribed {len(FORMATS)} files, 1 failed"


def test_formats_and_wav_give_the_model_the_same_features(tmp_path: Path) -> None:
    """What the model hears from an m4a or webm differs from the WAV original by codec noise
    only: the log-mel features agree closely wherever there is sound."""
    import torch

    from asr.features import FeatureConfig, log_mel

    speech = _resampled(_signal(48_000), 48_000)
    sf.write(tmp_path / "orig.wav", speech, SAMPLE_RATE, subtype="FLOAT")
    encode(tmp_path / "a.m4a", "ipod", "aac", 48_000, 1)
    encode(tmp_path / "a.webm", "webm", "libopus", 48_000, 1)

    def feats(path: Path) -> torch.Tensor:
        wave = torch.from_numpy(load_audio(path))[: len(speech)]
        return log_mel(wave[None], torch.tensor([len(wave)]), FeatureConfig())[0][0]

    reference = feats(tmp_path / "orig.wav")
    loud = reference > reference.max() - 8  # bins within 35 dB of the loudest
    for name in ("a.m4a", "a.webm"):
        got = feats(tmp_path / name)[: len(reference)]
        assert (got - reference[: len(got)]).abs()[loud[: len(got)]].median() < 0.5  # natural log: < 2.2 dB


def test_soundfile_formats_still_read_by_libsndfile(tmp_path: Path) -> None:
    """FLAC and WAV keep their exact path: bit-identical samples, no FFmpeg involved."""
    rng = np.random.default_rng(1)
    wave = (rng.standard_normal(SAMPLE_RATE) * 0.1).astype(np.float32)
    sf.write(tmp_path / "a.flac", wave, SAMPLE_RATE, subtype="PCM_24")
    np.testing.assert_array_equal(load_audio(tmp_path / "a.flac"), sf.read(tmp_path / "a.flac", dtype="float32")[0])
