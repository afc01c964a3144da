"""Serving a model over HTTP: OpenAI's transcription protocol and a web page.

``POST /v1/audio/transcriptions`` takes a multipart upload as OpenAI's API does (fields
``file``, ``model``, ``language``, ``response_format``, ``timestamp_granularities[]``), so
OpenAI's SDKs, ``curl`` scripts and apps written for whisper servers work unchanged.
``GET /v1/models`` lists the model, ``GET /health`` reports the queue, ``GET /`` is a page
that records or uploads audio and shows the transcript, and the WebSocket ``/v1/audio/live``
captions a stream of PCM as it arrives (:mod:`asr.listen`).

This module is the app: :func:`create_app` routes each path to a module-level handler,
and keeps for them in ``app.state`` the :class:`ServerSettings` and the
:class:`~asr.engine.Engine`, the one thread that owns the model; :mod:`asr.openai_api`
reads the requests and shapes the answers. Uploads are read while the event loop serves
other clients, so a slow client stalls nobody; a full queue is answered 503 with
``Retry-After``.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
from dataclasses import dataclass
from importlib import resources

from asr.audio import SAMPLE_RATE, AudioError, PcmDecoder, audio_bytes_duration
from asr.batching import Transcript
from asr.engine import AudioTooLong, BadAudio, Engine, QueueFull, ShuttingDown, TranscriptionFailed
from asr.errors import UserError
from asr.listen import Listener
from asr.openai_api import RequestError, Upload, read_upload, render_response

MAX_UPLOAD_MB = 100.0  # an hour of 16 kHz FLAC is about 60-100 MB; OpenAI's own limit is 25 MB
KEY_WAIT_SECONDS = 10.0  # a live stream without an Authorization header has this long to send its key
MAX_STREAMS = 8  # live streams at once: each costs up to a few percent of a core at real time


@dataclass(frozen=True)
class ServerSettings:
    model_name: str
    max_upload_bytes: int = int(MAX_UPLOAD_MB * (1 << 20))
    max_streams: int = MAX_STREAMS  # live WebSocket streams at once
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    created: int = 0  # the model file's time, for /v1/models


def create_app(engine: Engine, settings: ServerSettings):
    """The Starlette app over ``engine``; the caller closes the engine."""
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.routing import Route, WebSocketRoute

    middleware = []
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]))
    routes = [
        Route("/", _index), Route("/health", _health), Route("/v1/models", _models),
        Route("/v1/audio/transcriptions", _transcriptions, methods=["POST"]),
        WebSocketRoute("/v1/audio/live", _live),
    ]
    app = Starlette(routes=routes, middleware=middleware)
    app.state.engine, app.state.settings = engine, settings
    app.state.page = resources.files("asr").joinpath("web/index.html").read_text(encoding="utf-8")
    app.state.streams = 0  # live streams open; only _live counts them
    return app


# --- the handlers ---------------------------------------------------------------------------


def _api_key(connection) -> bytes | None:
    key = connection.app.state.settings.api_key
    return key.encode() if key else None


def _authorize(connection) -> None:
    """A 401 unless the server takes no key or the request carries it as a bearer token."""
    key = _api_key(connection)
    if key is None:
        return
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if not (scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key)):
        raise RequestError(401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


async def _transcriptions(request):
    try:
        _authorize(request)
        upload = await read_upload(request, request.app.state.settings.max_upload_bytes)
        transcript = await _transcribe(request.app.state.engine, upload)
        return render_response(transcript, upload.response_format, upload.granularities)
    except RequestError as err:
        return err.response()


async def _transcribe(engine: Engine, upload: Upload) -> Transcript:
    """``upload``'s transcript from ``engine``; the engine's refusals and failures as
    :class:`RequestError`."""
    from starlette.concurrency import run_in_threadpool

    name = upload.name
    try:
        future = engine.submit(upload.data, name)
    except QueueFull:
        raise RequestError(503, f"the server is busy ({engine.max_queue} requests in progress); "
                                "try again shortly", code="queue_full", headers={"Retry-After": "1"}) from None
    try:
        return await asyncio.wrap_future(future)
    except BadAudio as err:
        raise RequestError(400, f"{name}: {err}", "file", "invalid_audio") from None
    except ShuttingDown:
        raise RequestError(503, "the server is shutting down", code="shutting_down") from None
    except TranscriptionFailed as err:
        raise RequestError(500, f"{name}: {err}; the server logged why", code="transcription_failed") from None
    except AudioTooLong:
        seconds = await run_in_threadpool(_audio_seconds, upload.data, name)
        raise RequestError(413, f"{name}: the audio is {seconds:.1f} s long; the server's limit is "
                                f"{engine.max_audio_seconds:g} s", "file", "audio_too_long") from None


def _audio_seconds(data: bytes, name: str) -> float:
    """The upload's length: only asked for audio already found too long."""
    try:
        return audio_bytes_duration(data, name)
    except AudioError:
        return math.nan


