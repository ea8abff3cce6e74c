"""Writing a collection: add new and changed files, forget sources, as transactions that a
crash or a kill cannot leave half done (the manifest is the commit point, see `manifest.py`)."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from common.errors import KbotError, NotFound
from common.text import one_line
from knowledge.chunking import chunk_documents
from knowledge.loaders import (
    DEFAULT_LIMITS,
    FileLimits,
    LoadError,
    file_kind,
    load_file,
    read_checked,
)
from knowledge.manifest import Manifest, ManifestRecord, SourceEntry, store_key
from knowledge.results import IngestResult, Progress
from knowledge.store import ChromaStore, MissingIndexError

log = logging.getLogger(__name__)


def chunk_id(source: str, file_hash: str, index: int) -> str:
    return hashlib.sha256(f"{source}\0{file_hash}\0{index}".encode()).hexdigest()[:32]


def version(source: str, file_hash: str) -> dict[str, Any]:
    """Chroma's filter for the chunks of one version of one source."""
    return {"$and": [{"source": source}, {"file_hash": file_hash}]}


@dataclass
class _Prepared:
    """A new or changed file, chunked, waiting for its new chunks' vectors."""

    path: Path
    source: str
    file_hash: str
    size: int
    chunks: list[Document]
    todo: list[Document]
    known: dict[str, list[float]]


