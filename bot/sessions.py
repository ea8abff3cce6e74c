"""What the server keeps per browser session: the cancel switch of a running training or
comparison, the provenance of the answers given. One bounded registry, and each entry belongs
to the session *and* its caller: Gradio's session hash is chosen by the client, so a handler
given another person's hash finds nothing of theirs (their training cannot be cancelled,
their answers' provenance cannot be exported)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

from bot.access import Access

T = TypeVar("T")


class Sessions:
    def __init__(self, access: Access, limit: int = 10_000) -> None:
        self.access = access
        self.limit = limit  # the oldest sessions' state goes first
        self._state: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def _key(self, request: Any, kind: str) -> tuple[str, str, str]:
        owner = self.access.caller_key(request) or "local"
        return owner, str(getattr(request, "session_hash", "") or ""), kind

    def put(self, request: Any, kind: str, value: T) -> T:
        with self._lock:
            key = self._key(request, kind)
            self._state[key] = value
            self._state.move_to_end(key)
            while len(self._state) > self.limit:
                self._state.popitem(last=False)
        return value

    def get(self, request: Any, kind: str) -> Any | None:
        """The caller's `kind` state of this session, if any."""
        with self._lock:
            return self._state.get(self._key(request, kind))

    def setdefault(self, request: Any, kind: str, default: Callable[[], T]) -> T:
        """The caller's `kind` state of this session; `default()` stored and returned if none."""
        value = self.get(request, kind)
        return self.put(request, kind, default()) if value is None else value

    def drop(self, request: Any, kind: str) -> None:
        with self._lock:
            self._state.pop(self._key(request, kind), None)

    def forget(self, request: Any) -> None:
        """A session's state, once its page is closed."""
        owner, session, _ = self._key(request, "")
        with self._lock:
            for key in [k for k in self._state if k[:2] == (owner, session)]:
                del self._state[key]
