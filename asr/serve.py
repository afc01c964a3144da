"""Serving a model over HTTP: OpenAI's transcription protocol and a web page.

``POST /v1/audio/transcriptions`` takes a multipart upload as OpenAI's API does (fields
``file``, ``model``, ``language``, ``response_format``, ``timestamp_granularities[]``), so
OpenAI's SDKs, ``curl`` scripts and apps written for whisper servers work unchanged.
``GET /v1/models`` lists the model, ``GET /health`` reports the queue, ``GET /`` is a page
that records or uploads audio and shows the transcript, and the WebSocket ``/v1/audio/live``
captions a stream of PCM as it arrives (:mod:`asr.listen`).

One :class:`~asr.engine.Engine` thread owns the model; a full queue is answered 503 with
``Retry-After``. Uploads are read while the event loop serves other clients, so a slow
client stalls nobody, and they stay in memory: nothing a request sends reaches the file
system.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import math
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from asr.audio import SAMPLE_RATE, AudioError, PcmDecoder, audio_bytes_duration
from asr.batching import Transcript
from asr.engine import AudioTooLong, BadAudio, Engine, QueueFull, ShuttingDown, TranscriptionFailed
from asr.errors import UserError
from asr.formats import split_segments, to_srt, to_vtt, word_json
from asr.listen import Listener

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
ENGLISH = ("en", "english")  # the language codes a request may name: every asr model is English
MAX_UPLOAD_MB = 100.0  # an hour of 16 kHz FLAC is about 60-100 MB; OpenAI's own limit is 25 MB
KEY_WAIT_SECONDS = 10.0  # a live stream without an Authorization header has this long to send its key
MAX_STREAMS = 8  # live streams at once: each costs up to a few percent of a core at real time
FORM_OVERHEAD = 64 << 10  # bytes a multipart body may carry beyond its file: boundaries, headers, fields
DRAIN_BYTES = 256 << 20  # an oversized body is read (and dropped) up to this much, so the client hears the 413


# --- responses ------------------------------------------------------------------------------


def _round(seconds: float) -> float:
    return round(seconds, 3)


def verbose_json(transcript: Transcript, granularities: tuple[str, ...]) -> dict:
    """OpenAI's ``verbose_json``: the text, its duration, and segments and/or words with their
    times and confidences. A segment's ``avg_logprob`` is the mean log confidence of its words,
    and its ``compression_ratio`` that of its text under zlib, as whisper computes it."""
    body: dict = {"task": "transcribe", "language": "english", "duration": _round(transcript.duration),
                  "text": transcript.text}
    if "segment" in granularities or not granularities:
        segments = []
        for i, segment in enumerate(split_segments(transcript.words)):
            text = segment.text.encode()
            segments.append({
                "id": i, "start": _round(segment.start), "end": _round(segment.end), "text": segment.text,
                "avg_logprob": round(sum(math.log(max(w.confidence, 1e-10)) for w in segment.words)
                                     / len(segment.words), 4),
                "compression_ratio": round(len(text) / len(zlib.compress(text)), 4),
                "temperature": 0.0,  # no sampling: search is deterministic
                "words": [word_json(w) for w in segment.words],
            })
        body["segments"] = segments
    if "word" in granularities:
        body["words"] = [word_json(w) for w in transcript.words]
    return body


# --- the HTTP app ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSettings:
    model_name: str
    max_upload_bytes: int = int(MAX_UPLOAD_MB * (1 << 20))
    max_streams: int = MAX_STREAMS  # live WebSocket streams at once
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    created: int = 0  # the model file's time, for /v1/models


class RequestError(Exception):
    """An answer in OpenAI's error shape: ``{"error": {"message", "type", "param", "code"}}``."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def response(self):
        from starlette.responses import JSONResponse

        kind = {401: "authentication_error", 503: "server_error", 500: "server_error"}.get(self.status,
                                                                                           "invalid_request_error")
        return JSONResponse({"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}},
                            self.status, headers=self.headers)


async def _read_body(request, limit: int) -> bytes:
    """The request body, or a 413 once it passes ``limit`` bytes (the rest is read and dropped,
    up to DRAIN_BYTES, so that the client, still sending, hears the answer)."""
    too_big = RequestError(413, f"the upload is larger than the server's limit of {limit / (1 << 20):g} MB",
                           "file", "file_too_large")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD:
        if int(declared) <= DRAIN_BYTES:
            async for _ in request.stream():
                pass
        raise too_big
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit + FORM_OVERHEAD:
            chunks.clear()
            if size > DRAIN_BYTES:
                raise too_big
        else:
            chunks.append(chunk)
    if size > limit + FORM_OVERHEAD:
        raise too_big
    return b"".join(chunks)


async def _parse_form(request, body: bytes) -> dict[str, list]:
    """The multipart form's fields, files held in memory (never spooled to disk)."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise RequestError(400, "send the audio as multipart/form-data with a 'file' field, as OpenAI's API takes it")

    async def chunks():
        yield body
        yield b""

    parser = MultiPartParser(request.headers, chunks(), max_files=4, max_fields=64)
    parser.spool_max_size = len(body) + 1  # a SpooledTemporaryFile that never rolls over to disk
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise RequestError(400, f"malformed multipart form ({err})") from None
    fields: dict[str, list] = {}
    for key, value in form.multi_items():
        fields.setdefault(key, []).append(value)
    return fields


async def _upload(fields: dict[str, list]) -> tuple[bytes, str]:
    from starlette.datastructures import UploadFile

    files = [f for f in fields.get("file", []) if isinstance(f, UploadFile)]
    if not files:
        raise RequestError(400, "the form has no 'file' field with the audio", "file", "missing_file")
    try:
        data = await files[0].read()
    finally:
        for values in fields.values():
            for value in values:
                if isinstance(value, UploadFile):
                    await value.close()
    # The client's file name only names the upload in messages; it never becomes a path.
    name = Path((files[0].filename or "upload").replace("\\", "/")).name[:120] or "upload"
    return data, name


def _field(fields: dict[str, list], name: str, default: str | None = None) -> str | None:
    values = [v for v in fields.get(name, []) if isinstance(v, str)]
    return values[0].strip() if values else default


def _options(fields: dict[str, list]) -> tuple[str, tuple[str, ...]]:
    response_format = _field(fields, "response_format", "json") or "json"
    if response_format not in RESPONSE_FORMATS:
        raise RequestError(400, f"response_format {response_format!r}: choose one of {', '.join(RESPONSE_FORMATS)}",
                           "response_format")
    granularities = tuple(v.strip() for v in fields.get("timestamp_granularities[]", []) + fields.get(
        "timestamp_granularities", []) if isinstance(v, str))
    for value in granularities:
        if value not in GRANULARITIES:
            raise RequestError(400, f"timestamp_granularities {value!r}: choose word or segment",
                               "timestamp_granularities")
    language = (_field(fields, "language", "") or "").lower()
    if language and language not in ENGLISH:
        raise RequestError(400, f"language {language!r}: this server's model transcribes English (en) only", "language")
    if (_field(fields, "stream", "false") or "false").lower() == "true":
        raise RequestError(400, "streamed responses are not supported: the whole transcript is sent at once", "stream")
    return response_format, granularities


def render_response(transcript: Transcript, response_format: str, granularities: tuple[str, ...]):
    from starlette.responses import JSONResponse, PlainTextResponse

    if response_format == "json":
        return JSONResponse({"text": transcript.text})
    if response_format == "verbose_json":
        return JSONResponse(verbose_json(transcript, granularities))
    if response_format == "srt":
        return PlainTextResponse(to_srt(transcript))
    if response_format == "vtt":
        return PlainTextResponse(to_vtt(transcript), media_type="text/vtt")
    return PlainTextResponse(transcript.text + "\n")


def _audio_seconds(data: bytes, name: str) -> float:
    """The upload's length: only asked for audio already found too long."""
    try:
        return audio_bytes_duration(data, name)
    except AudioError:
        return math.nan


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


def create_app(engine: Engine, settings: ServerSettings):
    """The Starlette app over ``engine``; the caller closes the engine."""
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.middleware import Middleware
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route, WebSocketRoute

    page = resources.files("asr").joinpath("web/index.html").read_text(encoding="utf-8")
    key = settings.api_key.encode() if settings.api_key else None

    def authorize(request) -> None:
        if key is None:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if not (scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key)):
            raise RequestError(401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                               code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})

    async def transcriptions(request):
        try:
            authorize(request)
            body = await _read_body(request, settings.max_upload_bytes)
            fields = await _parse_form(request, body)
            del body
            data, name = await _upload(fields)
            response_format, granularities = _options(fields)
            if len(data) > settings.max_upload_bytes:
                raise RequestError(413, f"the upload is larger than the server's limit of "
                                        f"{settings.max_upload_bytes / (1 << 20):g} MB", "file", "file_too_large")
            if not data:
                raise RequestError(400, "the uploaded file is empty", "file", "invalid_audio")
            try:
                future = engine.submit(data, name)
            except QueueFull:
                raise RequestError(503, f"the server is busy ({engine.max_queue} requests in progress); "
                                        "try again shortly", code="queue_full", headers={"Retry-After": "1"}) from None
            try:
                transcript = await asyncio.wrap_future(future)
            except BadAudio as err:
                raise RequestError(400, f"{name}: {err}", "file", "invalid_audio") from None
            except ShuttingDown:
                raise RequestError(503, "the server is shutting down", code="shutting_down") from None
            except TranscriptionFailed as err:
                raise RequestError(500, f"{name}: {err}; the server logged why", code="transcription_failed") from None
            except AudioTooLong:
                seconds = await run_in_threadpool(_audio_seconds, data, name)
                raise RequestError(413, f"{name}: the audio is {seconds:.1f} s long; the server's limit is "
                                        f"{engine.max_audio_seconds:g} s", "file", "audio_too_long") from None
            return render_response(transcript, response_format, granularities)
        except RequestError as err:
            return err.response()

    async def models(request):
        try:
            authorize(request)
        except RequestError as err:
            return err.response()
        return JSONResponse({"object": "list", "data": [
            {"id": settings.model_name, "object": "model", "created": settings.created, "owned_by": "asr"}]})

    async def health(request):
        stats = engine.stats()
        return JSONResponse({"status": "ok", "model": settings.model_name, "queued": stats.queued,
                             "max_queue": stats.max_queue, "requests": stats.requests,
                             "audio_seconds": round(stats.audio_seconds, 1)})

    streams = 0  # live streams open

    async def live(websocket):
        """Binary frames of s16le mono PCM (``?rate=``, default 16000) in; one JSON object per
        update out, as ``asr listen --format jsonl`` prints them. A text frame ``end`` makes
        the open segment final and closes the stream."""
        nonlocal streams
        await websocket.accept()
        error = None
        try:
            authorize(websocket)
        except RequestError:
            error = RequestError(401, "a valid API key is required: send 'Authorization: Bearer KEY', or "
                                      '{"api_key": "KEY"} as the first message', code="invalid_api_key")
            # A browser cannot set headers on a WebSocket: its first message may carry the key.
            if "authorization" not in websocket.headers and await _key_message(websocket, key):
                error = None
        rate = websocket.query_params.get("rate", str(SAMPLE_RATE))
        if error is None and not (rate.isdigit() and 4000 <= int(rate) <= 768_000):
            error = RequestError(400, f"rate {rate!r}: give the PCM's sample rate in Hz, 4000-768000", "rate")
        if error is None and streams >= settings.max_streams:
            error = RequestError(503, f"the server is busy ({settings.max_streams} live streams); try again shortly",
                                 code="too_many_streams")
        if error is not None:
            await websocket.send_text(error.response().body.decode())
            await websocket.close(code={401: 1008, 503: 1013}.get(error.status, 1003))
            return
        streams += 1
        try:
            await _live_stream(websocket, engine, engine.listener(), int(rate))
        finally:
            streams -= 1

    async def index(request):
        return HTMLResponse(page)

    middleware = []
    if settings.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        middleware.append(Middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                                     allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type"]))
    routes = [
        Route("/", index), Route("/health", health), Route("/v1/models", models),
        Route("/v1/audio/transcriptions", transcriptions, methods=["POST"]),
        WebSocketRoute("/v1/audio/live", live),
    ]
    return Starlette(routes=routes, middleware=middleware)


class ServeDependencyError(UserError):
    def __init__(self, package: str) -> None:
        super().__init__(f"asr serve needs {package}: pip install 'asr[serve]'")


def require_server_packages() -> None:
    for module, package in (("starlette", "starlette"), ("uvicorn", "uvicorn"), ("multipart", "python-multipart")):
        try:
            __import__(module)
        except ImportError:
            raise ServeDependencyError(package) from None
