"""What a client's connection may cost the server, below the app: uvicorn, with the limits
it lacks.

- :class:`LimitedH11Protocol`, uvicorn's h11 protocol with a cap on open connections and a
  deadline for each request's head. At the cap a new connection takes the place of the
  longest-idle one (waiting for a request), so a flood of idle sockets cannot lock out real
  clients; when every connection is busy the newcomer is answered 503.
- :func:`fit_connections`: the cap, lowered to what ``ulimit -n`` allows, so that accept()
  never runs out of file descriptors (asyncio then logs a traceback per retry, thousands a
  second).
- :class:`DrainingServer`: on SIGTERM the app's :class:`~asr.serve.Drain` begins, so that
  in-flight requests finish or are answered 503 before uvicorn would cancel them.
- :class:`RepeatFilter`: the log says each kind of event a few times per window, then how
  many it held back; asyncio's multi-line reports become one line.

Everything else (keep-alive, WebSocket frame size, graceful-shutdown timeout) is uvicorn's
own setting, set by :func:`make_server` from :class:`~asr.serve.ServerSettings`.
"""

from __future__ import annotations

import copy
import functools
import http
import logging
import math
import resource
import threading
import time
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from asr.live_socket import MAX_RATE
from asr.openai_api import RequestError

if TYPE_CHECKING:
    from asr.serve import Drain, ServerSettings

log = logging.getLogger("asr.serve")

FD_RESERVE = 64  # descriptors besides connections: FD_BASE, and connections accepted but not yet counted
FD_BASE = 16  # the process's own: stdio, the listening socket, the event loop's, libraries' (7 when measured)
MAX_BACKLOG = 2048  # uvicorn's default
DRAIN_GRACE_SECONDS = 3.0  # after the app's drain, for its 503s to be written, before uvicorn cancels tasks
REFUSED_LINGER_SECONDS = 0.5  # a refused connection reads (and drops) its request this long, so it hears the 503
LOG_WINDOW_SECONDS = 10.0
LOG_BURST = 5  # records of one kind per window before the rest are counted, not written


def make_server(app, settings: ServerSettings, log_level: str = "info") -> DrainingServer:
    """A uvicorn server for ``app`` (from :func:`asr.serve.create_app`) with ``settings``'
    limits; ``run(sockets=[...])`` serves."""
    config = uvicorn.Config(
        app, http=functools.partial(LimitedH11Protocol, settings=settings), log_level=log_level,
        log_config=log_config(log_level), timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
        timeout_graceful_shutdown=settings.drain_timeout + DRAIN_GRACE_SECONDS,  # type: ignore[arg-type]
        # A frame's bytes at the highest rate; the app bounds its seconds at the stream's own rate.
        ws_max_size=math.ceil(settings.max_frame_seconds * MAX_RATE * 2) + 1024,
        backlog=_backlog(settings.max_connections))
    return DrainingServer(config, app.state.drain, settings.drain_timeout)


