"""The chat core, with no UI in it: one message in, a stream of growing replies out.

The Gradio app, the CLI and the tests all talk to the bot through `ChatService.reply`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from bot.backends import BackendRegistry, default_registry
from bot.provenance import answer_provenance, message_text
from bot.resources import Resources
from bot.settings import Settings

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
    tokens: int = 0
    prompt_tokens: int = 0
    provenance: dict[str, Any] = field(default_factory=dict)  # set on the final reply
    latency_s: float = 0.0
    done: bool = False

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "answer": self.answer,
            "backend": self.backend,
            "latency_s": round(self.latency_s, 3),
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
        }
        if self.sources:
            data["sources"] = self.sources
        if self.evidence:
            data["evidence"] = self.evidence
        if self.provenance:
            data["provenance"] = self.provenance
        return data


# The UI shows an answer's evidence under it, after this line; it is not part of the answer.
EVIDENCE_HEADING = "**Evidence**"


def history_messages(
    history: Sequence[dict[str, Any]], max_chars: int | None = None
) -> list[BaseMessage]:
    """Gradio/OpenAI-style `{"role", "content"}` turns as LangChain messages: the newest ones,
    up to `max_chars` characters in all (the client sends the history, so its size is
    bounded here, in one pass from the newest turn back). Info lines the UI adds under answers
    (messages with a metadata title) and the evidence shown under an answer are not part of
    the conversation."""
    messages: list[BaseMessage] = []
    room = max_chars if max_chars is not None else float("inf")
    for turn in reversed(history):
        if not isinstance(turn, dict) or (turn.get("metadata") or {}).get("title"):
            continue
        content = message_text(turn.get("content")).split(f"\n\n{EVIDENCE_HEADING}\n")[0]
        if not content:
            continue
        room -= len(content)
        if room < 0:
            break
        role = turn.get("role")
        messages.append(AIMessage(content) if role == "assistant" else HumanMessage(content))
    return messages[::-1]


class ChatService:
    def __init__(self, resources: Resources, registry: BackendRegistry | None = None) -> None:
        self.resources = resources
        self.registry = registry or default_registry()

    def reply(
        self,
        message: str,
        history: Sequence[dict[str, Any]] = (),
        backend: str = "base",
        options: dict[str, Any] | None = None,
    ) -> Iterator[Reply]:
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
        limit = self.resources.settings.max_message_chars
        if len(text) > limit:
            reply.answer = (
                f"Your message is {len(text):,} characters long; the limit is {limit:,} "
                "(setting KBOT_MAX_MESSAGE_CHARS). Please shorten it, or add long documents "
                "to a knowledge collection instead."
            )
            reply.done = True
            yield reply
            return

        started = time.perf_counter()
        chain = chosen.build_chain(self.resources, parsed)
        earlier = history_messages(history, self.resources.settings.max_history_chars)
        for chunk in chain.stream({"question": text, "history": earlier}):
            if "sources" in chunk:
                reply.sources = chunk["sources"]
            if "evidence" in chunk:
                reply.evidence = chunk["evidence"]
            piece = chunk.get("answer")
            if piece is not None:
                reply.answer += piece.text
                if piece.usage_metadata:
                    reply.tokens = piece.usage_metadata["output_tokens"]
                    reply.prompt_tokens = piece.usage_metadata["input_tokens"]
            reply.latency_s = time.perf_counter() - started
            yield replace(reply)  # a snapshot: consumers may keep earlier ones
        reply.answer = reply.answer.strip()
        reply.latency_s = time.perf_counter() - started
        reply.done = True
        reply.provenance = answer_provenance(self.resources, chosen.id, parsed.model_dump(), reply)
        yield reply


def create_service(settings: Settings) -> ChatService:
    """Load the shared model now, so that a bad `model` setting fails at start."""
    return ChatService(Resources(settings).load())
