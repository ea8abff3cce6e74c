"""Summaries of a whole collection: every document is summarised (cached by content hash) and
an overview names what they cover, for questions that top-k retrieval cannot answer ("What is
this collection about?", "Summarise the documents about tides")."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

from langchain_core.messages import AIMessageChunk
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel, ConfigDict, Field

from bot.backends.backend import Backend, BackendError, UnknownNameError, existing_collection
from bot.views import ResourcesView
from common.text import literal_markdown
from knowledge.summaries import Summarizer, TooManyDocumentsError, document_line, topic_of


def summarizer(resources: ResourcesView) -> Summarizer:
    """A summarizer over `resources`' knowledge (as the caller sees it) and settings."""
    settings = resources.settings
    return Summarizer(
        resources.knowledge,
        resources.embedder,
        method=settings.summary_method,
        sentences=settings.summary_sentences,
        max_documents=settings.summary_max_documents,
        model=lambda: resources.chat_model(repetition_penalty=1.0, max_new_tokens=120),
        model_name=settings.model,
    )


class SummaryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    collection: str = Field(default="", description="Knowledge collection to summarise.")
    source: str = Field(
        default="", description="One document of it to summarise (default: as asked)."
    )


class SummaryBackend(Backend):
    id = "summary"
    name = "Summary (whole collection)"
    description = (
        "Summarises every document of a collection, or those about the topic you name, and "
        "names its main topics: ask what the collection is about."
    )
    Options = SummaryOptions
    positional = ("collection",)
    option_depends: ClassVar[dict[str, str]] = {"source": "collection"}
    generates = False

    def option_choices(
        self, resources: ResourcesView, field: str, chosen: Mapping[str, Any] | None = None
    ) -> list[str] | None:
        collections = resources.knowledge.collections()
        if field == "collection":
            return collections
        if field != "source":
            return None
        collection = (chosen or {}).get("collection")
        if collection not in collections:
            return []
        return sorted({Path(d["source"]).name for d in resources.knowledge.documents(collection)})

    def build_chain(self, resources: ResourcesView, options: BaseModel) -> Runnable:
        assert isinstance(options, SummaryOptions)
        collection = existing_collection(resources, self.name, options.collection)
        source = _stored_source(resources, collection, options.source) if options.source else ""

        def answer(inputs: dict[str, Any]) -> Iterator[dict[str, Any]]:
            written = summarizer(resources)
            topic = "" if source else topic_of(inputs["question"])
            sources = [source] if source else written.about(collection, topic) if topic else None
            if sources == []:
                yield _piece(f"No document mentions {literal_markdown(repr(topic))}.")
                return
            try:
                documents = []
                for document in written.documents(collection, sources):
                    if not documents:
                        yield _piece(_heading(collection, sources, topic))
                    documents.append(document)
                    yield _piece(document_line(document, Path(document.source).name) + "\n")
            except TooManyDocumentsError as error:
                raise BackendError(str(error)) from None
            if not documents:
                yield _piece("The collection holds no documents.")
            if len(documents) > 1:
                overview = literal_markdown(written.overview(collection, documents))
                yield _piece(f"\n**In short:** {overview}")

        return RunnableLambda(answer)


def _stored_source(resources: ResourcesView, collection: str, source: str) -> str:
    """The stored document a user means by `source`: as stored, or by its file name (never
    as a path: a client's value does not touch the file system)."""
    try:
        return resources.knowledge.stored_source(collection, source, paths=False)
    except LookupError as error:
        raise UnknownNameError(str(error)) from None


def _piece(text: str) -> dict[str, AIMessageChunk]:
    return {"answer": AIMessageChunk(content=text)}


def _heading(collection: str, sources: list[str] | None, topic: str) -> str:
    if sources is None:
        return f"Every document of **{literal_markdown(collection)}**, summarised:\n\n"
    if topic:
        return f"The documents that mention *{literal_markdown(topic)}*, summarised:\n\n"
    return ""
