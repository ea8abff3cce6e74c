"""Nearest chunks of a collection to a vector. Only chunks of committed versions count (see
`manifest.py`): a crash can leave others in the store until the next write sweeps them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.embeddings import Embeddings

from knowledge.manifest import Manifest
from knowledge.results import Hit
from knowledge.store import ChromaStore

# Extra chunks fetched per search, to make up for uncommitted ones that are skipped.
_OVERFETCH = 8
# Queries embedded together: thousands of queries run in one process, a batch at a time.
QUERY_BATCH = 256


def location_of(metadata: dict[str, Any]) -> str:
    if "page" in metadata:
        return f"page {metadata['page']}"
    if "row" in metadata:
        return f"row {metadata['row']}"
    return str(metadata.get("section", ""))


def hit_of(text: str, metadata: dict[str, Any], score: float) -> Hit:
    """A search hit from a stored chunk's text and metadata."""
    return Hit(
        source=metadata["source"],
        text=text,
        score=round(float(score), 4),
        location=location_of(metadata),
        chunk_index=int(metadata.get("chunk_index", 0)),
    )


def embed_queries(embedder: Embeddings, queries: Sequence[str]) -> list[list[float]]:
    # Same model, same normalization as the documents; MiniLM takes no query prefix.
    return embedder.embed_documents(list(queries))


def search_vector(
    store: ChromaStore, manifest: Manifest, name: str, vector: Sequence[float], k: int
) -> list[Hit]:
    """The `k` committed chunks of collection `name` nearest to `vector`, best first."""
    if not manifest.sources:
        return []
    found = store.search(name, vector, k + _OVERFETCH)
    hits = [
        hit_of(c.text, c.metadata, c.score)
        for c in found
        if manifest.committed_hash(c.metadata["source"]) == c.metadata.get("file_hash")
    ]
    return hits[:k]
