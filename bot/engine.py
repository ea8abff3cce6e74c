"""Where answers are generated. Backends ask for a chat model by the adapter or checkpoint
they need; the engine decides how that model runs. `LocalEngine` runs the shared base model
in this process (adapters swapped on it, checkpoints cached under a memory cap); batching or
a remote model server is another `Engine`, with no change to the backends."""

from __future__ import annotations

import threading
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

from langchain_core.language_models import BaseChatModel

from bot.llm import LocalChatModel
from bot.model import (
    Batching,
    CheckpointCache,
    GenerationParams,
    LoadedModel,
    ModelLoadError,
    load_model,
    model_location,
)
from bot.model_server import served_name
from bot.settings import Settings
from common.errors import BadInput, NotFound


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
        self.checkpoints = CheckpointCache(
            settings.checkpoint_cache_mb, Batching.from_settings(settings)
        )

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


class ServerEngine:
    """An OpenAI-compatible model server answers (`KBOT_MODEL_URL`): `kbot model-server`
    (llama.cpp), vLLM, or any server of the kind. Adapters are chosen per request by name, as
    both serve them (the adapter is the request's model); fully fine-tuned checkpoints are
    whole models of their own and still answer in this process."""

    def __init__(self, settings: Settings) -> None:
        assert settings.model_url, "ServerEngine needs KBOT_MODEL_URL"
        self.settings = settings
        self.url = settings.model_url.rstrip("/")
        self.checkpoints = CheckpointCache(
            settings.checkpoint_cache_mb, Batching.from_settings(settings)
        )
        self._served: list[str] = []
        self._lock = threading.Lock()

    def served(self, refresh: bool = False) -> list[str]:
        """The names the server answers to, its base model first."""
        import httpx

        with self._lock:
            if refresh or not self._served:
                key = self.settings.model_api_key.get_secret_value()
                try:
                    reply = httpx.get(
                        f"{self.url}/models", headers={"Authorization": f"Bearer {key}"}, timeout=10
                    )
                    reply.raise_for_status()
                    self._served = [entry["id"] for entry in reply.json()["data"]]
                except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                    raise ModelLoadError(
                        f"KBOT_MODEL_URL={self.settings.model_url!r}: no model server answers "
                        f"there ({error}). Start one (`kbot model-server`) or unset the setting."
                    ) from error
            return self._served

    def served_name(self, adapter: Path | None) -> str:
        if adapter is None:
            return self.served()[0]
        name = served_name(adapter)
        if name == self.served()[0]:
            raise BadInput(
                f"An adapter named {name!r} cannot be told from the model server's base model: "
                "rename the adapter to chat with it through the server."
            )
        if name not in self.served() and name not in self.served(refresh=True):
            raise NotFound(
                f"The model server has no adapter {name!r} (`kbot model-server` serves the "
                f"adapters of its KBOT_HOME; vLLM: --lora-modules {name}=FOLDER). It serves: "
                f"{', '.join(self.served())}."
            )
        return name

    def chat_model(
        self,
        params: GenerationParams,
        adapter: Path | None = None,
        checkpoint: Path | None = None,
    ) -> BaseChatModel:
        from langchain_openai import ChatOpenAI

        if checkpoint is not None:
            return LocalChatModel(loaded=self.checkpoints.get(checkpoint), params=params)
        extra: dict[str, Any] = {}
        if params.lean_towards and params.lean:
            extra["logit_bias"] = self.leaning(params.lean_towards, params.lean)
        return ChatOpenAI(
            model=self.served_name(adapter),
            base_url=self.url,
            api_key=self.settings.model_api_key,
            temperature=params.temperature,
            top_p=params.top_p,
            max_completion_tokens=params.max_new_tokens,
            # ChatOpenAI sends only `max_completion_tokens`, which llama-cpp-python's server
            # ignores; and llama.cpp and vLLM name the repetition penalty differently. Each
            # server ignores the names it does not know.
            extra_body={
                "max_tokens": params.max_new_tokens,
                "repeat_penalty": params.repetition_penalty,
                "repetition_penalty": params.repetition_penalty,
                **extra,
            },
            streaming=True,
            stream_usage=True,
            timeout=params.max_wait_s,
            max_retries=0,
        )

    def leaning(self, reply: str, lean: float) -> dict[str, float]:
        """The in-process leaning towards `reply` (`bot.model.LeanTowards`) as far as a server
        takes it: a bias on the reply's first two tokens wherever they come, not only while
        the answer follows the reply. Where it counts, at an answer's start, both agree."""
        first_two = self.tokenizer.encode(reply, add_special_tokens=False)[:2]
        return {str(token): lean for token in first_two}

    @cached_property
    def tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model_location(self.settings))

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer.encode(text, add_special_tokens=False))

    def describe(self) -> dict[str, Any]:
        return {"engine": "server", "url": self.url, "model": self.served()[0]}

    def load(self) -> None:
        self.served(refresh=True)
        _ = self.tokenizer


def make_engine(settings: Settings) -> Engine:
    """The engine the settings ask for: a model server at KBOT_MODEL_URL, else this process."""
    return ServerEngine(settings) if settings.model_url else LocalEngine(settings)
