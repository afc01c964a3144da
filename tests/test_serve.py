"""asr serve: the real server (uvicorn) on a loopback port, spoken to by OpenAI's own client,
plain HTTP and raw sockets.

Most tests run the app in this process over the tone model (tests/tone.py), whose transcripts
and word times are known exactly; one starts ``asr serve`` itself as a user would.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import httpx
import numpy as np
import openai
import pytest
import soundfile as sf
import uvicorn

from asr.audio import SAMPLE_RATE
from asr.decode import GreedyDecoder
from asr.engine import Engine
from asr.serve import ServerSettings, create_app
from asr.transcribe import TranscribeOptions, transcribe_files
from tone import VOCAB, ToneModel, silence, speak, tone_model  # noqa: E402  (tests/ is on the path)

TEXT = "HELLO THERE IT'S A QUIZ OF ZEBRAS"


def flac_bytes(audio: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, audio, SAMPLE_RATE, format="FLAC", subtype="PCM_16")
    return buffer.getvalue()


def webm_bytes(audio: np.ndarray, rate: int = 48_000) -> bytes:
    """Opus in WebM, as browsers' MediaRecorder sends it."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="webm") as container:
        stream = container.add_stream("libopus", rate=rate)
        stream.bit_rate = 96_000
        resampled = np.interp(np.arange(round(len(audio) * rate / SAMPLE_RATE)) * SAMPLE_RATE / rate,
                              np.arange(len(audio)), audio).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(resampled[None], format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@contextlib.contextmanager
def serving(app):
    """uvicorn serving ``app`` on a free loopback port, in a thread; yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@contextlib.contextmanager
def tone_server(model=None, max_queue: int = 8, max_audio_seconds: float = 600.0, **settings):
    loaded = tone_model()
    if model is not None:
        loaded.model = model
    engine = Engine(lambda: (loaded, GreedyDecoder(VOCAB)), TranscribeOptions(window_seconds=8.0, overlap_seconds=2.0),
                    max_queue=max_queue, max_audio_seconds=max_audio_seconds)
    try:
        with serving(create_app(engine, ServerSettings(model_name="tone", **settings))) as url:
            yield url
    finally:
        engine.close()


def post(url: str, data: bytes | None, name: str = "speech.flac", headers: dict | None = None, **fields) -> httpx.Response:
    files = {"file": (name, data)} if data is not None else None
    return httpx.post(f"{url}/v1/audio/transcriptions", files=files, data={"model": "tone", **fields},
                      headers=headers, timeout=60)


def assert_error(response: httpx.Response, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert "\n" not in error["message"] and all(w in error["message"] for w in words), error["message"]


# --- OpenAI's client ------------------------------------------------------------------------


def test_openai_client_gets_every_response_format(tmp_path: Path) -> None:
    audio, expected = speak(TEXT)
    path = tmp_path / "speech.flac"
    path.write_bytes(flac_bytes(audio))
    with tone_server() as url:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="not-checked", max_retries=0)
        assert [m.id for m in client.models.list()] == ["tone"]
        with path.open("rb") as f:
            assert client.audio.transcriptions.create(model="whisper-1", file=f).text == TEXT
        with path.open("rb") as f:
            assert client.audio.transcriptions.create(model="whisper-1", file=f, response_format="text").strip() == TEXT
        with path.open("rb") as f:
            srt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="srt")
        assert srt.startswith("1\n00:00:00,") and " --> " in srt and "ZEBRAS" in srt
        with path.open("rb") as f:
            vtt = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="vtt")
        assert vtt.startswith("WEBVTT") and "HELLO" in vtt
        with path.open("rb") as f:
            verbose = client.audio.transcriptions.create(model="whisper-1", file=f, response_format="verbose_json",
                                                         timestamp_granularities=["word", "segment"], language="en")
    assert verbose.text == TEXT and verbose.duration == pytest.approx(len(audio) / SAMPLE_RATE, abs=1e-3)
    assert [w.word for w in verbose.words] == TEXT.split()
    for word, (_, start, end) in zip(verbose.words, expected):
        assert abs(word.start - start) <= 0.05 and abs(word.end - end) <= 0.05
        assert 0 < word.model_extra["confidence"] <= 1
    assert " ".join(s.text for s in verbose.segments) == TEXT
    assert all(s.start < s.end and s.temperature == 0.0 for s in verbose.segments)


def test_browser_formats_and_word_granularity_alone() -> None:
    audio, _ = speak("ALPHA BETA GAMMA")
    with tone_server() as url:
        webm = post(url, webm_bytes(audio), "recording.webm", response_format="verbose_json",
                    **{"timestamp_granularities[]": "word"})
        assert webm.status_code == 200, webm.text
        assert webm.json()["text"] == "ALPHA BETA GAMMA"
        assert "segments" not in webm.json() and [w["word"] for w in webm.json()["words"]] == ["ALPHA", "BETA", "GAMMA"]


# --- bad requests ---------------------------------------------------------------------------


def test_bad_requests_get_clear_codes_and_the_server_goes_on() -> None:
    audio, _ = speak("ALPHA BETA")
    good = flac_bytes(audio)
    long_audio = np.concatenate([audio] * 12)  # about 29 s, past a 20 s limit
    with tone_server(max_audio_seconds=20.0, max_upload_bytes=1 << 20) as url:
        assert_error(post(url, os.urandom(3000), "noise.wav"), 400, "noise.wav", "cannot decode audio")
        assert_error(post(url, b"", "empty.flac"), 400, "empty")
        assert_error(post(url, None), 400, "'file'")
        assert_error(httpx.post(f"{url}/v1/audio/transcriptions", json={"file": "x"}), 400, "multipart")
        assert_error(post(url, good, response_format="mp3"), 400, "response_format")
        assert_error(post(url, good, language="de"), 400, "English")
        assert_error(post(url, good, **{"timestamp_granularities[]": "letter"}), 400, "word or segment")
        assert_error(post(url, os.urandom(2 << 20), "big.flac"), 413, "1 MB")  # the body is drained: no reset
        too_long = post(url, flac_bytes(long_audio), "long.flac")
        assert_error(too_long, 413, f"{len(long_audio) / SAMPLE_RATE:.1f} s long", "20 s")
        assert_error(post(url, webm_bytes(long_audio), "long.webm"), 413, "s long", "20 s")
        assert post(url, good).json() == {"text": "ALPHA BETA"}
        assert httpx.get(f"{url}/health").json()["queued"] == 0


def test_api_key_is_required_when_set() -> None:
    audio, _ = speak("ALPHA")
    with tone_server(api_key="s3cret") as url:
        assert_error(post(url, flac_bytes(audio)), 401, "API key")
        assert_error(post(url, flac_bytes(audio), headers={"Authorization": "Bearer wrong"}), 401, "API key")
        assert httpx.get(f"{url}/v1/models").status_code == 401
        assert httpx.get(f"{url}/health").status_code == 200
        ok = post(url, flac_bytes(audio), headers={"Authorization": "Bearer s3cret"})
        assert ok.json() == {"text": "ALPHA"}
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="s3cret", max_retries=0)
        assert client.audio.transcriptions.create(model="x", file=("a.flac", flac_bytes(audio))).text == "ALPHA"


def test_cors_is_off_unless_asked_for() -> None:
    origin = {"Origin": "https://example.org"}
    with tone_server() as url:
        assert "access-control-allow-origin" not in httpx.get(f"{url}/v1/models", headers=origin).headers
    with tone_server(cors_origins=("https://example.org",)) as url:
        assert httpx.get(f"{url}/v1/models", headers=origin).headers["access-control-allow-origin"] == origin["Origin"]


# --- concurrency ----------------------------------------------------------------------------


class GatedTone(ToneModel):
    """The tone model, holding each forward pass until ``gate`` opens; counts its passes."""

    def __init__(self) -> None:
        super().__init__()
        self.gate, self.entered, self.passes = threading.Event(), threading.Event(), 0

    def forward(self, feats, lengths):
        self.passes += 1
        self.entered.set()
        assert self.gate.wait(30)
        return super().forward(feats, lengths)


def test_a_full_queue_answers_503_with_retry_after() -> None:
    model = GatedTone()
    audio, _ = speak("ALPHA")
    with tone_server(model, max_queue=1) as url, concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(post, url, flac_bytes(audio))
        assert model.entered.wait(30)
        busy = post(url, flac_bytes(audio))
        assert_error(busy, 503, "busy")
        assert busy.headers["retry-after"].isdigit()
        model.gate.set()
        assert first.result().json() == {"text": "ALPHA"}
        assert post(url, flac_bytes(audio)).json() == {"text": "ALPHA"}


def test_concurrent_clients_share_forward_passes_and_get_their_own_text() -> None:
    model = GatedTone()
    texts = ["ALPHA", "BETA GAMMA", "DELTA", "EPSILON ZETA", "ETA", "THETA IOTA", "KAPPA", "LAMBDA MU"]
    with tone_server(model, max_queue=16) as url, concurrent.futures.ThreadPoolExecutor(len(texts) + 1) as pool:
        first = pool.submit(post, url, flac_bytes(speak("OMICRON")[0]))
        assert model.entered.wait(30)  # the first pass holds; the others queue up behind it
        rest = [pool.submit(post, url, flac_bytes(speak(t)[0])) for t in texts]
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/health").json()["queued"] < len(texts) + 1:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        model.gate.set()
        assert first.result().json()["text"] == "OMICRON"
        assert [f.result().json()["text"] for f in rest] == texts
    assert model.passes <= 3  # the eight waiting uploads went through together


def test_long_upload_matches_transcribe_files_and_does_not_hold_up_short_ones(tmp_path: Path) -> None:
    long_text = " ".join(["ALPHA BETA GAMMA DELTA"] * 12)  # about 50 s: several windows and pauses
    long_audio, _ = speak(long_text)
    path = tmp_path / "long.flac"
    path.write_bytes(flac_bytes(long_audio))
    options = TranscribeOptions(window_seconds=8.0, overlap_seconds=2.0)
    (reference,) = transcribe_files(tone_model(), [path], GreedyDecoder(VOCAB), options)
    with tone_server() as url, concurrent.futures.ThreadPoolExecutor(2) as pool:
        long = pool.submit(post, url, path.read_bytes(), response_format="verbose_json",
                           **{"timestamp_granularities[]": "word"})
        short = post(url, flac_bytes(speak("ZETA")[0]))
        assert short.json() == {"text": "ZETA"}
        words = long.result().json()["words"]
    assert [w["word"] for w in words] == [w.text for w in reference.words]
    assert [w["start"] for w in words] == [round(w.start, 3) for w in reference.words]


def test_a_slow_client_stalls_nobody() -> None:
    audio, _ = speak("ALPHA")
    with tone_server() as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as slow:
            slow.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n"
                         b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")  # and then nothing
            started = time.monotonic()
            assert post(url, flac_bytes(audio)).json() == {"text": "ALPHA"}
            assert time.monotonic() - started < 10


# --- asr serve itself -----------------------------------------------------------------------


def test_asr_serve_command_end_to_end(random_checkpoint: Path, tmp_path: Path) -> None:
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {**os.environ, "TMPDIR": str(temp), "ASR_API_KEY": "k3y", "OMP_NUM_THREADS": "1"}
    server = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model", str(random_checkpoint), "--port", "0",
                               "--log-level", "warning"], env=env, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stderr.readline()
        assert line.startswith("asr: serving") and "key required" in line, line
        url = line.split(" at ")[1].split("/ ")[0]
        assert url.startswith("http://127.0.0.1:")  # loopback by default
        key = {"Authorization": "Bearer k3y"}
        assert httpx.get(f"{url}/v1/models", headers=key).json()["data"][0]["id"] == "random"
        assert "<html" in httpx.get(url).text.lower()
        # Over starlette's 1 MB in-memory spool: still no temporary file.
        noise = np.random.default_rng(0).normal(0, 0.05, 40 * SAMPLE_RATE).astype(np.float32)
        wav = io.BytesIO()
        sf.write(wav, np.concatenate([noise, silence(1.0)]), SAMPLE_RATE, format="WAV")
        assert len(wav.getvalue()) > 1 << 20
        reply = post(url, wav.getvalue(), "noise.wav", headers=key, response_format="verbose_json")
        assert reply.status_code == 200 and reply.json()["duration"] == pytest.approx(41.0, abs=1e-3)
        assert post(url, b"RIFF....WAVEfmt ", "bad.wav", headers=key).status_code == 400
        assert list(temp.iterdir()) == []
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(20) == 0


def test_asr_serve_port_taken_is_one_line(random_checkpoint: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([sys.executable, "-m", "asr", "serve", "--model", str(random_checkpoint),
                                 "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


def test_serve_help_states_the_library_defaults() -> None:
    from asr.engine import MAX_AUDIO_SECONDS, MAX_QUEUE
    from asr.serve import MAX_UPLOAD_MB

    help_text = subprocess.run([sys.executable, "-m", "asr", "serve", "--help"], capture_output=True, text=True).stdout
    help_text = " ".join(help_text.split())
    for value in (MAX_QUEUE, MAX_UPLOAD_MB, MAX_AUDIO_SECONDS):
        assert f"(default {value:g}" in help_text


def test_verbose_json_is_valid_json_for_an_empty_transcript() -> None:
    with tone_server() as url:
        reply = post(url, flac_bytes(silence(2.0)), response_format="verbose_json",
                     **{"timestamp_granularities[]": ["word", "segment"]})
    body = json.loads(reply.text)
    assert body["text"] == "" and body["words"] == [] and body["segments"] == []


# --- live captions over a WebSocket -------------------------------------------------------------


def test_live_websocket_round_trip() -> None:
    from websockets.sync.client import connect

    first, _ = speak("HELLO THERE")
    second, _ = speak("ALPHA BETA GAMMA")
    audio = np.concatenate([first, silence(0.5), second])
    pcm = (audio * 32767).astype("<i2").tobytes()
    with tone_server(api_key="s3cret") as url:
        live = url.replace("http://", "ws://") + "/v1/audio/live"
        with connect(live) as ws:  # no key: told so, and closed
            ws.send(pcm[:3200])
            assert json.loads(ws.recv())["error"]["code"] == "invalid_api_key"
        with connect(live) as ws:  # as a browser sends it: the key in the first message
            ws.send(json.dumps({"api_key": "s3cret"}))
            ws.send(pcm)
            ws.send("end")
            keyed = [json.loads(message) for message in ws]
        with connect(live, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            for i in range(0, len(pcm), 3201):  # odd sizes: samples split across frames
                ws.send(pcm[i : i + 3201])
            ws.send("end")
            updates = [json.loads(message) for message in ws]
        with connect(live + "?rate=48000", additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            import soxr

            ws.send((soxr.resample(audio, SAMPLE_RATE, 48_000) * 32767).astype("<i2").tobytes())
            ws.send("end")
            resampled = [json.loads(message) for message in ws]
    finals = [w["word"] for u in updates if u["final"] for w in u["words"]]
    assert finals == "HELLO THERE ALPHA BETA GAMMA".split()
    assert any(not u["final"] for u in updates) and all(set(u) == {"text", "start", "end", "final", "words"}
                                                        for u in updates)
    assert [w["word"] for u in resampled if u["final"] for w in u["words"]] == finals
    assert [w["word"] for u in keyed if u["final"] for w in u["words"]] == finals


class FailingOnce(ToneModel):
    """The tone model, failing on its first forward pass, as an out-of-memory would."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    def forward(self, feats, lengths):
        if not self.failed:
            self.failed = True
            raise RuntimeError("out of memory")
        return super().forward(feats, lengths)


def test_a_model_failure_is_a_500_and_the_next_request_is_served() -> None:
    audio, _ = speak("ALPHA")
    with tone_server(FailingOnce()) as url:
        assert_error(post(url, flac_bytes(audio)), 500, "transcription failed (RuntimeError)")
        assert post(url, flac_bytes(audio)).json() == {"text": "ALPHA"}
        assert httpx.get(f"{url}/health").json()["queued"] == 0
