"""A chat engine without a model, for the fast loop: its answers are made from the question, so
two conversations still get different answers, and they stream word by word."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult

from bot.model import GenerationParams


class EchoChatModel(GenericFakeChatModel):
    """langchain_core's streaming fake, answering with the end of the last message it was
    given (the fake itself replays a fixed list, whatever is asked), and counting words as
    tokens in its usage, as the real model reports its tokens."""

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        said = " ".join(messages[-1].text.split()[-12:])
        message = AIMessage(content=f"Fake answer to: {said}")
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> Iterator[ChatGenerationChunk]:
        written = 0
        for chunk in super()._stream(messages, stop, run_manager, **kw):
            written += 1
            yield chunk
        asked = sum(len(m.text.split()) for m in messages)
        usage = {"input_tokens": asked, "output_tokens": written, "total_tokens": asked + written}
        yield ChatGenerationChunk(message=AIMessageChunk(content="", usage_metadata=usage))  # type: ignore[arg-type]


class FakeEngine:
    """An `Engine` (bot/engine.py) that loads nothing."""

    def chat_model(
        self,
        params: GenerationParams,
        adapter: Path | None = None,
        checkpoint: Path | None = None,
    ) -> BaseChatModel:
        return EchoChatModel(messages=iter(()))

    def count_tokens(self, text: str) -> int:
        return len(text.split())

    def describe(self) -> dict[str, Any]:
        return {"engine": "fake"}

    def load(self) -> None:
        pass
