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

from asr.audio import SAMPLE_RATE
from asr.connections import make_server
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
def serving(app, log_level: str = "warning"):
    """uvicorn serving ``app`` on a free loopback port, in a thread, with the limits of its
    settings (as ``asr serve`` runs it); yields the base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = make_server(app, app.state.settings, log_level)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    RUNNING[url] = server, thread
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
        del RUNNING[url]


RUNNING: dict[str, tuple] = {}  # url -> (uvicorn server, its thread), for the tests that stop it


@contextlib.contextmanager
def tone_server(model=None, max_queue: int = 8, max_audio_seconds: float = 600.0, log_level: str = "warning",
                **settings):
    loaded = tone_model()
    if model is not None:
        loaded.model = model
    engine = Engine(lambda: (loaded, GreedyDecoder(VOCAB)), TranscribeOptions(window_seconds=8.0, overlap_seconds=2.0),
                    max_queue=max_queue, max_audio_seconds=max_audio_seconds)
    try:
        with serving(create_app(engine, ServerSettings(model_name="tone", **settings)), log_level) as url:
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
    from asr import serve
    from asr.engine import MAX_AUDIO_SECONDS, MAX_QUEUE

    help_text = subprocess.run([sys.executable, "-m", "asr", "serve", "--help"], capture_output=True, text=True).stdout
    help_text = " ".join(help_text.split()).split("limits: ", 1)[1]
    for option, value in (("max-queue", MAX_QUEUE), ("max-upload-mb", serve.MAX_UPLOAD_MB),
                          ("max-audio-seconds", MAX_AUDIO_SECONDS), ("max-receiving-mb", serve.MAX_RECEIVING_MB),
                          ("max-connections", serve.MAX_CONNECTIONS), ("header-timeout", serve.HEADER_TIMEOUT),
                          ("body-timeout", serve.BODY_TIMEOUT), ("keep-alive-timeout", serve.KEEP_ALIVE_TIMEOUT),
                          ("max-streams", serve.MAX_STREAMS), ("live-idle-timeout", serve.LIVE_IDLE_TIMEOUT),
                          ("max-frame-seconds", serve.MAX_FRAME_SECONDS), ("max-live-speed", serve.MAX_LIVE_SPEED),
                          ("drain-timeout", serve.DRAIN_TIMEOUT)):
        stated = help_text.split(f"--{option} ", 1)[1].split("(default ", 1)[1]
        assert stated.split(")")[0].split(",")[0] == f"{value:g}", option


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


# --- what one client may cost the others (issue: timeouts, caps, drain, one-line logs) ----------
# Slow and idle clients against the real uvicorn on loopback, with short limits set through
# ServerSettings (asr serve's options fill the same fields).

UPLOAD_HEAD = (b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
               b"Content-Type: multipart/form-data; boundary=b\r\n\r\n--b\r\n")


def raw(url: str) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10)


def until_closed(sock: socket.socket, seconds: float = 10.0) -> bytes:
    """What the server sends until it closes the connection (a timeout fails the test)."""
    sock.settimeout(seconds)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except ConnectionResetError:
        pass
    return data


def raw_error(data: bytes) -> tuple[int, dict]:
    """The status and OpenAI-shaped error of a raw HTTP answer."""
    head, _, body = data.partition(b"\r\n\r\n")
    error = json.loads(body)["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    return int(head.split()[1]), error


def live_session(url: str, query: str = "", frames=(), headers: dict | None = None) -> tuple[list[dict], int]:
    """Open /v1/audio/live, send ``frames`` (bytes or text), read until the server closes: the
    JSON messages and the close code."""
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    with connect(url.replace("http://", "ws://") + "/v1/audio/live" + query, additional_headers=headers) as ws:
        try:
            for frame in frames:
                ws.send(frame)
        except ConnectionClosed:
            pass  # closed by the server while frames were still going: its reason is in the messages
        messages = []
        try:
            while True:
                messages.append(json.loads(ws.recv()))
        except ConnectionClosed:
            pass
    return messages, ws.close_code


def test_3_half_sent_headers_stalled_bodies_and_idle_connections_are_closed_in_time() -> None:
    audio, _ = speak("ALPHA")
    with tone_server(header_timeout=1.0, body_timeout=1.0, keep_alive_timeout=1.0) as url:
        half, silent, stalled, kept = (raw(url) for _ in range(4))
        started = time.monotonic()
        half.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\n")  # and then nothing
        stalled.sendall(UPLOAD_HEAD % 100_000 + b"Content-Disposition: form-data")
        kept.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        assert post(url, flac_bytes(audio)).json() == {"text": "ALPHA"}  # meanwhile, a client is served
        answers = [until_closed(sock) for sock in (half, silent, stalled, kept)]
        assert time.monotonic() - started < 4  # each closed about a second after its last byte
    assert raw_error(answers[0]) == (408, {"message": "request timed out: no whole request within 1 s "
                                                      "(--header-timeout)", "type": "invalid_request_error",
                                           "param": None, "code": "request_timeout"})
    assert answers[1] == b""
    status, error = raw_error(answers[2])
    assert status == 408 and error["code"] == "request_timeout" and "nothing arrived for 1 s" in error["message"]
    assert answers[3].startswith(b"HTTP/1.1 200") and answers[3].count(b"HTTP/1.1") == 1  # then closed when idle


def test_3_past_the_connection_cap_idle_ones_make_room_and_busy_ones_get_503() -> None:
    with tone_server(max_connections=3, header_timeout=30.0, body_timeout=30.0) as url:
        idle = [raw(url) for _ in range(3)]
        time.sleep(0.2)
        assert httpx.get(f"{url}/health").status_code == 200  # in the place of the longest-idle one
        assert until_closed(idle[0], 5) == b""
        busy = [raw(url) for _ in range(3)]  # uploads under way: they take the other idle ones' places
        for sock in busy:
            sock.sendall(UPLOAD_HEAD % 100_000)
        time.sleep(0.2)
        refused = raw(url)
        refused.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = until_closed(refused, 5)
        assert raw_error(answer)[0] == 503 and raw_error(answer)[1]["code"] == "too_many_connections"
        assert b"\r\nretry-after: 1\r\n" in answer.lower()
        assert [until_closed(sock, 5) for sock in idle[1:]] == [b"", b""]
        for sock in busy:
            sock.close()
        time.sleep(0.2)
        assert httpx.get(f"{url}/health").status_code == 200


def test_3_bytes_being_received_at_once_are_capped() -> None:
    audio, _ = speak("ALPHA")
    with tone_server(max_receiving_bytes=1_000_000) as url:
        with raw(url) as stalled:
            stalled.sendall(UPLOAD_HEAD % 950_000)  # declares most of the cap, sends nothing more
            time.sleep(0.2)
            busy = post(url, os.urandom(100_000), "noise.wav")
            assert_error(busy, 503, "receiving 0.953674 MB")
            assert busy.json()["error"]["code"] == "server_busy" and busy.headers["retry-after"] == "1"
        time.sleep(0.2)
        assert_error(post(url, os.urandom(100_000), "noise.wav"), 400, "cannot decode audio")  # admitted now
        assert post(url, flac_bytes(audio)).json() == {"text": "ALPHA"}


def test_3_an_idle_live_stream_is_closed() -> None:
    started = time.monotonic()
    with tone_server(live_idle_timeout=0.5) as url:
        messages, code = live_session(url, frames=[b"\0\0" * 1600])
    assert code == 1008 and messages[-1]["error"]["code"] == "idle_timeout"
    assert time.monotonic() - started < 8


@contextlib.contextmanager
def asr_serve(tmp_path: Path, checkpoint: Path, *options: str, files: int | None = None):
    """``asr serve`` as a user runs it (with ``ulimit -n files``); yields its URL, its process
    and the path of its stderr."""
    import resource

    log = tmp_path / "serve.log"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("ASR_API_KEY", None)
    limit = (lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (files, files))) if files else None
    with log.open("w") as err:
        server = subprocess.Popen([sys.executable, "-m", "asr", "serve", "--model", str(checkpoint), "--port", "0",
                                   *options], env=env, stderr=err, preexec_fn=limit)
    try:
        deadline = time.monotonic() + 60
        while "asr: serving" not in log.read_text():
            assert time.monotonic() < deadline and server.poll() is None, log.read_text()
            time.sleep(0.1)
        line = next(line for line in log.read_text().splitlines() if line.startswith("asr: serving"))
        yield line.split(" at ")[1].split("/ ")[0], server, log
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)


def connect_all(url: str, count: int) -> list[socket.socket]:
    """``count`` connections opened at once, as a flood opens them (each a blocking socket again)."""
    import selectors

    address = ("127.0.0.1", int(url.rsplit(":", 1)[1]))
    opened = [socket.socket() for _ in range(count)]
    with selectors.DefaultSelector() as waiting:
        for sock in opened:
            sock.setblocking(False)
            sock.connect_ex(address)
            waiting.register(sock, selectors.EVENT_WRITE)
        deadline = time.monotonic() + 20  # a full listening queue drops SYNs: the kernel retries them
        while waiting.get_map():
            assert time.monotonic() < deadline, f"{len(waiting.get_map())} connections not made"
            for key, _ in waiting.select(0.5):
                waiting.unregister(key.fileobj)
    for sock in opened:
        sock.setblocking(True)
    return opened


def test_3_a_connection_flood_under_a_low_ulimit_is_served_and_logged_in_a_few_lines(random_checkpoint: Path,
                                                                                    tmp_path: Path) -> None:
    with asr_serve(tmp_path, random_checkpoint, "--header-timeout", "1", files=256) as (url, server, log):
        descriptors = Path(f"/proc/{server.pid}/fd")
        base = len(list(descriptors.iterdir()))
        flood = connect_all(url, 300)  # idle sockets, more than the process has descriptors for
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200  # meanwhile
        time.sleep(2.5)  # past the header timeout: every idle connection the server took is closed
        assert len(list(descriptors.iterdir())) <= base + 2
        assert httpx.get(f"{url}/health", timeout=5).status_code == 200
        for sock in flood:
            sock.close()
    text = log.read_text()
    assert server.returncode == 0 and "ulimit -n is 256: at most 192 connections" in text
    assert "Traceback" not in text and "out of system resource" not in text, text
    assert len(text.splitlines()) < 40 and len(text) < 6000, text


def test_5_sigterm_under_load_answers_every_upload_in_openai_shape(random_checkpoint: Path, tmp_path: Path) -> None:
    noise = np.random.default_rng(0).normal(0, 0.05, 30 * SAMPLE_RATE).astype(np.float32)
    wav = io.BytesIO()
    sf.write(wav, noise, SAMPLE_RATE, format="WAV")
    with asr_serve(tmp_path, random_checkpoint, "--drain-timeout", "1", "--max-queue", "2") as (url, server, log), \
            concurrent.futures.ThreadPoolExecutor(8) as pool:
        replies = [pool.submit(post, url, wav.getvalue()) for _ in range(8)]
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/health").json()["requests"] < 1:  # under way
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server.send_signal(signal.SIGTERM)
        replies = [reply.result() for reply in replies]
        assert server.wait(20) == 0
    for reply in replies:
        if reply.status_code != 200:
            assert_error(reply, 503)
            assert reply.json()["error"]["code"] in ("shutting_down", "queue_full")
    assert "Traceback" not in log.read_text() and "CancelledError" not in log.read_text(), log.read_text()


def test_5_in_flight_uploads_still_held_when_the_drain_ends_get_503_shutting_down(capfd) -> None:
    model = GatedTone()
    audio, _ = speak("ALPHA")
    with tone_server(model, drain_timeout=0.5) as url, concurrent.futures.ThreadPoolExecutor(2) as pool:
        held = [pool.submit(post, url, flac_bytes(audio)) for _ in range(2)]
        assert model.entered.wait(30)
        deadline = time.monotonic() + 30
        while httpx.get(f"{url}/health").json()["queued"] < 2:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        server, thread = RUNNING[url]
        server.handle_exit(signal.SIGTERM, None)  # what uvicorn's signal handler does
        started = time.monotonic()
        for reply in held:
            assert_error(reply.result(), 503, "shutting down")
            assert reply.result().json()["error"]["code"] == "shutting_down"
        assert time.monotonic() - started < 3
        model.gate.set()
        thread.join(10)
        assert not thread.is_alive()
    assert "Traceback" not in capfd.readouterr().err


def test_5_a_client_that_goes_away_mid_upload_or_mid_stream_is_one_log_line(capfd) -> None:
    from websockets.sync.client import connect

    speech = (speak("ALPHA BETA")[0] * 32767).astype("<i2").tobytes()
    with tone_server(log_level="info") as url:
        with raw(url) as gone:
            gone.sendall(UPLOAD_HEAD % 100_000 + b"x" * 1000)
            time.sleep(0.2)
        with connect(url.replace("http://", "ws://") + "/v1/audio/live") as ws:
            ws.send(speech)
            time.sleep(0.3)
            ws.socket.shutdown(socket.SHUT_RDWR)  # gone without a close frame
        time.sleep(0.5)
        assert httpx.get(f"{url}/health").status_code == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "Exception" not in err, err
    gone_lines = [line for line in err.splitlines() if "went away" in line]
    assert len(gone_lines) == 2 and "during its upload" in gone_lines[0], err


def wait_for(condition, seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.01)


def test_4_a_long_live_frame_is_decoded_in_slices_between_uploads(monkeypatch) -> None:
    from asr.listen import Listener
    from asr.live_socket import LIVE_SLICE_SECONDS

    fed = []
    feed = Listener.feed
    monkeypatch.setattr(Listener, "feed", lambda self, samples: fed.append(len(samples)) or feed(self, samples))
    speech, _ = speak("ALPHA BETA GAMMA DELTA")
    frame = (np.tile(speech, 20)[: 40 * SAMPLE_RATE] * 32767).astype("<i2").tobytes()  # 40 s of audio
    short = flac_bytes(speak("ZETA")[0])
    with tone_server(max_frame_seconds=60.0, max_live_speed=100.0) as url, \
            concurrent.futures.ThreadPoolExecutor(1) as pool:
        stream = pool.submit(live_session, url, "", [frame, "end"])
        wait_for(lambda: fed)
        assert post(url, short).json() == {"text": "ZETA"}
        fed_by_then = len(fed)
        messages, code = stream.result()
        assert code == 1000 and messages and fed_by_then < len(fed)  # the upload did not wait for the frame
        # A stream still sending when the server stops does not hold up its exit.
        slices = len(fed)
        stream = pool.submit(live_session, url, "", [frame])
        wait_for(lambda: len(fed) > slices + 2)
        server, thread = RUNNING[url]
        stopping = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)
        thread.join(10)
        assert time.monotonic() - stopping < 3 and stream.result()[1] == 1012
    assert max(fed) <= LIVE_SLICE_SECONDS * SAMPLE_RATE


def test_4_live_frames_are_bounded_by_seconds_and_a_fast_stream_is_closed() -> None:
    with tone_server(max_frame_seconds=2.0, max_live_speed=2.0) as url:
        messages, code = live_session(url, "?rate=4000", [b"\0\0" * 4000 * 3])  # 3 s in 24 kB
        assert code == 1009 and messages[-1]["error"]["code"] == "frame_too_long"
        assert "3.0 s of audio; send at most 2 s" in messages[-1]["error"]["message"]
        messages, code = live_session(url, "?rate=48000", [b"\0\0" * 72_000, "end"])  # 1.5 s in 144 kB
        assert code == 1000 and all("error" not in m for m in messages)
        messages, code = live_session(url, "", [b"\0\0" * SAMPLE_RATE] * 10)  # 10 s at once
        assert code == 1008 and messages[-1]["error"]["code"] == "too_fast"
        assert "faster than 2x real time" in messages[-1]["error"]["message"]


def test_6_bad_query_values_unknown_paths_and_garbage_answer_in_openai_shape() -> None:
    from urllib.parse import quote

    from asr.openai_api import content_length

    with tone_server() as url:
        for rate in ("²", "١٦٠٠٠", "99999999999999999999", "-1", "", "16000.0"):
            messages, code = live_session(url, f"?rate={quote(rate)}")
            assert code == 1003 and messages[0]["error"]["param"] == "rate", rate
        missing = httpx.get(f"{url}/nope")
        assert_error(missing, 404, "no such path: /nope")
        wrong = httpx.get(f"{url}/v1/audio/transcriptions")
        assert_error(wrong, 405, "GET is not allowed")
        assert wrong.headers["allow"] == "POST"
        with raw(url) as garbage:
            garbage.sendall(b"\x16\x03\x01 not http\r\n\r\n")
            status, error = raw_error(until_closed(garbage))
        assert status == 400 and error["code"] == "invalid_request"
        assert post(url, flac_bytes(speak("ALPHA")[0])).json() == {"text": "ALPHA"}
    assert content_length({"content-length": "²"}) is None and content_length({"content-length": "12"}) == 12


@pytest.mark.parametrize(("options", "variable", "message"), [
    (["--api-key", ""], None, "--api-key: the API key is empty"),
    ([], "", "$ASR_API_KEY: the API key is empty"),
    (["--api-key", "   "], None, "--api-key: the API key must be printable ASCII without spaces"),
    (["--api-key", "clé"], None, "--api-key: the API key must be printable ASCII"),
    ([], "k\u00e9y", "$ASR_API_KEY: the API key must be printable ASCII"),
    (["--header-timeout", "0"], None, "--header-timeout: 0: must be more than 0"),
    (["--max-live-speed", "nan"], None, "--max-live-speed: nan: must be a finite number"),
    (["--max-connections", "²"], None, "--max-connections: '²': expected a whole number"),
])
def test_7_keys_that_protect_or_match_nothing_and_impossible_limits_are_refused_at_start(
        options: list[str], variable: str | None, message: str, tmp_path: Path, monkeypatch, capsys) -> None:
    from asr.cli import main

    monkeypatch.delenv("ASR_API_KEY", raising=False)
    if variable is not None:
        monkeypatch.setenv("ASR_API_KEY", variable)
    try:  # refused before the model is looked at
        code = main(["serve", "--model", str(tmp_path / "never-read.pt"), "--port", "0", *options])
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    err = capsys.readouterr().err
    assert code == 2 and message in err.splitlines()[-1] and "Traceback" not in err, err


def test_multipart_content_type_is_case_insensitive() -> None:
    audio, _ = speak("ALPHA")
    body = (b'--B\r\nContent-Disposition: form-data; name="file"; filename="a.flac"\r\n\r\n' + flac_bytes(audio)
            + b'\r\n--B\r\nContent-Disposition: form-data; name="model"\r\n\r\ntone\r\n--B--\r\n')
    with tone_server() as url:
        reply = httpx.post(f"{url}/v1/audio/transcriptions", content=body,
                           headers={"Content-Type": "Multipart/Form-Data; boundary=B"})
    assert reply.json() == {"text": "ALPHA"}


def test_the_server_packages_are_looked_for_without_importing_python_multipart_by_its_old_name(monkeypatch):
    import importlib.util
    import warnings

    import asr.serve

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # python-multipart >= 0.0.13 warns when imported as multipart
        asr.serve.require_server_packages()
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("python_multipart", "multipart") else real(name, *a))
    with pytest.raises(asr.serve.ServeDependencyError, match=r"asr serve needs python-multipart: pip install 'asr\[serve\]'"):
        asr.serve.require_server_packages()