@dataclass
class CollectionWriter:
    """How files become stored chunks: the chunking rules, the limits and each collection's
    embedder (`embedder_of` its manifest)."""

    store: ChromaStore
    embedder_of: Callable[[Manifest], Embeddings]
    chunk_size: int = 1000
    chunk_overlap: int = 150
    file_limits: FileLimits = DEFAULT_LIMITS
    embed_batch_size: int = 32

    def sweep(self, name: str, manifest: Manifest) -> None:
        """Delete chunks of versions that were never committed or were replaced (a crash
        between the steps of an earlier write leaves such chunks behind)."""
        for source, file_hash in manifest.pending + manifest.stale:
            if manifest.committed_hash(source) != file_hash:
                self.store.delete(store_key(name, manifest), version(source, file_hash))
        manifest.pending, manifest.stale = [], []

    def ingest(
        self,
        name: str,
        manifest_record: ManifestRecord,
        items: Sequence[tuple[Path, str]],
        progress: Progress | None = None,
    ) -> IngestResult:
        """Add new and changed files, given as (path, source name), to collection `name`. A
        file that fails leaves its earlier version in place and is reported in `errors`.

        Files are read and chunked one by one, but their new chunks are embedded together in
        full batches (many small files would otherwise embed a few chunks at a time), then
        committed a batch at a time."""
        started = time.perf_counter()
        result = IngestResult(collection=name)
        waiting: list[_Prepared] = []
        # Vectors are made for the index the collection has now; should its embedder change
        # before they are committed, `_commit` makes them again for the new one.
        at_start = manifest_record.read()
        embedder = self.embedder_of(at_start)

        def fail(path: Path, error: Exception) -> None:
            # A file that cannot be used is the user's to fix; anything else is a bug, kept
            # with its trace in the log while the other files go on.
            if isinstance(error, LoadError):
                message = f"{path.name} {error}"
            elif isinstance(error, KbotError):
                message = f"{path.name}: {error}"
            else:
                log.error("Ingesting %s failed", path.name, exc_info=error)
                reason = f"{type(error).__name__}: {one_line(str(error))}"
                message = f"{path.name}: not stored: {reason} (an internal error, logged)"
            result.errors.append({"path": str(path), "error": message})

        def embed_and_commit(done: int) -> None:
            texts = [c.page_content for p in waiting for c in p.todo]
            try:
                vectors = iter(self.embed(embedder, texts))
            except Exception as error:  # the whole batch failed: none of its files changed
                for prepared in waiting:
                    fail(prepared.path, error)
                waiting.clear()
                return
            for prepared in waiting:
                for chunk in prepared.todo:
                    prepared.known[chunk.metadata["chunk_hash"]] = next(vectors)
            try:
                self._commit(name, manifest_record, waiting, result, store_key(name, at_start))
            except Exception as error:  # the store refused the batch: none of it committed
                for prepared in waiting:
                    fail(prepared.path, error)
            waiting.clear()
            if progress:
                progress(done / max(len(items), 1), f"stored {done} of {len(items)} files")

        for number, (path, source) in enumerate(items, start=1):
            try:
                prepared = self._prepare(name, manifest_record, path, source, at_start)
            except Exception as error:
                fail(path, error)
                continue
            if isinstance(prepared, int):  # unchanged: its chunks stay as they are
                result.chunks_unchanged += prepared
                result.files += 1
            else:
                waiting.append(prepared)
            if progress:
                progress((number - 0.5) / len(items), f"reading {path.name}")
            if sum(len(p.todo) for p in waiting) >= 4 * self.embed_batch_size:
                embed_and_commit(number)
        embed_and_commit(len(items))
        if result.chunks_added or result.chunks_removed:
            self._add_ingest_time(manifest_record, time.perf_counter() - started)
        return result

    def _add_ingest_time(self, manifest_record: ManifestRecord, seconds: float) -> None:
        with manifest_record.locked():
            manifest = manifest_record.read(fresh=True)
            manifest.ingest_seconds += seconds
            manifest_record.write(manifest)

    def embed(self, embedder: Embeddings, texts: Sequence[str]) -> list:
        vectors: list = []
        for start in range(0, len(texts), self.embed_batch_size):
            batch = list(texts[start : start + self.embed_batch_size])
            vectors += embedder.embed_documents(batch)
        return vectors

    def _prepare(
        self,
        name: str,
        manifest_record: ManifestRecord,
        path: Path,
        source: str,
        at_start: Manifest,
    ) -> _Prepared | int:
        """A file read and chunked, with the vectors of its unchanged chunks; or, when the
        file is unchanged, the number of its chunks."""
        data = read_checked(path, self.file_limits)
        file_hash = hashlib.sha256(data).hexdigest()
        old = manifest_record.read().sources.get(source)
        if old and old.hash == file_hash:
            return old.chunks
        chunks = chunk_documents(
            load_file(path, data), file_kind(path), self.chunk_size, self.chunk_overlap
        )
        # Chunks that did not change keep their vectors: only new text is embedded.
        known = {}
        if old:
            with contextlib.suppress(MissingIndexError):  # moved to another embedder: embed all
                known = self.store.vectors(store_key(name, at_start), version(source, old.hash))
        todo = [c for c in chunks if c.metadata["chunk_hash"] not in known]
        return _Prepared(path, source, file_hash, len(data), chunks, todo, known)

    def _commit(
        self,
        name: str,
        manifest_record: ManifestRecord,
        batch: list[_Prepared],
        result: IngestResult,
        embedded_for: str,
    ) -> None:
        """Store a batch of files' new versions in one write to Chroma and one manifest
        commit (a write per file made small files slow); either all of them are committed
        or, after a crash, none, each file keeping its previous version. The vectors were
        made for index `embedded_for`: if the collection has moved to another embedder since,
        they are made again with it, so an index never holds two models' vectors."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with manifest_record.locked():
            manifest = manifest_record.read(fresh=True)
            target = store_key(name, manifest)
            if target != embedded_for:
                embedder = self.embedder_of(manifest)
                for prepared in batch:
                    texts = [c.page_content for c in prepared.chunks]
                    vectors = self.embed(embedder, texts)
                    prepared.known = {
                        c.metadata["chunk_hash"]: v
                        for c, v in zip(prepared.chunks, vectors, strict=True)
                    }
            self.sweep(name, manifest)
            replacing: list[tuple[_Prepared, SourceEntry | None]] = []
            for prepared in batch:
                current = manifest.sources.get(prepared.source)
                if current and current.hash == prepared.file_hash:  # another writer did it
                    result.chunks_unchanged += current.chunks
                    result.files += 1
                else:
                    replacing.append((prepared, current))
            manifest.pending += [(p.source, p.file_hash) for p, _ in replacing]
            manifest_record.write(manifest)
            ids, vectors, texts, metadatas = [], [], [], []
            for prepared, _ in replacing:
                for index, chunk in enumerate(prepared.chunks):
                    ids.append(chunk_id(prepared.source, prepared.file_hash, index))
                    vectors.append(prepared.known[chunk.metadata["chunk_hash"]])
                    texts.append(chunk.page_content)
                    metadatas.append(
                        {
                            **chunk.metadata,
                            "source": prepared.source,
                            "file_hash": prepared.file_hash,
                            "ingested_at": now,
                        }
                    )
            if ids:
                self.store.upsert(target, ids, vectors, texts, metadatas)
            for prepared, current in replacing:
                manifest.pending.remove((prepared.source, prepared.file_hash))
                manifest.sources[prepared.source] = SourceEntry(
                    prepared.file_hash, len(prepared.chunks), prepared.size, now
                )
                if current:
                    manifest.stale.append((prepared.source, current.hash))
            manifest_record.write(manifest)  # the commit point
            for prepared, current in replacing:
                # Stale entries stay listed until the next write sweeps them (a no-op then).
                if current:
                    self.store.delete(target, version(prepared.source, current.hash))
        for prepared, current in replacing:
            result.files += 1
            result.chunks_added += len(prepared.chunks)
            result.chunks_removed += current.chunks if current else 0

    def forget(self, name: str, manifest_record: ManifestRecord, source: str) -> int:
        """Remove `source` (see `Manifest.source_key`) from collection `name`; returns the
        number of chunks removed."""
        with manifest_record.locked():
            manifest = manifest_record.read(fresh=True)
            self.sweep(name, manifest)
            key = manifest.source_key(source)
            entry = manifest.sources.pop(key, None) if key else None
            if key is None or entry is None:
                manifest_record.write(manifest)
                raise NotFound(f"{source!r} is not in collection {name!r}.")
            manifest.stale.append((key, entry.hash))
            manifest_record.write(manifest)
            self.store.delete(store_key(name, manifest), version(key, entry.hash))
            manifest.stale.clear()
            manifest_record.write(manifest)
        return entry.chunks


def as_items(files: Iterable[Path | tuple[Path, str]]) -> list[tuple[Path, str]]:
    """Files as (path, source name): a bare path is stored under its absolute path."""
    return [f if isinstance(f, tuple) else (f, str(f.resolve())) for f in files]
