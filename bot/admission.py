"""Who gets an answer when more people ask than the model can answer at once.

Every chat request, from the page or the API, is admitted here before it waits for the model,
and counted until its answer ends: each caller (a signed-in user, an API key's user, or a
client address when anonymous) may have `per_caller` requests running or waiting, and the
server `total`. A request past either limit is turned away at once with a message saying
which limit and when to try again, instead of waiting behind one caller's flood.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from common.errors import OverLimit


class Busy(OverLimit):
    """A request turned away by a limit; `retry_after` is a fair guess in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Admission:
    def __init__(self, per_caller: int, total: int, retry_after: int = 10) -> None:
        self.per_caller = per_caller
        self.total = total
        self.retry_after = retry_after
        self._lock = threading.Lock()
        self._counts: Counter[str | None] = Counter()

    def in_flight(self) -> int:
        with self._lock:
            return self._counts.total()

    @contextmanager
    def admit(self, caller: str | None) -> Iterator[None]:
        """Count one request of `caller` while the `with` block runs, or raise `Busy`."""
        release = self.enter(caller)
        try:
            yield
        finally:
            release()

    def enter(self, caller: str | None) -> Callable[[], None]:
        """Count one request of `caller`, or raise `Busy`; returns what ends the count (for
        a request that outlives a `with` block: a streamed answer). A caller of None (the one
        person of a local server) has the server's whole share."""
        with self._lock:
            if caller is not None and self._counts[caller] >= self.per_caller:
                raise Busy(
                    f"You have {self._counts[caller]} requests running or waiting, the most "
                    f"one caller may have (setting KBOT_CALLER_REQUESTS): send this again "
                    "once an answer has come.",
                    self.retry_after,
                )
            if self._counts.total() >= self.total:
                raise Busy(
                    f"The server is busy: {self.total} requests are running or waiting "
                    "(setting KBOT_QUEUE_SIZE). Please try again in a minute.",
                    self.retry_after * 3,
                )
            self._counts[caller] += 1
        released = threading.Event()

        def release() -> None:
            if released.is_set():
                return
            released.set()
            with self._lock:
                self._counts[caller] -= 1
                if self._counts[caller] <= 0:
                    del self._counts[caller]

        return release