def _backlog(connections: int) -> int:
    """The listening queue: asyncio accepts up to this many connections at a time, before the
    protocol can close any, so it must fit in the descriptors the cap leaves over."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_BACKLOG
    return max(8, min(MAX_BACKLOG, (soft - connections - FD_BASE) // 4))


def fit_connections(wanted: int) -> tuple[int, str | None]:
    """``wanted`` connections, or as many as ``ulimit -n`` leaves room for (after raising the
    soft limit toward the hard one), with a line saying so."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + FD_RESERVE
    roomy = need + 4 * MAX_BACKLOG  # a full-length listening queue too (see _backlog)
    if soft != resource.RLIM_INFINITY and soft < roomy:
        raised = roomy if hard == resource.RLIM_INFINITY else min(roomy, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted, None
    fitted = max(soft // 2, soft - FD_RESERVE)
    return fitted, f"ulimit -n is {soft}: at most {fitted} connections at once, not {wanted} (--max-connections)"


def _answer(status: int, message: str, code: str, retry: bool = False) -> bytes:
    """A whole HTTP response in OpenAI's error shape, for a connection no request owns."""
    body = RequestError(status, message, code=code).response().body
    head = [f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}", "content-type: application/json",
            f"content-length: {len(body)}", "connection: close"] + (["retry-after: 1"] if retry else [])
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol (one per connection), with ``settings.max_connections`` and
    ``settings.header_timeout``: the time from connecting, or from the last answer, to a
    request's whole head. Idle keep-alive connections are closed by uvicorn's own timer."""

    def __init__(self, config, server_state, app_state, _loop=None, *, settings: ServerSettings) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.settings = settings
        self.head_timer = None
        self.waiting = False  # for a request's head: idle, so it may make room for a newcomer
        self.idle_since = 0.0
        self.partial = False  # some of the awaited head has arrived
        self.refused = False

    def connection_made(self, transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.settings.max_connections and not self._make_room():
            self._refuse(transport)
            return
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc) -> None:
        self._stop_timer()
        if not self.refused:
            super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        self.partial |= self.waiting
        super().data_received(data)

    def handle_events(self) -> None:
        cycle = self.cycle
        super().handle_events()
        if self.cycle is not cycle:  # a request's head arrived: the app has it now
            self.waiting = False
            self._stop_timer()

    def handle_websocket_upgrade(self, event) -> None:
        self.waiting = False
        self._stop_timer()
        super().handle_websocket_upgrade(event)

    def on_response_complete(self) -> None:
        if not self.transport.is_closing():
            self._await_head()
        super().on_response_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes h11 cannot read as a request, in OpenAI's error shape."""
        self.transport.write(_answer(400, f"{msg.rstrip('.')} (not an HTTP/1.1 request this server can read)",
                                     "invalid_request"))
        self.transport.close()

    def _await_head(self) -> None:
        self._stop_timer()
        self.waiting, self.partial, self.idle_since = True, False, self.loop.time()
        self.head_timer = self.loop.call_later(self.settings.header_timeout, self._close_idle,
                                               f"no whole request within {self.settings.header_timeout:g} s "
                                               "(--header-timeout)")

    def _stop_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _close_idle(self, why: str) -> None:
        self._stop_timer()
        self.waiting = False
        if self.transport.is_closing():
            return
        if self.partial:  # a client part-way through its request hears why
            self.transport.write(_answer(408, f"request timed out: {why}", "request_timeout"))
        self.transport.close()
        log.info("%s: closed: %s", _peer(self.client), why)

    def _make_room(self) -> bool:
        """Close the longest-idle connection for a newcomer; False when every one is busy."""
        idle = [c for c in self.connections
                if isinstance(c, LimitedH11Protocol) and c.waiting and not c.transport.is_closing()]
        if not idle:
            return False
        min(idle, key=lambda c: c.idle_since)._close_idle(
            f"idle, and a new connection needed its place (--max-connections {self.settings.max_connections})")
        return True

    def _refuse(self, transport) -> None:
        self.refused, self.transport = True, transport
        cap = self.settings.max_connections
        transport.write(_answer(503, f"the server has {cap} connections open, all busy; try again shortly",
                                "too_many_connections", retry=True))
        transport.write_eof()
        self.loop.call_later(REFUSED_LINGER_SECONDS, transport.close)
        log.warning("%s: refused: all %d connections are busy (--max-connections)", _peer(transport.get_extra_info(
            "peername")), cap)


def _peer(address) -> str:
    return f"{address[0]}:{address[1]}" if address else "a client"


class DrainingServer(uvicorn.Server):
    """uvicorn's server; its shutdown (SIGTERM, SIGINT) begins the app's drain first."""

    def __init__(self, config: uvicorn.Config, drain: Drain, seconds: float) -> None:
        super().__init__(config)
        self.drain, self.drain_seconds = drain, seconds

    async def shutdown(self, sockets=None) -> None:
        self.drain.begin(self.drain_seconds)
        await super().shutdown(sockets)


def log_config(level: str) -> dict:
    """uvicorn's logging, with the server's own log (``asr.serve``) and asyncio's through the
    same handler, and that handler's repeats limited (the access log is one line per request)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"repeats": {"()": RepeatFilter}}
    config["handlers"]["default"]["filters"] = ["repeats"]
    config["loggers"]["asr.serve"] = {"handlers": ["default"], "level": level.upper()}
    config["loggers"]["asyncio"] = {"handlers": ["default"], "level": "WARNING"}
    return config


class RepeatFilter(logging.Filter):
    """At most LOG_BURST records of one kind (logger and message template) per
    LOG_WINDOW_SECONDS; the first let through after a window says how many were held back.
    asyncio's reports (several lines and a traceback: a failed accept(), a reset socket)
    become one line."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.kinds: dict[tuple[str, str], list] = {}  # kind -> [window start, records in it, held back]

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name.startswith("asyncio"):
            _one_line(record)
        kind = (record.name, str(record.msg))
        now = time.monotonic()
        with self.lock:
            seen = self.kinds.get(kind)
            if seen is None or now - seen[0] >= LOG_WINDOW_SECONDS:
                if len(self.kinds) > 1000:  # kinds come from the code's templates; this is a backstop
                    self.kinds.clear()
                self.kinds[kind] = [now, 1, 0]
                if seen is not None and seen[2]:
                    record.msg = f"{record.msg} ({seen[2]} more like this in the last {LOG_WINDOW_SECONDS:g} s " \
                                 "were not logged)"
                return True
            seen[1] += 1
            if seen[1] <= LOG_BURST:
                return True
            seen[2] += 1
            return False


def _one_line(record: logging.LogRecord) -> None:
    line = record.getMessage().splitlines()[0] if record.getMessage() else ""
    error = record.exc_info[1] if record.exc_info else None
    record.msg = f"{line}: {error}" if error is not None else line
    record.args, record.exc_info, record.exc_text = None, None, None
