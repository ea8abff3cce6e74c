"""Heavy objects shared by every conversation, loaded once on first use."""

from __future__ import annotations

import threading
from functools import cached_property

from bot.llm import LocalChatModel
from bot.model import GenerationParams, LoadedModel, load_model
from bot.settings import Settings


class Resources:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()

    @cached_property
    def model(self) -> LoadedModel:
        return load_model(self.settings)

    def load(self) -> Resources:
        """Load the base model now (at start), so a bad setting fails before serving."""
        with self._lock:
            _ = self.model
        return self

    def chat_model(self) -> LocalChatModel:
        with self._lock:
            loaded = self.model
        return LocalChatModel(loaded=loaded, params=GenerationParams.from_settings(self.settings))
