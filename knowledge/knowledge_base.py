"""Knowledge collections under one folder: create, list, delete, inspect them, and the entry
points to write (`ingest.py`) and search (`search.py`) them."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from common.files import write_atomically
from common.names import validate_name
from knowledge import search
from knowledge.ingest import CollectionWriter, as_items
from knowledge.lexical import LexicalIndexes, fuse
from knowledge.loaders import DEFAULT_LIMITS, FileLimits
from knowledge.manifest import Manifest, ManifestFile
from knowledge.results import MODES, Hit, IngestResult, Mode, Progress, UnknownCollectionError
from knowledge.store import ChromaStore

# Candidates each side of a hybrid search brings to the fusion.
_FUSION_DEPTH = 50


class KnowledgeBase:
    def __init__(
        self,
        root: Path,
        embedder: Embeddings,
        *,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        file_limits: FileLimits = DEFAULT_LIMITS,
        embed_batch_size: int = 32,
        default_mode: Mode = "dense",
    ) -> None:
        self.root = root
        self.embedder = embedder
        self.default_mode = default_mode
        self.store = ChromaStore(root / "chroma", embedder)
        self.lexical = LexicalIndexes(root / "collections", self.store)
        self.writer = CollectionWriter(
            self.store, embedder, chunk_size, chunk_overlap, file_limits, embed_batch_size
        )
        self._manifests: dict[str, ManifestFile] = {}

    # Collections -------------------------------------------------------------------------

    def _manifest(self, name: str) -> ManifestFile:
        # One object per collection, so its read cache lives as long as this knowledge base.
        if name not in self._manifests:
            self._manifests[name] = ManifestFile(self.root / "collections" / validate_name(name))
        return self._manifests[name]

    def _existing(self, name: str) -> ManifestFile:
        manifest = self._manifest(name)
        if not manifest.exists():
            known = ", ".join(self.collections()) or "none yet"
            raise UnknownCollectionError(
                f"Unknown collection {name!r}. Existing: {known}. "
                "Create one by ingesting files into it."
            )
        return manifest

    def _committed(self, name: str) -> Manifest:
        return self._existing(name).read()

    def collections(self) -> list[str]:
        folder = self.root / "collections"
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if (p / "manifest.json").exists())

    def create(self, name: str) -> None:
        manifest = self._manifest(name)
        with manifest.locked():
            if not manifest.exists():
                manifest.write(Manifest())

    def delete(self, name: str) -> None:
        manifest = self._existing(name)
        with manifest.locked():
            self.store.drop(name)
            manifest.path.unlink()
        shutil.rmtree(manifest.folder, ignore_errors=True)
        self.lexical.forget(name)

    def mode(self, name: str) -> Mode:
        """Collection `name`'s retrieval mode: its own setting, else the default."""
        chosen = self._existing(name).folder / "mode"
        return _checked_mode(chosen.read_text().strip()) if chosen.is_file() else self.default_mode

    def set_mode(self, name: str, mode: str) -> None:
        """Make `mode` the retrieval mode of collection `name` (conversations may override)."""
        manifest = self._existing(name)
        write_atomically(manifest.folder / "mode", _checked_mode(mode))

    def documents(self, name: str) -> list[dict[str, Any]]:
        manifest = self._committed(name)
        return [{"source": s, **asdict(e)} for s, e in sorted(manifest.sources.items())]

    def stats(self, name: str) -> dict[str, Any]:
        """What collection `name` costs: its documents, chunks, the bytes of its index
        (float32 vectors plus chunk text, as stored) and the time spent ingesting it."""
        manifest = self._committed(name)
        footprint = self.store.footprint(name)
        return {
            "documents": len(manifest.sources),
            "chunks": sum(entry.chunks for entry in manifest.sources.values()),
            "source_bytes": sum(entry.bytes for entry in manifest.sources.values()),
            "index_bytes": footprint["vector_bytes"] + footprint["text_bytes"],
            "ingest_seconds": round(manifest.ingest_seconds, 2),
        }

    def chunks(self, name: str) -> list[tuple[str, str]]:
        """Every committed chunk as (source, text), sources in name order, chunks in reading
        order."""
        manifest = self._committed(name)
        ordered = sorted(
            (meta["source"], meta["chunk_index"], text)
            for text, meta in self.store.chunks(name)
            if manifest.committed_hash(meta["source"]) == meta.get("file_hash")
        )
        return [(source, text) for source, _, text in ordered]

    def source_texts(self, name: str) -> list[str]:
        """Each committed source's text, rebuilt from its chunks in reading order (chunk
        overlaps repeat a little text; harmless for training on it)."""
        by_source: dict[str, list[str]] = {}
        for source, text in self.chunks(name):
            by_source.setdefault(source, []).append(text)
        return ["\n\n".join(texts) for texts in by_source.values()]

    # Writing -----------------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        files: Iterable[Path | tuple[Path, str]],
        progress: Progress | None = None,
    ) -> IngestResult:
        """Add new and changed files to collection `name` (created if needed). Files are
        paths (stored under their absolute path) or (path, source name) pairs."""
        manifest_file = self._manifest(name)
        self.create(name)
        return self.writer.ingest(name, manifest_file, as_items(files), progress)

    def forget(self, name: str, source: str) -> int:
        """Remove `source` (as stored, or a path to it) from collection `name`; returns the
        number of chunks removed."""
        return self.writer.forget(name, self._existing(name), source)

    # Reading -----------------------------------------------------------------------------

    def search(self, name: str, query: str, k: int, mode: str | None = None) -> list[Hit]:
        """The `k` chunks of collection `name` that best match `query`, best first, by `mode`
        (None: the collection's own): nearest embeddings (dense), BM25, or both fused."""
        mode = _checked_mode(mode) if mode else self.mode(name)
        if mode == "dense":
            return self.search_vector(name, self.embedder.embed_query(query), k)
        lexical = self.lexical.get(name, self._committed(name)).search
        if mode == "bm25":
            return lexical(query, k)
        depth = max(k, _FUSION_DEPTH)
        dense = self.search_vector(name, self.embedder.embed_query(query), depth)
        return fuse([dense, lexical(query, depth)], k)

    def search_vector(self, name: str, vector: Sequence[float], k: int) -> list[Hit]:
        return search.search_vector(self.store, self._committed(name), name, vector, k)

    def search_many(
        self, name: str, queries: Sequence[str], k: int, mode: str | None = None
    ) -> Iterator[list[Hit]]:
        """The hits of each of many queries, in order; queries are embedded in batches."""
        mode = _checked_mode(mode) if mode else self.mode(name)
        manifest = self._committed(name)
        if mode == "dense":
            return search.search_many(self.store, self.embedder, manifest, name, queries, k)
        lexical = self.lexical.get(name, manifest)
        if mode == "bm25":
            return (lexical.search(query, k) for query in queries)
        depth = max(k, _FUSION_DEPTH)
        dense = search.search_many(self.store, self.embedder, manifest, name, queries, depth)
        return (
            fuse([hits, lexical.search(query, depth)], k)
            for query, hits in zip(queries, dense, strict=True)
        )

    def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        return search.embed_queries(self.embedder, queries)


def _checked_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise ValueError(f"Unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}.")
    return mode  # type: ignore[return-value]
