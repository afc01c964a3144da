"""Progress of long steps: a tqdm bar on a terminal, a plain line now and then in a log.

A bar redraws itself with carriage returns. Written to a file (a CI log, ``2> train.log``,
a batch system's output) every frame stays, and a ten-minute run leaves a megabyte of
them. When stderr is not a terminal, a step prints one line after each tenth of its work
or ``LOG_SECONDS`` (whichever comes first, and never twice within ``MIN_GAP_SECONDS``),
with counts, rate and time, and a last line when it ends, if it ran long enough to have
been worth watching.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from tqdm import tqdm

LOG_SECONDS = 30.0  # longest silence between two lines of a running step
LOG_FRACTION = 0.1  # a line after each tenth of the work (when the total is known)
MIN_GAP_SECONDS = 5.0  # ... but not more often than this
QUIET_SECONDS = 5.0  # a step that ends sooner than this, having printed nothing, prints nothing


def progress(
    iterable: Iterable | None = None,
    *,
    total: int | float | None = None,
    desc: str = "",
    unit: str = "it",
    disable: bool = False,
    initial: int = 0,
    leave: bool = True,
    unit_bytes: bool = False,
):
    """A progress reporter for ``iterable`` (or for ``update()`` calls): a tqdm bar when
    stderr is a terminal, else a :class:`LogProgress`. Both iterate, ``update(n)``,
    ``reset(total)``, ``set_postfix(**values)``, ``set_postfix_str(text)`` and ``close()``,
    and are context managers. ``unit_bytes`` counts bytes (shown in KiB, MiB, ...)."""
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)
    if sys.stderr.isatty():
        scale = {"unit_scale": True, "unit_divisor": 1024} if unit_bytes else {}
        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, initial=initial, leave=leave,
                    dynamic_ncols=True, **scale)
    return LogProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, initial=initial,
                       unit_bytes=unit_bytes)


def write(message: str) -> None:
    """Print ``message`` on stderr without breaking a bar that is being drawn."""
    if sys.stderr.isatty():
        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)


class LogProgress:
    """Plain-line progress for logs: ``desc: 380/717 steps (53%), 6.4 steps/s, 1:26 elapsed,
    0:52 left; loss=0.914``."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | float | None = None, desc: str = "",
                 unit: str = "it", disable: bool = False, initial: int = 0, unit_bytes: bool = False) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.disable = disable
        self.unit_bytes = unit_bytes
        self.n = self.initial = initial
        self.postfix = ""
        self.start = self.last_line = time.monotonic()
        self.next_fraction = LOG_FRACTION
        self.printed = False
        self.closed = False

    def __iter__(self) -> Iterator:
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int | float = 1) -> None:
        self.n += n
        if self.disable:
            return
        now = time.monotonic()
        due = now - self.last_line >= LOG_SECONDS
        if self.total:
            fraction = self.n / self.total
            if fraction >= self.next_fraction:
                due = due or (now - self.last_line >= MIN_GAP_SECONDS and fraction < 1)
                while self.next_fraction <= fraction:
                    self.next_fraction += LOG_FRACTION
        if due:
            self._line(now)

    def reset(self, total: int | float | None = None) -> None:
        """Start counting again from zero (a download restarting), like tqdm's."""
        self.n = self.initial = 0
        self.total = total
        self.start = self.last_line = time.monotonic()
        self.next_fraction = LOG_FRACTION

    def set_postfix(self, **values: Any) -> None:
        self.postfix = " ".join(f"{k}={v}" for k, v in values.items())

    def set_postfix_str(self, text: str) -> None:
        self.postfix = text

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        now = time.monotonic()
        if not self.disable and (self.printed or now - self.start >= QUIET_SECONDS):
            self._line(now, done=True)

    def _amount(self, value: float) -> str:
        if not self.unit_bytes:
            return f"{value:g}" if isinstance(value, float) else str(value)
        for prefix in ("", "Ki", "Mi", "Gi", "Ti"):
            if abs(value) < 1024 or prefix == "Ti":
                return f"{value:.1f} {prefix}B" if prefix else f"{value:.0f} B"
            value /= 1024
        raise AssertionError("unreachable")

    def _line(self, now: float, done: bool = False) -> None:
        elapsed = now - self.start
        rate = (self.n - self.initial) / elapsed if elapsed > 0 else 0.0
        unit = "" if self.unit_bytes else f" {self.unit}"
        count = self._amount(self.n)
        if self.total:
            count += f"/{self._amount(self.total)}{unit} ({100 * self.n / self.total:.0f}%)"
        else:
            count += unit
        rate_text = f"{self._amount(rate)}/s" if self.unit_bytes else f"{rate:.3g}{unit}/s"
        parts = [count, rate_text, f"{_clock(elapsed)} elapsed"]
        if self.total and not done and rate > 0:
            parts.append(f"{_clock((self.total - self.n) / rate)} left")
        line = f"{self.desc}: " if self.desc else ""
        line += ", ".join(parts) + ("; done" if done else "") + (f"; {self.postfix}" if self.postfix else "")
        print(line, file=sys.stderr, flush=True)
        self.last_line = now
        self.printed = True


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
