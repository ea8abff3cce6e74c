"""The shared resources as one caller sees them: their own private collections, adapters and
question sets and the shared ones, by the names they know them by. Every handler of a served
app works through such a view, whatever the server's mode (a local or chat-only server's view
is the shared data alone), so the backends, the training glue and the evaluation need no
notion of users, and a user's private data cannot leak through a server started without
users."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel

from adapters.meta import ArtifactMeta
from adapters.registry import ArtifactRegistry, UnknownArtifactError
from bot.access import AccessDenied, Scope
from bot.engine import Engine
from bot.resources import Resources, answering_model
from bot.views import ResourcesView
from knowledge.chunking import PlacedChunk
from knowledge.knowledge_base import KnowledgeBase
from knowledge.modes import Mode
from knowledge.results import Hit, IngestResult, Progress, UnknownCollectionError


class ScopedKnowledge:
    """`KnowledgeBase` with names as `scope` knows them. Collections outside the scope do not
    exist here: they are neither listed nor named in errors."""

    def __init__(self, knowledge: KnowledgeBase, scope: Scope) -> None:
        self.knowledge = knowledge
        self.scope = scope
        self.embedder = knowledge.embedder

    def collections(self) -> list[str]:
        return self.scope.visible(self.knowledge.collections())

    def _find(self, name: str) -> str:
        """The stored collection `name` means to this caller: their own first, then shared."""
        stored = self.scope.resolve(name, self.knowledge.collections())
        if stored is not None:
            return stored
        known = ", ".join(self.collections()) or "none yet"
        raise UnknownCollectionError(
            f"Unknown collection {name!r}. Yours to use: {known}. "
            "Create one by adding documents to it."
        )

    def _changeable(self, name: str) -> str:
        stored = self._find(name)
        if not self.scope.may_change(stored):
            raise AccessDenied(f"Collection {name!r} is shared: only an admin may change it.")
        return stored

    def ingest(
        self, name: str, files: Iterable[Path | tuple[Path, str]], progress: Progress | None = None
    ) -> IngestResult:
        result = self.knowledge.ingest(self.scope.stored(name), files, progress)
        return replace(result, collection=name)

    def forget(self, name: str, source: str) -> int:
        return self.knowledge.forget(self._changeable(name), source)

    def delete(self, name: str) -> None:
        self.knowledge.delete(self._changeable(name))

    def documents(self, name: str) -> list[dict[str, Any]]:
        return self.knowledge.documents(self._find(name))

    def stats(self, name: str) -> dict[str, Any]:
        return self.knowledge.stats(self._find(name))

    def chunks(self, name: str) -> list[tuple[str, str]]:
        return self.knowledge.chunks(self._find(name))

    def source_texts(self, name: str) -> list[str]:
        return self.knowledge.source_texts(self._find(name))

    def chunks_by_source(self, name: str) -> dict[str, tuple[str, list[str]]]:
        return self.knowledge.chunks_by_source(self._find(name))

    def placed_chunks_by_source(self, name: str) -> dict[str, tuple[str, list[PlacedChunk]]]:
        return self.knowledge.placed_chunks_by_source(self._find(name))

    def stored_source(self, name: str, source: str, paths: bool = False) -> str:
        # A client's value names a document by its stored name or file name only: it never
        # touches the file system (`paths` is for the CLI, on the operator's own machine).
        return self.knowledge.stored_source(self._find(name), source, paths=False)

    def summaries_folder(self, name: str) -> Path:
        return self.knowledge.summaries_folder(self._find(name))

    def mode(self, name: str) -> Mode:
        return self.knowledge.mode(self._find(name))

    def set_mode(self, name: str, mode: str, progress: Progress | None = None) -> None:
        self.knowledge.set_mode(self._changeable(name), mode, progress)

    def embedder_name_of(self, name: str) -> str:
        return self.knowledge.embedder_name_of(self._find(name))

    def change_embedder(
        self, name: str, spec: str, progress: Progress | None = None
    ) -> dict[str, Any]:
        changed = self.knowledge.change_embedder(self._changeable(name), spec, progress)
        return changed | {"collection": name}

    def search(self, name: str, query: str, k: int, mode: str | None = None) -> list[Hit]:
        return self.knowledge.search(self._find(name), query, k, mode)

    def search_vector(self, name: str, vector: Sequence[float], k: int) -> list[Hit]:
        return self.knowledge.search_vector(self._find(name), vector, k)

    def search_many(
        self, name: str, queries: Sequence[str], k: int, mode: str | None = None
    ) -> Iterator[list[Hit]]:
        return self.knowledge.search_many(self._find(name), queries, k, mode)

    def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        return self.knowledge.embed_queries(queries)


class ScopedArtifacts:
    """`ArtifactRegistry` with names as `scope` knows them: the caller's own adapters and
    checkpoints, then the shared ones. Other users' do not exist here."""

    def __init__(self, registry: ArtifactRegistry, scope: Scope) -> None:
        self.registry = registry
        self.scope = scope

    def names(self) -> list[str]:
        return self.scope.visible(self.registry.names())

    def names_of(self, method: str) -> list[str]:
        return [name for name, meta in self.all() if meta.method == method]

    def _find(self, name: str, stored_names: list[str] | None = None) -> str:
        listed = self.registry.names() if stored_names is None else stored_names
        stored = self.scope.resolve(name, listed)
        if stored is None:
            known = ", ".join(self.names()) or "none yet"
            raise UnknownArtifactError(
                f"Unknown adapter or checkpoint {name!r}. Existing: {known}."
            )
        return stored

    def meta(self, name: str) -> ArtifactMeta:
        return self.registry.meta(self._find(name))

    def path(self, name: str) -> Path:
        return self.registry.path(self._find(name))

    def all(self) -> list[tuple[str, ArtifactMeta]]:
        listed = self.registry.names()  # listed once, not once per artifact
        return [
            (name, self.registry.meta(self._find(name, listed)))
            for name in self.scope.visible(listed)
        ]

    def delete(self, name: str) -> None:
        stored = self._find(name)
        if not self.scope.may_change(stored):
            raise AccessDenied(f"Adapter {name!r} is shared: only an admin may change it.")
        self.registry.delete(stored)

    def check_free(self, name: str, overwrite: bool) -> None:
        self.registry.check_free(self.scope.stored(name, "adapter"), overwrite)


