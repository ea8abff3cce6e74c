"""The chat core, with no UI in it: one message in, a stream of growing replies out.

The Gradio app, the CLI and the tests all talk to the bot through `ChatService.reply`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from bot.backends import BackendRegistry, default_registry
from bot.provenance import answer_provenance, message_text
from bot.resources import Resources
from bot.settings import Settings
from bot.views import ResourcesView

EMPTY_MESSAGE_REPLY = (
    "Your message is empty. Type a question or a request, for example "
    "“What can you tell me about …?”"
)


@dataclass
class Reply:
    """A reply as it grows; the last one yielded has `done=True` and the final figures."""

    backend: str
    answer: str = ""
    sources: list[dict[str, Any]] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)
    # The question retrieval searched for, where it differs from the one asked (a follow-up
    # rewritten to stand alone).
    searched: str = ""
    tokens: int = 0
    prompt_tokens: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)  # set on the final reply
    latency_s: float = 0.0
    queue_s: float = 0.0  # of `latency_s`, the wait for the model (other replies before it)
    done: bool = False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "answer": self.answer,
            "backend": self.backend,
            "latency_s": round(self.latency_s, 3),
            "queue_s": round(self.queue_s, 3),
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
        }
        if self.sources:
            data["sources"] = self.sources
        if self.evidence:
            data["evidence"] = self.evidence
        if self.searched:
            data["searched"] = self.searched
        if self.provenance:
            data["provenance"] = self.provenance
        return data


# The UI shows an answer's evidence under it, after this line; it is not part of the answer.
EVIDENCE_HEADING = "**Evidence**"


def history_messages(
    history: Sequence[dict[str, Any]],
    max_chars: int | None = None,
    *,
    max_turns: int | None = None,
    max_tokens: int | None = None,
    count_tokens: Callable[[str], int] = len,
) -> list[BaseMessage]:
    """Gradio/OpenAI-style `{"role", "content"}` turns as LangChain messages: the newest ones
    that fit every bound. The client sends the history, so it is bounded here, in one pass
    from the newest turn back: at most `max_turns` turns are read at all, and those kept hold
    at most `max_chars` characters and `max_tokens` tokens (`count_tokens`). Info lines the
    UI adds under answers (messages with a metadata title) and the evidence shown under an
    answer are not part of the conversation."""
    messages: list[BaseMessage] = []
    chars = max_chars if max_chars is not None else float("inf")
    tokens = max_tokens if max_tokens is not None else float("inf")
    newest = history[-max_turns:] if max_turns is not None else history
    for turn in reversed(newest if max_turns != 0 else ()):
        if not isinstance(turn, dict) or (turn.get("metadata") or {}).get("title"):
            continue
        content = message_text(turn.get("content")).split(f"\n\n{EVIDENCE_HEADING}\n")[0]
        if not content:
            continue
        chars -= len(content)
        if chars < 0:
            break
        tokens -= count_tokens(content) if max_tokens is not None else 0
        if tokens < 0:
            break
        role = turn.get("role")
        messages.append(AIMessage(content) if role == "assistant" else HumanMessage(content))
    return messages[::-1]


def too_long(message: str, limit: int) -> str | None:
    """Why `message` (stripped) is refused for its length, or None."""
    if len(message) <= limit:
        return None
    return (
        f"Your message is {len(message):,} characters long; the limit is {limit:,} "
        "(setting KBOT_MAX_MESSAGE_CHARS). Please shorten it, or add long documents "
        "to a knowledge collection instead."
    )


class ChatService:
    def __init__(self, resources: ResourcesView, registry: BackendRegistry | None = None) -> None:
        self.resources = resources
        self.registry = registry or default_registry()

    def reply(
        self,
        message: str,
        history: Sequence[dict[str, Any]] = (),
        backend: str = "base",
        options: dict[str, Any] | None = None,
    ) -> Generator[Reply]:
        """Stream the reply of `backend` to `message`. Unknown backends and bad options raise
        `BackendError` before any work is done."""
        chosen = self.registry.get(backend)
        parsed = chosen.parse_options(options)
        reply = Reply(backend=chosen.id)
        text = (message or "").strip()
        if not text:
            reply.answer, reply.done = EMPTY_MESSAGE_REPLY, True
            yield reply
            return
        refusal = too_long(text, self.resources.settings.max_message_chars)
        if refusal:
            reply.answer = refusal
            reply.done = True
            yield reply
            return

        started = time.perf_counter()
        chain = chosen.build_chain(self.resources, parsed)
        earlier = self.earlier_turns(history)
        for chunk in chain.stream({"question": text, "history": earlier}):
            if "sources" in chunk:
                reply.sources = chunk["sources"]
            if "evidence" in chunk:
                reply.evidence = chunk["evidence"]
            if chunk.get("searched", text) != text:
                reply.searched = chunk["searched"]
            piece = chunk.get("answer")
            if piece is not None:
                reply.answer += piece.text
                if piece.usage_metadata:
                    reply.tokens = piece.usage_metadata["output_tokens"]
                    reply.prompt_tokens = piece.usage_metadata["input_tokens"]
                reply.queue_s += piece.response_metadata.get("queue_s", 0.0)
            reply.latency_s = time.perf_counter() - started
            yield replace(reply)  # a snapshot: consumers may keep earlier ones
        reply.answer = reply.answer.strip()
        reply.latency_s = time.perf_counter() - started
        reply.done = True
        reply.provenance = answer_provenance(self.resources, chosen.id, parsed.model_dump(), reply)
        yield reply

    def earlier_turns(self, history: Sequence[dict[str, Any]]) -> list[BaseMessage]:
        """What the model sees of the conversation before the message: the newest turns that
        fit the history settings, counted in the shared model's tokens."""
        settings = self.resources.settings
        max_turns = settings.max_history_turns
        earlier = history_messages(history, settings.max_history_chars, max_turns=max_turns)
        # A token covers at least one byte of text: a history of fewer bytes than the budget
        # fits without loading the tokenizer (the echo and summary backends need no model).
        if sum(len(message.text.encode()) for message in earlier) <= settings.max_history_tokens:
            return earlier
        return history_messages(
            history,
            settings.max_history_chars,
            max_tokens=settings.max_history_tokens,
            count_tokens=self.resources.engine.count_tokens,
            max_turns=max_turns,
        )


def create_service(settings: Settings) -> ChatService:
    """Load the shared model now, so that a bad `model` setting fails at start."""
    return ChatService(Resources(settings).load())
