"""Where answers are generated. Backends ask for a chat model by the adapter or checkpoint
they need; the engine decides how that model runs. `LocalEngine` runs the shared base model
in this process (adapters swapped on it, checkpoints cached under a memory cap); batching or
a remote model server is another `Engine`, with no change to the backends."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from bot.llm import LocalChatModel
from bot.model import CheckpointCache, GenerationParams, LoadedModel, load_model
from bot.settings import Settings


class Engine(Protocol):
    def chat_model(
        self,
        params: GenerationParams,
        adapter: Path | None = None,
        checkpoint: Path | None = None,
    ) -> BaseChatModel:
        """A LangChain chat model: the base model, with the LoRA adapter in folder `adapter`
        switched on, or the fully fine-tuned `checkpoint` instead."""
        ...

    def count_tokens(self, text: str) -> int:
        """How many tokens of the base model `text` takes (history budgets count these)."""
        ...

    def describe(self) -> dict[str, Any]:
        """What answers: which engine runs which model."""
        ...

    def load(self) -> None:
        """Load what the first answer needs now, so a bad setting fails before serving."""
        ...


class LocalEngine:
    """The base model in this process, loaded once and shared by every conversation."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self.checkpoints = CheckpointCache(settings.checkpoint_cache_mb)

    @property
    def model(self) -> LoadedModel:
        # Loaded once: conversations that start together wait for the one load.
        with self._lock:
            if self._model is None:
                self._model = load_model(self.settings)
            return self._model

    def chat_model(
        self,
        params: GenerationParams,
        adapter: Path | None = None,
        checkpoint: Path | None = None,
    ) -> BaseChatModel:
        if checkpoint is not None:
            return LocalChatModel(loaded=self.checkpoints.get(checkpoint), params=params)
        key = self.model.add_adapter(adapter) if adapter is not None else None
        return LocalChatModel(loaded=self.model, params=params, adapter=key)

    def count_tokens(self, text: str) -> int:
        return len(self.model.tokenizer.encode(text, add_special_tokens=False))

    def describe(self) -> dict[str, Any]:
        return {"engine": "local", "model": self.settings.model}

    def load(self) -> None:
        _ = self.model
