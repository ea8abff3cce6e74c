"""Retrieval-augmented answers: the question's nearest chunks go to the model, which cites them."""

from __future__ import annotations

from typing import Any

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder
from langchain_core.runnables import Runnable, RunnableLambda, RunnableParallel, RunnablePassthrough
from pydantic import BaseModel, ConfigDict, Field

from bot.backends.backend import Backend, BackendError
from bot.llm import LocalChatModel
from bot.resources import Resources
from common.names import InvalidNameError, validate_name

# Instructions after the context, close to where the answer starts, worked best with small
# models (SmolLM2-135M: 6 of 15 answers right vs 4-6 for other layouts we tried).
ANSWER_SYSTEM = "You are a helpful assistant that answers from the given context."
ANSWER_HUMAN = (
    "Context:\n{context}\n\nQuestion: {question}\n"
    "Answer briefly from the context and cite the passage number like [1]. If the context "
    "does not contain the answer, say that you don't know."
)
CONDENSE_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation. "
    "Reply with the rewritten question only."
)


class RagOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(default="", description="Knowledge collection to answer from.")
    k: int | None = Field(
        default=None, ge=1, le=50, description="Chunks to retrieve (default: setting top_k)."
    )


def format_context(hits: list[Any]) -> str:
    return "\n\n".join(
        f"[{number}] ({hit.source.rsplit('/', 1)[-1]}{', ' + hit.location if hit.location else ''})"
        f"\n{hit.text}"
        for number, hit in enumerate(hits, start=1)
    )


def history_text(history: list[Any]) -> str:
    return "\n".join(f"{'User' if m.type == 'human' else 'Assistant'}: {m.text}" for m in history)


def standalone_question(condense: Runnable) -> Runnable:
    """The question as retrieval should see it: follow-ups are rewritten with the history.
    A rewrite that comes back empty or rambling falls back to the question itself."""

    def rewrite(inputs: dict[str, Any]) -> str:
        question = inputs["question"]
        if not inputs["history"]:
            return question
        rewritten = condense.invoke(
            {"conversation": history_text(inputs["history"][-4:]), "question": question}
        ).strip()
        return rewritten if 0 < len(rewritten) <= 3 * len(question) + 200 else question

    return RunnableLambda(rewrite)


class RagBackend(Backend):
    id = "rag"
    name = "RAG (retrieval)"
    description = (
        "Finds the passages of a knowledge collection nearest to your question and answers "
        "from them, citing [n]."
    )
    Options = RagOptions
    positional = ("collection",)
    retrieves = True

    def option_choices(self, resources: Resources, field: str) -> list[str] | None:
        return resources.knowledge.collections() if field == "collection" else None

    def option_defaults(self, resources: Resources) -> dict[str, Any]:
        return {"k": resources.settings.top_k}

    def retriever(self, resources: Resources, options: RagOptions) -> Runnable:
        knowledge = resources.knowledge
        if not options.collection:
            raise BackendError(f"The {self.id} backend needs a collection: choose or create one.")
        try:
            validate_name(options.collection)
        except InvalidNameError as error:
            raise BackendError(str(error)) from None
        if options.collection not in knowledge.collections():
            known = ", ".join(knowledge.collections()) or "none yet"
            raise BackendError(f"Unknown collection {options.collection!r}. Existing: {known}.")
        k = options.k or resources.settings.top_k
        return RunnableLambda(lambda query: knowledge.search(options.collection, query, k))

    def costs(self, resources: Resources, options: BaseModel) -> dict[str, Any]:
        assert isinstance(options, RagOptions)
        stats = resources.knowledge.stats(options.collection)
        return {key: stats[key] for key in ("index_bytes", "ingest_seconds", "chunks")}

    def answer_model(self, resources: Resources, options: RagOptions) -> LocalChatModel:
        # No repetition penalty: it would punish copying facts from the context.
        return resources.chat_model(repetition_penalty=1.0)

    def build_chain(self, resources: Resources, options: BaseModel) -> Runnable:
        assert isinstance(options, RagOptions)
        retrieve = self.retriever(resources, options)
        llm = self.answer_model(resources, options)
        condense = (
            ChatPromptTemplate.from_messages(
                [
                    ("system", CONDENSE_SYSTEM),
                    ("human", "Conversation:\n{conversation}\n\nLast question: {question}"),
                ]
            )
            | llm
            | StrOutputParser()
        )
        answer_prompt = ChatPromptTemplate.from_messages(
            [
                ("system", ANSWER_SYSTEM),
                MessagesPlaceholder("history"),
                ("human", ANSWER_HUMAN),
            ]
        )
        return (
            RunnablePassthrough.assign(query=standalone_question(condense))
            | RunnablePassthrough.assign(hits=lambda inputs: retrieve.invoke(inputs["query"]))
            | RunnableParallel(
                answer=RunnablePassthrough.assign(context=lambda x: format_context(x["hits"]))
                | answer_prompt
                | llm,
                sources=lambda x: [hit.as_json() for hit in x["hits"]],
            )
        )
