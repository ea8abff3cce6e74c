"""Reading a collection's committed chunks: searches by every retrieval mode (`modes.py`), and
the reads that follow a collection to its new index should it move to another embedder while
they run (`migration.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from langchain_core.embeddings import Embeddings

from common.errors import BadInput
from knowledge import search
from knowledge.lexical import LexicalIndex, LexicalIndexes, fuse
from knowledge.manifest import Manifest, ManifestRecord, store_key
from knowledge.migration import Embedders
from knowledge.modes import RetrievalMode, retrieval_mode
from knowledge.questions import ChunkQuestions
from knowledge.results import Hit
from knowledge.store import ChromaStore, MissingIndexError

T = TypeVar("T")

# Candidates each side of a hybrid search brings to the fusion.
_FUSION_DEPTH = 50


class Searcher:
    """Searches of a knowledge base's collections. `manifest_of` gives an existing
    collection's manifest file (or raises `UnknownCollectionError`), `questions_of` the
    questions written for its chunks; `hypothesize` writes an answer to a question without
    documents, for the hyde mode."""

    def __init__(
        self,
        store: ChromaStore,
        lexical: LexicalIndexes,
        embedders: Embedders,
        manifest_of: Callable[[str], ManifestRecord],
        questions_of: Callable[[str], ChunkQuestions],
        hypothesize: Callable[[str], str] | None = None,
    ) -> None:
        self.store = store
        self.lexical = lexical
        self.embedders = embedders
        self.manifest_of = manifest_of
        self.questions_of = questions_of
        self.hypothesize = hypothesize

    def search_many(
        self, name: str, queries: Sequence[str], k: int, mode: str
    ) -> Iterator[list[Hit]]:
        """The `k` best hits of each of many queries by `mode`, in order; queries are
        embedded in batches. Refuses at once a mode the collection is not ready for."""
        how = retrieval_mode(mode)
        manifest = self.manifest_of(name).read()
        if how.hypothetical and self.hypothesize is None:
            raise BadInput(f"The {how.name} mode needs a model to write hypothetical answers.")
        if how.questions and not self.questions_of(name).signature():
            raise BadInput(
                f"Collection {name!r} has no questions written yet: make {how.name} its mode "
                f"first (kbot collections --set-mode {name} {how.name}), which writes them."
            )
        if not how.dense:
            lexical = self.lexical_index(name, manifest, how.questions)
            return (lexical.search(query, k) for query in queries)
        return self._nearest(name, manifest, list(queries), k, how)

    def search_vector(self, name: str, vector: Sequence[float], k: int) -> list[Hit]:
        """The `k` chunks nearest to `vector` (made by the collection's embedder)."""

        def nearest(manifest: Manifest, index: str) -> list[Hit]:
            return search.search_vector(self.store, manifest, index, vector, k)

        return self.read(name, nearest)

    def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        """The queries' embeddings by the knowledge base's default embedder."""
        return search.embed_queries(self.embedders.default, queries)

    def read(self, name: str, read: Callable[[Manifest, str], T]) -> T:
        """`read(manifest, index)` on the committed collection, again on the new index should
        the collection move to another embedder while it reads."""
        manifest = self.manifest_of(name).read()
        try:
            return read(manifest, store_key(name, manifest))
        except MissingIndexError:
            manifest = self._after_missing_index(name, manifest)
            return read(manifest, store_key(name, manifest))

    def lexical_index(self, name: str, manifest: Manifest, questions: bool = False) -> LexicalIndex:
        """BM25 over the committed chunks; with `questions`, over each chunk's text and the
        questions written for it."""

        def get(manifest: Manifest) -> LexicalIndex:
            if not questions:
                return self.lexical.get(name, manifest)
            written = self.questions_of(name)
            hashes = {source: entry.hash for source, entry in manifest.sources.items()}
            return self.lexical.get(
                name, manifest, (written.signature(), lambda: written.read(hashes))
            )

        try:
            return get(manifest)
        except MissingIndexError:  # the chunks are the same in the new index
            return get(self._after_missing_index(name, manifest))

    def _nearest(
        self, name: str, manifest: Manifest, queries: list[str], k: int, how: RetrievalMode
    ) -> Iterator[list[Hit]]:
        """The nearest chunks to each query's embedding, fused with keyword hits if `how`
        says so. Should the collection move to another embedder meanwhile, the queries not
        answered yet are embedded again for its new index."""
        depth = max(k, _FUSION_DEPTH) if how.keywords else k
        lexical = self.lexical_index(name, manifest, how.questions) if how.keywords else None
        done = 0
        while done < len(queries):
            embedder, index = self.embedders.of(manifest), store_key(name, manifest)
            left = queries[done:]
            vectors = self._query_vectors(embedder, left, hypothetical=how.hypothetical)
            try:
                for query, vector in zip(left, vectors, strict=True):
                    hits = search.search_vector(self.store, manifest, index, vector, depth)
                    yield _fused(hits, lexical, query, depth, k) if lexical else hits
                    done += 1
            except MissingIndexError:
                manifest = self._after_missing_index(name, manifest)

    def _after_missing_index(self, name: str, manifest: Manifest) -> Manifest:
        """The manifest to read by after `manifest`'s index was found missing: the newer one
        that switched to another index, or the same one once its (never written) index
        exists."""
        fresh = self.manifest_of(name).read(fresh=True)
        if store_key(name, fresh) == store_key(name, manifest):
            self.store.ensure(store_key(name, fresh))
        return fresh

    def _query_vectors(
        self, embedder: Embeddings, queries: Sequence[str], hypothetical: bool = False
    ) -> Iterator[Sequence[float]]:
        """Each query's embedding, a batch at a time; with `hypothetical` (HyDE), the mean
        direction of the query's and of an answer the model wrote for it without documents:
        that answer is worded like the chunks that hold the real one."""
        hypothesize = self.hypothesize if hypothetical else None
        for start in range(0, len(queries), search.QUERY_BATCH):
            batch = list(queries[start : start + search.QUERY_BATCH])
            vectors = np.asarray(search.embed_queries(embedder, batch), dtype=np.float32)
            if hypothesize is not None:
                answers = [hypothesize(query) for query in batch]
                vectors += np.asarray(search.embed_queries(embedder, answers))
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True).clip(min=1e-12)
            yield from vectors.tolist()


def _fused(dense: list[Hit], lexical: LexicalIndex, query: str, depth: int, k: int) -> list[Hit]:
    """Hybrid's `k` best: the dense hits fused with BM25's best `depth` chunks for `query`,
    of which those beyond its matches scored 0."""
    matches = lexical.search(query, depth)
    return fuse(dense, matches, k, lexical_zeros=min(depth, len(lexical.chunks)) - len(matches))
