"""OpenAI's transcription protocol, as the server speaks it: reading a request's upload and
fields, and answering with a transcript in one of its response formats or with an error in
its shape.

Request bodies are read into memory with a size limit, and multipart forms parsed there:
nothing a request sends reaches the file system. Bodies being received at once share a cap
(:class:`Receiving`), and a body that stalls is answered 408.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

from asr.batching import Transcript
from asr.formats import split_segments, to_srt, to_vtt, word_json

RESPONSE_FORMATS = ("json", "text", "srt", "vtt", "verbose_json")
GRANULARITIES = ("word", "segment")
ENGLISH = ("en", "english")  # the language codes a request may name: every asr model is English
FORM_OVERHEAD = 64 << 10  # bytes a multipart body may carry beyond its file: boundaries, headers, fields
DRAIN_BYTES = 256 << 20  # an oversized body is read (and dropped) up to this much, so the client hears the 413


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


def authorize(connection, key: str | None) -> None:
    """A 401 unless the server takes no key (``key`` None) or the request carries it as a bearer token."""
    if key is None:
        return
    scheme, _, token = connection.headers.get("authorization", "").partition(" ")
    if not (scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(), key.encode())):
        raise RequestError(401, "a valid API key is required: send 'Authorization: Bearer KEY'",
                           code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


def client_name(connection) -> str:
    """``HOST:PORT`` of the client, for the server's log."""
    client = connection.client
    return f"{client.host}:{client.port}" if client else "a client"


class Receiving:
    """Bytes of request bodies being received at once, against a cap; past it, 503. Read and
    written on the event loop's thread only."""

    def __init__(self, cap: int) -> None:
        self.cap, self.held = cap, 0

    def take(self, size: int) -> None:
        """Count ``size`` more bytes, or raise the 503 when they would pass the cap."""
        if self.held + size > self.cap:
            raise RequestError(503, f"the server is receiving {self.cap / (1 << 20):g} MB of uploads already; "
                                    "try again shortly", code="server_busy", headers={"Retry-After": "1"})
        self.held += size

    def give(self, size: int) -> None:
        self.held -= size


@dataclass(frozen=True)
class Upload:
    """A transcription request: its audio, and how to answer."""

    data: bytes
    name: str  # the client's file name, for messages only
    response_format: str
    granularities: tuple[str, ...]


async def read_upload(request, limit: int, receiving: Receiving, timeout: float) -> Upload:
    """The audio and fields of a ``POST /v1/audio/transcriptions``, with up to ``limit``
    bytes of audio, its body counted in ``receiving`` while it arrives and answered 408 when
    nothing arrives for ``timeout`` seconds; a :class:`RequestError` for anything else.
    Starlette's ``ClientDisconnect`` when the client goes away."""
    _check_form(request)
    body = await _read_body(request, limit, receiving, timeout)
    fields = await _parse_form(request, body)
    del body
    data, name = await _upload(fields)
    response_format, granularities = _options(fields)
    if len(data) > limit:
        raise _too_large(limit)
    if not data:
        raise RequestError(400, "the uploaded file is empty", "file", "invalid_audio")
    return Upload(data, name, response_format, granularities)


def _too_large(limit: int) -> RequestError:
    return RequestError(413, f"the upload is larger than the server's limit of {limit / (1 << 20):g} MB",
                        "file", "file_too_large")


async def _read_body(request, limit: int, receiving: Receiving, timeout: float) -> bytes:
    """The request body, or a 413 once it passes ``limit`` bytes (the rest is read and dropped,
    up to DRAIN_BYTES, so that the client, still sending, hears the answer). The declared
    length is counted in ``receiving`` at once, an undeclared one as it arrives."""
    too_big = _too_large(limit)
    declared = content_length(request.headers)
    if declared is not None and declared > limit + FORM_OVERHEAD:
        if declared <= DRAIN_BYTES:
            async for _ in _chunks(request, timeout):
                pass
        raise too_big
    held = declared or 0
    receiving.take(held)
    try:
        chunks, size = [], 0
        async for chunk in _chunks(request, timeout):
            size += len(chunk)
            if size > limit + FORM_OVERHEAD:
                chunks.clear()
                if size > DRAIN_BYTES:
                    raise too_big
            else:
                if size > held:  # past the declared length, or none was declared
                    receiving.take(size - held)
                    held = size
                chunks.append(chunk)
    finally:
        receiving.give(held)
    if size > limit + FORM_OVERHEAD:
        raise too_big
    return b"".join(chunks)


def content_length(headers) -> int | None:
    """The declared body length; None when there is none, or it is not ASCII digits (``²``
    passes ``isdigit`` and fails ``int``)."""
    value = headers.get("content-length", "")
    return int(value) if value.isascii() and value.isdigit() else None


async def _chunks(request, timeout: float):
    """The body's chunks as they arrive; a 408 (the connection then closes) when nothing
    arrives for ``timeout`` seconds."""
    stream = request.stream().__aiter__()
    while True:
        try:
            async with asyncio.timeout(timeout):
                chunk = await anext(stream)
        except StopAsyncIteration:
            return
        except TimeoutError:
            raise RequestError(408, f"the upload stalled: nothing arrived for {timeout:g} s", code="request_timeout",
                               headers={"Connection": "close"}) from None
        yield chunk


def _check_form(request) -> None:
    # Media types are case-insensitive (RFC 9110): Multipart/Form-Data is multipart/form-data.
    if not request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        raise RequestError(400, "send the audio as multipart/form-data with a 'file' field, as OpenAI's API takes it")


async def _parse_form(request, body: bytes) -> dict[str, list]:
    """The multipart form's fields, files held in memory (never spooled to disk)."""
    from starlette.formparsers import MultiPartException, MultiPartParser

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