async def _models(request):
    from starlette.responses import JSONResponse

    try:
        _authorize(request)
    except RequestError as err:
        return err.response()
    settings = request.app.state.settings
    return JSONResponse({"object": "list", "data": [
        {"id": settings.model_name, "object": "model", "created": settings.created, "owned_by": "asr"}]})


async def _health(request):
    from starlette.responses import JSONResponse

    stats = request.app.state.engine.stats()
    return JSONResponse({"status": "ok", "model": request.app.state.settings.model_name, "queued": stats.queued,
                         "max_queue": stats.max_queue, "requests": stats.requests,
                         "audio_seconds": round(stats.audio_seconds, 1)})


async def _index(request):
    from starlette.responses import HTMLResponse

    return HTMLResponse(request.app.state.page)


async def _live(websocket):
    """Binary frames of s16le mono PCM (``?rate=``, default 16000) in; one JSON object per
    update out, as ``asr listen --format jsonl`` prints them. A text frame ``end`` makes
    the open segment final and closes the stream."""
    state = websocket.app.state
    await websocket.accept()
    error = None
    try:
        _authorize(websocket)
    except RequestError:
        error = RequestError(401, "a valid API key is required: send 'Authorization: Bearer KEY', or "
                                  '{"api_key": "KEY"} as the first message', code="invalid_api_key")
        # A browser cannot set headers on a WebSocket: its first message may carry the key.
        if "authorization" not in websocket.headers and await _key_message(websocket, _api_key(websocket)):
            error = None
    rate = websocket.query_params.get("rate", str(SAMPLE_RATE))
    if error is None and not (rate.isdigit() and 4000 <= int(rate) <= 768_000):
        error = RequestError(400, f"rate {rate!r}: give the PCM's sample rate in Hz, 4000-768000", "rate")
    if error is None and state.streams >= state.settings.max_streams:
        error = RequestError(503, f"the server is busy ({state.settings.max_streams} live streams); "
                                  "try again shortly", code="too_many_streams")
    if error is not None:
        await websocket.send_text(error.response().body.decode())
        await websocket.close(code={401: 1008, 503: 1013}.get(error.status, 1003))
        return
    state.streams += 1
    try:
        await _live_stream(websocket, state.engine, state.engine.listener(), int(rate))
    finally:
        state.streams -= 1


async def _key_message(websocket, key: bytes) -> bool:
    """Whether the first message, within ``KEY_WAIT_SECONDS``, is ``{"api_key": KEY}``."""
    try:
        message = await asyncio.wait_for(websocket.receive(), KEY_WAIT_SECONDS)
        token = json.loads(message.get("text") or "{}").get("api_key")
    except (asyncio.TimeoutError, ValueError, AttributeError):
        return False
    return isinstance(token, str) and hmac.compare_digest(token.encode(), key)


async def _live_stream(websocket, engine: Engine, listener: Listener, rate: int) -> None:
    from starlette.concurrency import run_in_threadpool
    from starlette.websockets import WebSocketDisconnect

    pcm = PcmDecoder(rate)
    try:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            end = (message.get("text") or "").strip().lower() == "end"
            samples = pcm.decode(message.get("bytes") or b"", last=end)
            # The stream's decoding runs on the engine's thread, between its batches; a worker
            # thread waits for it, so the event loop goes on.
            updates = await run_in_threadpool(engine.call, listener.feed, samples)
            if end:
                updates += await run_in_threadpool(engine.call, listener.finish)
            for update in updates:
                await websocket.send_text(json.dumps(update.to_json(), ensure_ascii=False))
            if end:
                await websocket.close(code=1000)
                return
    except WebSocketDisconnect:
        return


# --- dependencies ---------------------------------------------------------------------------


class ServeDependencyError(UserError):
    def __init__(self, package: str) -> None:
        super().__init__(f"asr serve needs {package}: pip install 'asr[serve]'")


def require_server_packages() -> None:
    for module, package in (("starlette", "starlette"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart")):
        try:
            __import__(module)
        except ImportError:
            raise ServeDependencyError(package) from None
