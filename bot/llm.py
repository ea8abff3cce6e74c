"""LangChain chat model over the shared local model.

langchain-huggingface's ChatHuggingFace/HuggingFacePipeline stream through a pipeline that has
no generation lock, no way to stop a reply, and no per-request adapter choice; all three are
needed when many conversations share one model, so this thin adapter talks to `LoadedModel`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LangSmithParams
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, InstanceOf

from bot.model import GenerationParams, GenerationStats, LoadedModel

_ROLES = {"human": "user", "ai": "assistant", "system": "system"}


def to_chat_dicts(messages: list[BaseMessage]) -> list[dict[str, str]]:
    return [{"role": _ROLES.get(m.type, "user"), "content": m.text} for m in messages]


class LocalChatModel(BaseChatModel):
    """Streams replies from the process-wide `LoadedModel`."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    loaded: InstanceOf[LoadedModel]
    params: GenerationParams = GenerationParams()
    adapter: str | None = None  # a LoRA adapter key on `loaded`, or None for the plain model

    @property
    def _llm_type(self) -> str:
        return "kbot-local"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"model": self.loaded.name, "adapter": self.adapter, **self.params.__dict__}

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> LangSmithParams:
        # The base class finds no model name here (it looks for `model`/`model_name`) and
        # derives the provider from the class name; name both, and the knobs actually used.
        ls_params = super()._get_ls_params(stop=stop, **kwargs)
        ls_params["ls_provider"] = self._llm_type
        ls_params.setdefault("ls_model_name", self.loaded.name)  # a per-call `model=` wins
        ls_params.setdefault("ls_temperature", self.params.temperature)
        ls_params.setdefault("ls_max_tokens", self.params.max_new_tokens)
        return ls_params

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        stats = GenerationStats()
        pieces = self.loaded.stream(
            to_chat_dicts(messages), self.params, stats, adapter=self.adapter
        )
        for piece in until_stop(pieces, stop):
            if run_manager:
                run_manager.on_llm_new_token(piece)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(
            message=AIMessageChunk(
                content="",
                usage_metadata={
                    "input_tokens": stats.prompt_tokens,
                    "output_tokens": stats.completion_tokens,
                    "total_tokens": stats.prompt_tokens + stats.completion_tokens,
                    "input_token_details": {"cache_read": stats.cached_tokens},
                },
                response_metadata={
                    "seconds": stats.seconds,
                    "first_token_s": stats.first_token_s,
                    "queue_s": stats.queue_s,
                },
            )
        )

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        merged: AIMessageChunk | None = None
        for chunk in self._stream(messages, stop, run_manager, **kwargs):
            piece = chunk.message
            assert isinstance(piece, AIMessageChunk)  # `_stream` makes nothing else
            merged = piece if merged is None else merged + piece
        message = AIMessage(
            content=merged.content if merged else "",
            usage_metadata=merged.usage_metadata if merged else None,
        )
        return ChatResult(generations=[ChatGeneration(message=message)])


def until_stop(pieces: Iterator[str], stop: list[str] | None) -> Iterator[str]:
    """`pieces` up to the first of the `stop` strings (left out), as LangChain's `stop`
    means; the generation is closed there. A piece's tail that could begin a stop string is
    held back until the next piece shows whether it does."""
    if not stop:
        yield from pieces
        return
    hold = max(len(s) for s in stop) - 1
    held = ""
    for piece in pieces:
        held += piece
        cut = min((at for s in stop if (at := held.find(s)) >= 0), default=-1)
        if cut >= 0:
            if cut:
                yield held[:cut]
            close = getattr(pieces, "close", None)
            if close:
                close()  # stops the generation on the compute thread
            return
        if len(held) > hold:
            yield held[: len(held) - hold]
            held = held[len(held) - hold :]
    if held:
        yield held
