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
import importlib.util
import logging
import math
from dataclasses import dataclass
from importlib import resources

from asr.audio import AudioError, audio_bytes_duration
from asr.batching import Transcript
from asr.engine import AudioTooLong, BadAudio, Engine, QueueFull, ShuttingDown, TranscriptionFailed
from asr.errors import UserError
from asr.live_socket import live
from asr.openai_api import RequestError, Receiving, Upload, authorize, client_name, read_upload, render_response

log = logging.getLogger("asr.serve")

MAX_UPLOAD_MB = 100.0  # an hour of 16 kHz FLAC is about 60-100 MB; OpenAI's own limit is 25 MB
MAX_STREAMS = 8  # live streams at once: each costs up to a few percent of a core at real time
MAX_CONNECTIONS = 256  # open at once, HTTP and live; lowered to fit `ulimit -n`
MAX_RECEIVING_MB = 256.0  # request bodies being received at once: what stalled uploads can hold
HEADER_TIMEOUT = 10.0  # s from connecting (or the last answer) to a request's whole head
BODY_TIMEOUT = 30.0  # s an upload's body may go without a byte arriving
KEEP_ALIVE_TIMEOUT = 5.0  # s an idle keep-alive connection is held (uvicorn's own default)
LIVE_IDLE_TIMEOUT = 30.0  # s a live stream may go without a message
MAX_FRAME_SECONDS = 10.0  # audio in one live frame
MAX_LIVE_SPEED = 2.0  # how much faster than real time a live stream may send, after its first frame's worth
DRAIN_TIMEOUT = 10.0  # s in-flight work has to finish after SIGTERM before it is answered 503


@dataclass(frozen=True)
class ServerSettings:
    """What the server serves and what each client may cost it (the CLI's options)."""

    model_name: str
    max_upload_bytes: int = int(MAX_UPLOAD_MB * (1 << 20))
    max_streams: int = MAX_STREAMS  # live WebSocket streams at once
    api_key: str | None = None
    cors_origins: tuple[str, ...] = ()
    created: int = 0  # the model file's time, for /v1/models
    max_connections: int = MAX_CONNECTIONS
    max_receiving_bytes: int = int(MAX_RECEIVING_MB * (1 << 20))
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    keep_alive_timeout: float = KEEP_ALIVE_TIMEOUT
    live_idle_timeout: float = LIVE_IDLE_TIMEOUT
    max_frame_seconds: float = MAX_FRAME_SECONDS
    max_live_speed: float = MAX_LIVE_SPEED
    drain_timeout: float = DRAIN_TIMEOUT

    def __post_init__(self) -> None:
        """A ValueError, in one line naming the setting, for a limit no server could keep or
        a key no client could send."""
        for name in ("max_upload_bytes", "max_streams", "max_connections", "max_receiving_bytes", "header_timeout",
                     "body_timeout", "keep_alive_timeout", "live_idle_timeout", "max_frame_seconds",
                     "max_live_speed", "drain_timeout"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} = {value}: must be a number > 0")
        if self.api_key is not None:
            check_api_key(self.api_key)


def check_api_key(key: str) -> None:
    """A ValueError for a key that would serve with no protection or could never match: empty
    (an unset variable passed on), with spaces, or not printable ASCII (HTTP headers carry no other)."""
    if not key:
        raise ValueError("the API key is empty (an unset variable?); give a key, or none to serve without one")
    if not all("!" <= c <= "~" for c in key):
        raise ValueError("the API key must be printable ASCII without spaces: a client's Authorization header "
                         "cannot carry anything else, so no request could match it")


class Drain:
    """The server's stop as its handlers see it: :meth:`begin` is called when it stops taking
    connections; in-flight work then has ``seconds`` to finish before it is answered 503."""

    def __init__(self) -> None:
        self.started = False
        self.expired = asyncio.Event()

    def begin(self, seconds: float) -> None:
        """Called on the server's event loop."""
        self.started = True
        asyncio.get_running_loop().call_later(seconds, self.expired.set)


def create_app(engine: Engine, settings: ServerSettings):
    """The Starlette app over ``engine``; the caller closes the engine."""
    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
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
        WebSocketRoute("/v1/audio/live", live),
    ]
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={HTTPException: _http_error})
    app.state.engine, app.state.settings = engine, settings
    app.state.page = resources.files("asr").joinpath("web/index.html").read_text(encoding="utf-8")
    app.state.streams = 0  # live streams open; only asr.live_socket counts them
    app.state.receiving = Receiving(settings.max_receiving_bytes)
    app.state.drain = Drain()
    return app


# --- the handlers ---------------------------------------------------------------------------


async def _http_error(request, exc):
    """Starlette's own answers (404, 405) in OpenAI's error shape."""
    message = {404: f"no such path: {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    return RequestError(exc.status_code, message.get(exc.status_code, exc.detail), headers=exc.headers).response()


async def _transcriptions(request):
    from starlette.requests import ClientDisconnect

    state = request.app.state
    try:
        authorize(request, request.app.state.settings.api_key)
        return await _before_drain_ends(state.drain, _transcription(request))
    except RequestError as err:
        if err.status == 408:
            log.info("%s: %s (--body-timeout); answered 408", client_name(request), err.message)
        return err.response()
    except ClientDisconnect:
        log.info("%s: the client went away during its upload", client_name(request))
        return RequestError(400, "the client went away").response()  # sent to no one


async def _transcription(request):
    settings = request.app.state.settings
    upload = await read_upload(request, settings.max_upload_bytes, request.app.state.receiving, settings.body_timeout)
    transcript = await _transcribe(request.app.state.engine, upload)
    return render_response(transcript, upload.response_format, upload.granularities)


async def _before_drain_ends(drain: Drain, work):
    """``work``'s result, unless the server is stopping: a request that arrives then, or is
    still in flight when the drain ends, is answered 503 in OpenAI's shape (never cancelled by
    uvicorn into a plain 500)."""
    stopping = RequestError(503, "the server is shutting down", code="shutting_down", headers={"Connection": "close"})
    if drain.started:
        work.close()
        raise stopping
    task = asyncio.ensure_future(work)
    deadline = asyncio.ensure_future(drain.expired.wait())
    try:
        done, _ = await asyncio.wait((task, deadline), return_when=asyncio.FIRST_COMPLETED)
    finally:
        deadline.cancel()
        if not task.done():
            task.cancel()
    if task in done:
        return task.result()
    await asyncio.wait((task,))  # its cancellation runs; what it raises then is of no interest
    if not task.cancelled():
        task.exception()
    raise stopping


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
        authorize(request, request.app.state.settings.api_key)
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


# --- dependencies ---------------------------------------------------------------------------


class ServeDependencyError(UserError):
    def __init__(self, package: str) -> None:
        super().__init__(f"asr serve needs {package}: pip install 'asr[serve]'")


def require_server_packages() -> None:
    # python-multipart is python_multipart from 0.0.13 on; its old name, multipart, still
    # imports there but warns, so neither is imported here, only looked for.
    for modules, package in ((("starlette",), "starlette"), (("uvicorn",), "uvicorn"),
                             (("python_multipart", "multipart"), "python-multipart")):
        if not any(importlib.util.find_spec(module) is not None for module in modules):
            raise ServeDependencyError(package)
