"""Allowed ranges of settings, checked where a config is built, so that a bad value is one
line naming its key and range instead of a traceback (or a hang) somewhere later."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

Rule = tuple[Callable[[Any], bool], str]  # (test, the allowed range in words)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def at_least(low: float) -> Rule:
    return (lambda v: _number(v) and v >= low), f"a number >= {low:g}"


def above(low: float) -> Rule:
    return (lambda v: _number(v) and v > low), f"a number > {low:g}"


def between(low: float, high: float) -> Rule:
    return (lambda v: _number(v) and low <= v <= high), f"a number from {low:g} to {high:g}"


def one_of(*choices: Any) -> Rule:
    return (lambda v: v in choices), "one of " + ", ".join(repr(c) for c in choices)


def check(owner: object, rules: dict[str, Rule]) -> None:
    """Raise ``ValueError("key = value: must be ...")`` for the first field of ``owner``
    (a dataclass) that breaks its rule."""
    for name, (ok, allowed) in rules.items():
        value = getattr(owner, name)
        if not ok(value):
            raise ValueError(f"{name} = {value!r}: must be {allowed}")
