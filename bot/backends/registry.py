"""The registry of backends, by id."""

from __future__ import annotations

import re
from collections.abc import Iterator

from bot.backends.backend import Backend, BackendError, UnknownNameError

_ID = re.compile(r"[a-z][a-z0-9_+-]{0,31}")


class BackendRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    def register(self, backend: Backend) -> Backend:
        if not _ID.fullmatch(str(getattr(backend, "id", ""))):
            raise ValueError(
                f"Backend id {getattr(backend, 'id', None)!r} is malformed: use 1-32 lowercase "
                "letters, digits, '_', '-' or '+', starting with a letter."
            )
        if backend.id in self._backends:
            raise ValueError(f"A backend with id {backend.id!r} is already registered.")
        self._backends[backend.id] = backend
        return backend

    def get(self, backend_id: str) -> Backend:
        try:
            return self._backends[backend_id]
        except KeyError:
            known = ", ".join(sorted(self._backends)) or "none"
            raise UnknownNameError(f"Unknown backend {backend_id!r}. Available: {known}.") from None

    def __iter__(self) -> Iterator[Backend]:
        return iter(self._backends.values())

    def __len__(self) -> int:
        return len(self._backends)

    def ids(self) -> list[str]:
        return list(self._backends)

    def parse_spec(self, spec: str) -> tuple[Backend, dict[str, str]]:
        """A backend and its options from a short spec: the id, then its positional options
        separated by ':' ("base", "rag:manuals", "rag+lora:manuals:my-adapter"), then any of
        its optional ones ("rag:manuals:bm25")."""
        backend_id, *values = spec.strip().split(":")
        backend = self.get(backend_id)
        fields = (*backend.positional, *backend.optional_positional)
        if not len(backend.positional) <= len(values) <= len(fields):
            wanted = ":".join(
                [backend.id, *(f.upper() for f in backend.positional)]
                + [f"[{f.upper()}]" for f in backend.optional_positional]
            )
            raise BackendError(f"Backend spec {spec!r} is malformed: expected {wanted!r}.")
        if not all(values):
            raise BackendError(f"Backend spec {spec!r} has an empty value.")
        return backend, dict(zip(fields, values, strict=False))
