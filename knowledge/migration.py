"""Each collection's embedding model, and moving a collection to another one while it keeps
answering."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from filelock import Timeout
from langchain_core.embeddings import Embeddings

from common.errors import BadInput, Refused
from knowledge.ingest import CollectionWriter, chunk_id, version
from knowledge.manifest import Manifest, ManifestRecord, store_key
from knowledge.results import Progress
from knowledge.store import ChromaStore


class Embedders:
    """The embedding models of a knowledge base's collections: the default one, called
    `default_name` (a setting's value), and any other a collection has moved to, loaded once
    each by `load`."""

    def __init__(
        self,
        default: Embeddings,
        default_name: str = "",
        load: Callable[[str], Embeddings] | None = None,
    ) -> None:
        self.default = default
        self.default_name = default_name
        self._load = load
        self._loaded: dict[str, Embeddings] = {}
        self._lock = threading.Lock()

    def of(self, manifest: Manifest) -> Embeddings:
        """The embedder of a collection's vectors, as its manifest names it."""
        spec = manifest.embedder
        if not spec or spec == self.default_name:
            return self.default
        with self._lock:  # each model loads once, however many ask at once
            if spec not in self._loaded:
                if self._load is None:
                    raise BadInput(f"No way to load the embedder {spec!r} here.")
                self._loaded[spec] = self._load(spec)
            return self._loaded[spec]

    def name_of(self, manifest: Manifest) -> str:
        return manifest.embedder or self.default_name


class EmbedderChange:
    """Moving collections to another embedding model without stopping them: a new index is
    built from the stored chunks while searches keep using the old one; chunks written
    meanwhile are caught up under the collection's lock, and one manifest commit switches to
    the new index, after which the old one is dropped. A failure or a kill before that commit
    leaves the old index serving (the half-built one is dropped by the next change)."""

    def __init__(self, store: ChromaStore, writer: CollectionWriter, embedders: Embedders) -> None:
        self.store = store
        self.writer = writer
        self.embedders = embedders

    def run(
        self,
        name: str,
        manifest_record: ManifestRecord,
        spec: str,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """Move collection `name` (its manifest `manifest_record`) to embedder `spec`; one
        change at a time per collection."""
        changing = manifest_record.folder.embedder_locked()
        try:
            changing.acquire(timeout=0)
        except Timeout:
            raise Refused(f"Collection {name!r} is already changing embedder.") from None
        try:
            return self._change(name, manifest_record, spec, progress)
        finally:
            changing.release()

    def _change(
        self, name: str, manifest_record: ManifestRecord, spec: str, progress: Progress | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        before = manifest_record.read(fresh=True)
        if self.embedders.name_of(before) == spec:
            return {"collection": name, "embedder": spec, "chunks": 0, "changed": False}
        embedder = self.embedders.of(Manifest(embedder=spec))  # loads it, or fails clearly
        current = store_key(name, before)
        for leftover in set(self.store.indexes(name)) - {current}:
            self.store.drop(leftover)
        target = Manifest(embedder=spec, index=uuid.uuid4().hex[:8])
        new_index = store_key(name, target)
        copied = self._copy(current, new_index, versions(before), embedder, progress)
        with manifest_record.locked():
            now = manifest_record.read(fresh=True)
            if store_key(name, now) != current:
                self.store.drop(new_index)
                raise Refused(f"Collection {name!r} changed embedder meanwhile; try again.")
            for source, file_hash in versions(before) - versions(now):
                self.store.delete(new_index, version(source, file_hash))
            copied += self._copy(current, new_index, versions(now) - versions(before), embedder)
            now.embedder, now.index = target.embedder, target.index
            manifest_record.write(now)  # the switch
        self.store.drop(current)
        if progress:
            progress(1.0, "switched")
        return {
            "collection": name,
            "embedder": spec,
            "chunks": copied,
            "changed": True,
            "seconds": round(time.perf_counter() - started, 2),
        }

    def _copy(
        self,
        source_index: str,
        target_index: str,
        chosen: set[tuple[str, str]],
        embedder: Embeddings,
        progress: Progress | None = None,
    ) -> int:
        """Embed the chunks of the `chosen` versions in `source_index` again with `embedder`
        into `target_index`, under the same ids, several sources a batch; returns how many."""
        copied, batch = 0, []
        ordered = sorted(chosen)
        for number, (source, file_hash) in enumerate(ordered, start=1):
            batch += self.store.chunks(source_index, version(source, file_hash))
            if len(batch) < 4 * self.writer.embed_batch_size and number < len(ordered):
                continue
            texts = [text for text, _ in batch]
            vectors = self.writer.embed(embedder, texts)
            ids = [chunk_id(m["source"], m["file_hash"], m["chunk_index"]) for _, m in batch]
            if ids:
                self.store.upsert(target_index, ids, vectors, texts, [m for _, m in batch])
            copied, batch = copied + len(ids), []
            if progress:
                progress(number / (len(ordered) + 1), f"embedded {copied} chunks")
        return copied


def versions(manifest: Manifest) -> set[tuple[str, str]]:
    """The (source, content hash) of each document version a manifest commits."""
    return {(source, entry.hash) for source, entry in manifest.sources.items()}
