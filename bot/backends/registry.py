"""What a backend is, and the registry that holds them.

A backend is one module: it declares `id`, `name`, `description` and an `Options` model, and
builds the LangChain runnable for a conversation. The UI, CLI and API are built from this data,
so adding a backend never touches them.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

from langchain_core.runnables import Runnable
from pydantic import BaseModel, ConfigDict, ValidationError

if TYPE_CHECKING:
    from bot.resources import Resources

_ID = re.compile(r"^[a-z][a-z0-9_+-]{0,31}$")


class NoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")


class BackendError(ValueError):
    """A request names a backend or options that cannot be used; the message says why."""


class Backend(ABC):
    """One way of answering. The runnable it builds takes `{"question": str, "history":
    list[BaseMessage]}` and streams dicts: `{"answer": AIMessageChunk}` pieces and, for
    backends that retrieve, one `{"sources": list[dict]}`."""

    id: ClassVar[str]
    name: ClassVar[str]
    description: ClassVar[str]
    Options: ClassVar[type[BaseModel]] = NoOptions
    # Options that a short spec such as "rag:manuals" gives in this order (`kbot eval`).
    positional: ClassVar[tuple[str, ...]] = ()

    def option_choices(self, resources: Resources, field: str) -> list[str] | None:
        """Allowed values of a text option (collections, adapters...), or None for free input."""
        return None

    def option_defaults(self, resources: Resources) -> dict[str, Any]:
        """Values to prefill in the UI where an option's default comes from the settings."""
        return {}

    def costs(self, resources: Resources, options: BaseModel) -> dict[str, Any]:
        """What building this backend's knowledge cost (index size, training time...), for
        comparisons; the base model costs nothing beyond itself."""
        return {}

    def parse_options(self, options: dict | None) -> BaseModel:
        unknown = sorted(set(options or {}) - set(self.Options.model_fields))
        if unknown:
            known = ", ".join(self.Options.model_fields) or "none"
            raise BackendError(
                f"Invalid options for backend {self.id!r}: {', '.join(unknown)} "
                f"(unknown; this backend takes: {known})"
            )
        try:
            return self.Options.model_validate(options or {})
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'options'}: {e['msg']}" for e in error.errors()
            )
            raise BackendError(f"Invalid options for backend {self.id!r}: {problems}") from None

    @abstractmethod
    def build_chain(self, resources: Resources, options: BaseModel) -> Runnable:
        """The runnable that answers one message of a conversation using this backend."""


class BackendRegistry:
    def __init__(self) -> None:
        self._backends: dict[str, Backend] = {}

    def register(self, backend: Backend) -> Backend:
        if not _ID.match(getattr(backend, "id", "")):
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
            raise BackendError(f"Unknown backend {backend_id!r}. Available: {known}.") from None

    def __iter__(self):
        return iter(self._backends.values())

    def __len__(self) -> int:
        return len(self._backends)

    def ids(self) -> list[str]:
        return list(self._backends)

    def parse_spec(self, spec: str) -> tuple[Backend, dict[str, str]]:
        """A backend and its options from a short spec: the id, then its positional options
        separated by ':' ("base", "rag:manuals", "rag+lora:manuals:my-adapter")."""
        backend_id, *values = spec.strip().split(":")
        backend = self.get(backend_id)
        if len(values) != len(backend.positional):
            wanted = ":".join([backend.id, *(f.upper() for f in backend.positional)])
            raise BackendError(f"Backend spec {spec!r} is malformed: expected {wanted!r}.")
        if not all(values):
            raise BackendError(f"Backend spec {spec!r} has an empty value.")
        return backend, dict(zip(backend.positional, values, strict=True))
