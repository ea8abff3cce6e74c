"""The errors a user can do something about. Each is shown as one line (in the chat, the CLI,
an API error object) without a traceback; anything else is a bug, logged with its traceback.
Each also derives from the built-in error it refines, so `except ValueError` still works."""

from __future__ import annotations


class KbotError(Exception):
    """A problem with what was asked, not with the code: its message says what to change."""


class BadInput(KbotError, ValueError):
    """A file, value, name or setting that cannot be used as given."""


class NotFound(KbotError, LookupError):
    """A collection, document, adapter, question set or user that does not exist (for the
    caller)."""


class Refused(KbotError, PermissionError):
    """Not the caller's to do, or not now (another change is under way)."""


class OverLimit(KbotError, RuntimeError):
    """Past a limit of the server: its share of requests, time or size."""
