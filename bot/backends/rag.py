"""Retrieval-augmented answers: the question's nearest chunks are retrieved, the sentences of
them that answer it are chosen, and the model reads only those (`knowledge/reading.py`), giving
a short answer with its evidence, or "The documents do not say."."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessageChunk, BaseMessage, convert_to_messages
from langchain_core.output_parsers import StrOutputParser
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough
from pydantic import BaseModel, ConfigDict, Field

from bot.backends.backend import Backend, existing_collection
from bot.views import ResourcesView
from knowledge.modes import Mode
from knowledge.reading import (
    NOT_IN_DOCUMENTS,
    Evidence,
    reader_messages,
    rewrite_messages,
    select_evidence,
)
from knowledge.results import Hit


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(default="", description="Knowledge collection to answer from.")
    k: int | None = Field(
        default=None, ge=1, le=50, description="Chunks to retrieve (default: setting top_k)."
    )
    mode: Literal["", Mode] = Field(
        default="",
        description="Retrieval mode for this conversation (default: the collection's own).",
    )


# The messages a follow-up is rewritten with: the last two exchanges.
REWRITE_HISTORY = 4
# A standalone question is a sentence: a model that rambles on instead (an answer, the
# conversation again) is cut off here and its output refused (`is_rewrite`), in seconds.
REWRITE_TOKENS = 48


def history_text(history: list[Any]) -> str:
    """The last messages of a conversation as the rewrite prompt shows them."""
    return "\n".join(
        f"{'User' if m.type == 'human' else 'Assistant'}: {m.text}"
        for m in history[-REWRITE_HISTORY:]
    )


_REFERRING = frozenset(
    {"it", "its", "they", "them", "their", "this", "that", "these", "those"}
    | {"he", "him", "his", "she", "her", "there", "then"}
)
# A follow-up that leaves out what it is about: "And on Sundays?", "What about coaches?".
_ELLIPTICAL = re.compile(r"^\W*(?:and|or|but|also|what about|how about)\b", re.I)
_FRAGMENT_WORDS = 3  # "On Sundays?", "How much?": too short to stand alone


def refers_back(question: str) -> bool:
    """Whether the question leans on the conversation: a word that points back ("What colour
    is it?", "What should I do then?"), or what it is about left out ("And on Sundays?")."""
    words = [word.strip("?,.!'\"").lower() for word in question.split()]
    return (
        any(word in _REFERRING for word in words)
        or bool(_ELLIPTICAL.match(question))
        or len([w for w in words if w]) <= _FRAGMENT_WORDS
    )


@dataclass(frozen=True)
class Standalone:
    """A message as RAG uses it: what retrieval searches for, and the question the reader
    answers (they differ where a follow-up's rewrite failed)."""

    search: str
    read: str


# The labels of the rewrite prompt (`history_text`, `knowledge/reading.py`): a small model
# sometimes echoes the prompt ("User: 4\n\nLast question: ...?") instead of rewriting it.
_PROMPT_ECHO = re.compile(r"^(?:User|Assistant|Conversation|Last question):", re.M)


def is_rewrite(rewritten: str, question: str) -> bool:
    """Whether the model's output is a rewritten question: one question of sensible length,
    not an answer and not the prompt echoed back."""
    return (
        rewritten.endswith("?")
        and "\n" not in rewritten
        and not _PROMPT_ECHO.search(rewritten)
        and len(rewritten) <= 3 * len(question) + 200
    )


def standalone_question(condense: Runnable) -> Runnable:
    """The question as retrieval and the reader should see it: follow-ups are rewritten with
    the history. A small model often answers instead of rewriting ("The mayor is ..."), so a
    rewrite counts only if it is a question of sensible length. Otherwise a question that
    refers back is searched for after the user's previous message (which finds the document
    talked about), but read as asked: two questions in one would be answered with the first."""

    def rewrite(inputs: dict[str, Any]) -> Standalone:
        question = inputs["question"]
        history = inputs["history"]
        if not history:
            return Standalone(question, question)
        rewritten = condense.invoke(
            {"conversation": history_text(history), "question": question}
        ).strip()
        if is_rewrite(rewritten, question):
            return Standalone(rewritten, rewritten)
        if refers_back(question):
            previous = next((m.text for m in reversed(history) if m.type == "human"), "")
            return Standalone(f"{previous} {question}".strip(), question)
        return Standalone(question, question)

    return RunnableLambda(rewrite)


def documents_do_not_say(_: Any) -> AIMessageChunk:
    return AIMessageChunk(content=NOT_IN_DOCUMENTS)


class RagBackend(Backend):
    id = "rag"
    name = "RAG (retrieval)"
    description = (
        "Finds the passages of a knowledge collection nearest to your question, reads the "
        "sentences that answer it and replies briefly, showing them as evidence."
    )
    Options = RagOptions
    positional = ("collection",)
    optional_positional = ("mode",)  # "rag:manuals:bm25": retrieval modes side by side
    retrieves = True

    def option_choices(
        self, resources: ResourcesView, field: str, chosen: Mapping[str, Any] | None = None
    ) -> list[str] | None:
        return resources.knowledge.collections() if field == "collection" else None

    def option_defaults(self, resources: ResourcesView) -> dict[str, Any]:
        return {"k": resources.settings.top_k}

    def retriever(self, resources: ResourcesView, options: RagOptions) -> Runnable:
        knowledge = resources.knowledge
        existing_collection(resources, self.name, options.collection)
        k = options.k or resources.settings.top_k
        mode = options.mode or None

        def search(query: str) -> list[Hit]:
            return knowledge.search(options.collection, query, k, mode)

        return RunnableLambda(search)

    def costs(self, resources: ResourcesView, options: BaseModel) -> dict[str, Any]:
        assert isinstance(options, RagOptions)
        stats = resources.knowledge.stats(options.collection)
        return {key: stats[key] for key in ("index_bytes", "ingest_seconds", "chunks")}

    def answer_model(self, resources: ResourcesView, options: RagOptions) -> BaseChatModel:
        return resources.reader_model()

    def searched_question(self, resources: ResourcesView) -> Runnable:
        """{"question", "history"} -> what to search for and the question to read
        (`standalone_question`)."""

        def prompt(inputs: dict[str, str]) -> list[BaseMessage]:
            return convert_to_messages(rewrite_messages(inputs["conversation"], inputs["question"]))

        model = (
            resources.reader_model(max_new_tokens=REWRITE_TOKENS, lean=0.0)
            if resources.settings.rewriter == "reader"
            else resources.chat_model(  # rewriting is not reading
                repetition_penalty=1.0, max_new_tokens=REWRITE_TOKENS
            )
        )
        condense = RunnableLambda(prompt) | model | StrOutputParser()
        return standalone_question(condense)

    def build_chain(self, resources: ResourcesView, options: BaseModel) -> Runnable:
        assert isinstance(options, RagOptions)
        settings = resources.settings
        retrieve = self.retriever(resources, options)
        llm = self.answer_model(resources, options)

        def reader_prompt(inputs: dict[str, Any]) -> list[BaseMessage]:
            asked = inputs["standalone"].read
            return convert_to_messages(reader_messages(asked, inputs["evidence"]))

        read = RunnableLambda(reader_prompt) | llm

        def evidence(inputs: dict[str, Any]) -> list[Evidence]:
            asked = inputs["standalone"].read
            return select_evidence(
                resources.embedder, asked, inputs["hits"], settings.evidence_sentences
            )

        def answer(inputs: dict[str, Any]) -> Runnable:
            # Too little support for any answer: say so rather than let the model guess.
            supported = inputs["evidence"] and inputs["evidence"][0].score >= settings.min_evidence
            return read if supported else RunnableLambda(documents_do_not_say)

        return (
            RunnablePassthrough.assign(standalone=self.searched_question(resources))
            | RunnablePassthrough.assign(hits=lambda x: retrieve.invoke(x["standalone"].search))
            | RunnablePassthrough.assign(evidence=evidence)
            | RunnableParallel(
                answer=RunnableLambda(answer),
                searched=lambda x: x["standalone"].search,
                sources=lambda x: [hit.as_json() for hit in x["hits"]],
                evidence=lambda x: [e.as_json() for e in x["evidence"]],
            )
        )
