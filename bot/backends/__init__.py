"""Built-in backends. A new backend is one module plus one line in `BUILTIN_BACKENDS`."""

from __future__ import annotations

from bot.backends.backend import Backend, BackendError, UnknownNameError
from bot.backends.finetuned import FullBackend, LoraBackend
from bot.backends.plain import BaseModelBackend
from bot.backends.rag import RagBackend
from bot.backends.rag_lora import RagLoraBackend
from bot.backends.registry import BackendRegistry
from bot.backends.summary import SummaryBackend

BUILTIN_BACKENDS: list[type[Backend]] = [
    BaseModelBackend,
    RagBackend,
    LoraBackend,
    FullBackend,
    RagLoraBackend,
    SummaryBackend,
]


def default_registry() -> BackendRegistry:
    registry = BackendRegistry()
    for backend_class in BUILTIN_BACKENDS:
        registry.register(backend_class())
    return registry


__all__ = ["Backend", "BackendError", "BackendRegistry", "UnknownNameError", "default_registry"]
