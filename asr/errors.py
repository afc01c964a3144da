"""The one base class of every error a user can cause: a bad path, a bad file, an unknown
option. Each module derives its own errors from :class:`UserError` (and, where callers
expect one, a built-in type such as ``ValueError``); the CLI catches ``UserError`` alone and
prints it as one line, not a traceback.

This module imports nothing, so that catching user errors costs no import.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; its message names the thing and what to do."""


class ConfigError(UserError, ValueError):
    """A configuration file or value that cannot be used."""