class ScopedResources:
    """`Resources` with the knowledge and the trained artifacts seen through `scope`;
    everything else (the model, the embedder) is the shared object itself, never a copy.
    Each shared part is named here: nothing falls through to the unscoped object."""

    def __init__(self, shared: Resources, scope: Scope) -> None:
        self.shared = shared
        self.scope = scope
        self.knowledge = ScopedKnowledge(shared.knowledge, scope)
        self.artifacts = ScopedArtifacts(shared.artifacts, scope)
        self.settings = shared.settings
        self.admission = shared.admission
        self.uploads = shared.uploads
        self.reader_model = shared.reader_model
        self.hypothetical_answer = shared.hypothetical_answer
        self.chunk_questions = shared.chunk_questions
        self.question_for = shared.question_for

    @property
    def engine(self) -> Engine:
        return self.shared.engine

    def chat_model(
        self, adapter: str | None = None, checkpoint: str | None = None, **overrides: Any
    ) -> BaseChatModel:
        # Adapters by the names this caller knows: another user's are not found.
        return answering_model(self, adapter, checkpoint, overrides)

    @property
    def embedder(self) -> Any:
        return self.shared.embedder

    @property
    def reader(self) -> Path | None:
        return self.shared.reader


def scoped(resources: ResourcesView, scope: Scope) -> ResourcesView:
    """`resources` as `scope` sees them. Always a view, also for a server without users:
    there the shared data alone, never a user's private collections or adapters."""
    shared = resources.shared if isinstance(resources, ScopedResources) else resources
    assert isinstance(shared, Resources), "a view is made of the shared resources"
    return ScopedResources(shared, scope)
