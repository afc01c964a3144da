"""Live captions over a WebSocket, ``/v1/audio/live``: binary frames of s16le mono PCM in
(``?rate=``, default 16000), one JSON object per update out, as ``asr listen --format jsonl``
prints them. A text frame ``end`` makes the open segment final and closes the stream.

One stream must not cost the others more than its share. A frame carries at most
``max_frame_seconds`` of audio, whatever its sample rate; the engine decodes it in slices of
LIVE_SLICE_SECONDS, between the uploads' batches; a stream that sends faster than
``max_live_speed`` times real time (after a first frame's worth) or sends nothing for
``live_idle_timeout`` seconds is closed. Every refusal is a JSON error in OpenAI's shape and
then a close code: 1008 (no key, too fast, idle), 1003 (a bad rate), 1009 (a frame too
long), 1013 (too many streams), 1012 (the server is stopping).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time

from asr.audio import SAMPLE_RATE, PcmDecoder
from asr.openai_api import RequestError, authorize, client_name

log = logging.getLogger("asr.serve")

KEY_WAIT_SECONDS = 10.0  # a live stream without an Authorization header has this long to send its key
LIVE_SLICE_SECONDS = 1.0  # audio decoded per call on the engine's thread: four updates at most, then uploads go on
MIN_RATE, MAX_RATE = 4000, 768_000  # Hz, as asr listen --rate takes them


class _Close(Exception):
    """End the stream: ``error`` to the client, then ``code``."""

    def __init__(self, code: int, error: RequestError) -> None:
        super().__init__(error.message)
        self.code, self.error = code, error


class _Pace:
    """Audio a stream may have sent by now: ``burst`` seconds at once, then ``speed`` times
    real time."""

    def __init__(self, speed: float, burst: float) -> None:
        self.speed, self.burst = speed, burst
        self.started, self.sent = time.monotonic(), 0.0

    def allows(self, seconds: float) -> bool:
        self.sent += seconds
        return self.sent <= self.burst + self.speed * (time.monotonic() - self.started)


async def live(websocket) -> None:
    """The route's handler."""
    state = websocket.app.state
    await websocket.accept()
    try:
        rate = await _admit(websocket, state)
    except _Close as close:
        await _close(websocket, close)
        return
    state.streams += 1
    try:
        await _stream(websocket, state, rate)
    finally:
        state.streams -= 1


async def _admit(websocket, state) -> int:
    """The stream's sample rate, once its key, rate and the server's room are checked."""
    settings = state.settings
    try:
        authorize(websocket, settings.api_key)
    except RequestError:
        # A browser cannot set headers on a WebSocket: its first message may carry the key.
        if "authorization" in websocket.headers or not await _key_message(websocket, settings.api_key):
            raise _Close(1008, RequestError(401, "a valid API key is required: send 'Authorization: Bearer KEY', or "
                                                 '{"api_key": "KEY"} as the first message', code="invalid_api_key"))
    text = websocket.query_params.get("rate", str(SAMPLE_RATE))
    # isdigit() alone accepts "²", which int() refuses.
    if not (text.isascii() and text.isdigit() and MIN_RATE <= int(text) <= MAX_RATE):
        raise _Close(1003, RequestError(400, f"rate {text!r}: give the PCM's sample rate in Hz, "
                                             f"{MIN_RATE}-{MAX_RATE}", "rate"))
    if state.drain.started:
        raise _Close(1012, RequestError(503, "the server is shutting down", code="shutting_down"))
    if state.streams >= settings.max_streams:
        raise _Close(1013, RequestError(503, f"the server is busy ({settings.max_streams} live streams); "
                                             "try again shortly", code="too_many_streams"))
    return int(text)


async def _key_message(websocket, key: str) -> bool:
    """Whether the first message, within ``KEY_WAIT_SECONDS``, is ``{"api_key": KEY}``."""
    try:
        message = await asyncio.wait_for(websocket.receive(), KEY_WAIT_SECONDS)
        token = json.loads(message.get("text") or "{}").get("api_key")
    except (asyncio.TimeoutError, ValueError, AttributeError):
        return False
    return isinstance(token, str) and hmac.compare_digest(token.encode(), key.encode())


async def _stream(websocket, state, rate: int) -> None:
    from starlette.concurrency import run_in_threadpool
    from starlette.websockets import WebSocketDisconnect

    settings, engine = state.settings, state.engine
    listener, pcm = engine.listener(), PcmDecoder(rate)
    pace = _Pace(settings.max_live_speed, settings.max_frame_seconds)
    who = client_name(websocket)
    try:
        while True:
            message = await _receive(websocket, settings.live_idle_timeout)
            if message["type"] == "websocket.disconnect":
                code = message.get("code")
                reason = {1012: "the server is stopping", 1009: "a frame past the server's size limit"}.get(
                    code, "the client went away")
                log.info("%s: live stream ended without 'end' after %.1f s of audio (%s): %s", who, pace.sent, code,
                         reason)
                return
            data = message.get("bytes") or b""
            end = (message.get("text") or "").strip().lower() == "end"
            _check_frame(len(data) / 2 / rate, pace, settings)
            await _decode(websocket, engine, listener, pcm.decode(data, last=end))
            if end:
                await _send(websocket, await run_in_threadpool(engine.call, listener.finish))
                await websocket.close(code=1000)
                return
    except _Close as close:
        log.info("%s: live stream closed (%d) after %.1f s of audio: %s", who, close.code, pace.sent, close)
        await _close(websocket, close)
    except WebSocketDisconnect:
        log.info("%s: live stream ended: the client went away after %.1f s of audio", who, pace.sent)


async def _receive(websocket, timeout: float) -> dict:
    try:
        return await asyncio.wait_for(websocket.receive(), timeout)
    except asyncio.TimeoutError:
        raise _Close(1008, RequestError(408, f"nothing arrived for {timeout:g} s; the stream is closed",
                                        code="idle_timeout")) from None


def _check_frame(seconds: float, pace: _Pace, settings) -> None:
    if seconds > settings.max_frame_seconds:
        raise _Close(1009, RequestError(413, f"a frame of {seconds:.1f} s of audio; send at most "
                                             f"{settings.max_frame_seconds:g} s per frame", "frame", "frame_too_long"))
    if not pace.allows(seconds):
        raise _Close(1008, RequestError(429, f"the stream sends audio faster than {settings.max_live_speed:g}x real "
                                             "time; send it as it is recorded", code="too_fast"))


async def _decode(websocket, engine, listener, samples) -> None:
    """Feed ``samples`` (N,) to the engine a slice at a time, so that a long frame does not hold
    up the uploads (or the other streams) for its whole length; send each slice's updates."""
    from starlette.concurrency import run_in_threadpool

    step = round(LIVE_SLICE_SECONDS * SAMPLE_RATE)
    for start in range(0, len(samples), step):
        await _send(websocket, await run_in_threadpool(engine.call, listener.feed, samples[start:start + step]))


async def _send(websocket, updates) -> None:
    for update in updates:
        await websocket.send_text(json.dumps(update.to_json(), ensure_ascii=False))


async def _close(websocket, close: _Close) -> None:
    from starlette.websockets import WebSocketDisconnect

    try:
        await websocket.send_text(close.error.response().body.decode())
        await websocket.close(code=close.code, reason=close.error.code or "")
    except WebSocketDisconnect:
        pass  # the client went first
