"""Knowledge collections: ingest files incrementally, forget them, search them."""

from __future__ import annotations

import hashlib
import shutil
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings

from bot.names import validate_name
from knowledge.chunking import chunk_documents
from knowledge.loaders import LOADERS, LoadError, file_kind, load_file, read_checked
from knowledge.manifest import Manifest, ManifestFile, SourceEntry
from knowledge.store import ChromaStore

Progress = Callable[[float, str], None]


class UnknownCollectionError(LookupError):
    pass


@dataclass
class IngestResult:
    collection: str
    files: int = 0
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Hit:
    source: str
    text: str
    score: float
    location: str = ""
    chunk_index: int = 0

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source, "text": self.text, "score": self.score}
        if self.location:
            data["location"] = self.location
        return data


def _location(metadata: dict[str, Any]) -> str:
    if "page" in metadata:
        return f"page {metadata['page']}"
    if "row" in metadata:
        return f"row {metadata['row']}"
    return str(metadata.get("section", ""))


def _chunk_id(source: str, file_hash: str, index: int) -> str:
    return hashlib.sha256(f"{source}\0{file_hash}\0{index}".encode()).hexdigest()[:32]


def _version(source: str, file_hash: str) -> dict[str, Any]:
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


def expand_paths(paths: Iterable[Path]) -> list[Path]:
    """Files named, plus the supported files under folders named (hidden ones skipped)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.is_file()
                and file_kind(p) in LOADERS
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
        else:
            files.append(path)
    return files


class KnowledgeBase:
    def __init__(
        self,
        root: Path,
        embedder: Embeddings,
        *,
        chunk_size: int = 1000,
        chunk_overlap: int = 150,
        max_file_bytes: int = 50_000_000,
        embed_batch_size: int = 32,
    ) -> None:
        self.root = root
        self.embedder = embedder
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.max_file_bytes = max_file_bytes
        self.embed_batch_size = embed_batch_size
        self.store = ChromaStore(root / "chroma", embedder)
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
            (manifest.path).unlink()
        shutil.rmtree(manifest.folder, ignore_errors=True)

    def documents(self, name: str) -> list[dict[str, Any]]:
        manifest = self._existing(name).read()
        return [{"source": s, **asdict(e)} for s, e in sorted(manifest.sources.items())]

    # Writing -----------------------------------------------------------------------------

    def _sweep(self, name: str, manifest: Manifest) -> None:
        """Delete chunks of versions that were never committed or were replaced (a crash
        between the steps of an earlier write leaves such chunks behind)."""
        for source, file_hash in manifest.pending + manifest.stale:
            if manifest.committed_hash(source) != file_hash:
                self.store.delete(name, _version(source, file_hash))
        manifest.pending, manifest.stale = [], []

    def ingest(
        self,
        name: str,
        files: Iterable[Path | tuple[Path, str]],
        progress: Progress | None = None,
    ) -> IngestResult:
        """Add new and changed files to collection `name` (created if needed). A file that
        fails leaves its earlier version in place and is reported in `errors`.

        Files are read and chunked one by one, but their new chunks are embedded together in
        full batches (many small files would otherwise embed a few chunks at a time), then
        each file is committed on its own."""
        started = time.perf_counter()
        manifest_file = self._manifest(name)
        self.create(name)
        result = IngestResult(collection=name)
        items = [f if isinstance(f, tuple) else (f, str(f.resolve())) for f in files]
        waiting: list[_Prepared] = []

        def fail(path: Path, error: Exception) -> None:
            message = (
                f"{path.name} {error}"
                if isinstance(error, LoadError)
                else (f"{path.name}: {type(error).__name__}: {error}")
            )
            result.errors.append({"path": str(path), "error": message})

        def embed_and_commit(done: int) -> None:
            texts = [c.page_content for p in waiting for c in p.todo]
            try:
                vectors = iter(self._embed(texts))
            except Exception as error:  # the whole batch failed: none of its files changed
                for prepared in waiting:
                    fail(prepared.path, error)
                waiting.clear()
                return
            for prepared in waiting:
                for chunk in prepared.todo:
                    prepared.known[chunk.metadata["chunk_hash"]] = next(vectors)
            try:
                self._commit(name, manifest_file, waiting, result)
            except Exception as error:  # the store refused the batch: none of it committed
                for prepared in waiting:
                    fail(prepared.path, error)
            waiting.clear()
            if progress:
                progress(done / max(len(items), 1), f"stored {done} of {len(items)} files")

        for number, (path, source) in enumerate(items, start=1):
            try:
                prepared = self._prepare(name, manifest_file, path, source)
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
            self._add_ingest_time(manifest_file, time.perf_counter() - started)
        return result

    def _add_ingest_time(self, manifest_file: ManifestFile, seconds: float) -> None:
        with manifest_file.locked():
            manifest = manifest_file.read(fresh=True)
            manifest.ingest_seconds += seconds
            manifest_file.write(manifest)

    def _embed(self, texts: Sequence[str]) -> list:
        vectors: list = []
        for start in range(0, len(texts), self.embed_batch_size):
            batch = list(texts[start : start + self.embed_batch_size])
            vectors += self.embedder.embed_documents(batch)
        return vectors

    def _prepare(
        self, name: str, manifest_file: ManifestFile, path: Path, source: str
    ) -> _Prepared | int:
        """A file read and chunked, with the vectors of its unchanged chunks; or, when the
        file is unchanged, the number of its chunks."""
        data = read_checked(path, self.max_file_bytes)
        file_hash = hashlib.sha256(data).hexdigest()
        old = manifest_file.read().sources.get(source)
        if old and old.hash == file_hash:
            return old.chunks
        chunks = chunk_documents(
            load_file(path, data), file_kind(path), self.chunk_size, self.chunk_overlap
        )
        # Chunks that did not change keep their vectors: only new text is embedded.
        known = self.store.vectors(name, _version(source, old.hash)) if old else {}
        todo = [c for c in chunks if c.metadata["chunk_hash"] not in known]
        return _Prepared(path, source, file_hash, len(data), chunks, todo, known)

    def _commit(
        self,
        name: str,
        manifest_file: ManifestFile,
        batch: list[_Prepared],
        result: IngestResult,
    ) -> None:
        """Store a batch of files' new versions in one write to Chroma and one manifest
        commit (a write per file made small files slow); either all of them are committed
        or, after a crash, none, each file keeping its previous version."""
        now = datetime.now(UTC).isoformat(timespec="seconds")
        with manifest_file.locked():
            manifest = manifest_file.read(fresh=True)
            self._sweep(name, manifest)
            replacing: list[tuple[_Prepared, SourceEntry | None]] = []
            for prepared in batch:
                current = manifest.sources.get(prepared.source)
                if current and current.hash == prepared.file_hash:  # another writer did it
                    result.chunks_unchanged += current.chunks
                    result.files += 1
                else:
                    replacing.append((prepared, current))
            manifest.pending += [(p.source, p.file_hash) for p, _ in replacing]
            manifest_file.write(manifest)
            ids, vectors, texts, metadatas = [], [], [], []
            for prepared, _ in replacing:
                for index, chunk in enumerate(prepared.chunks):
                    ids.append(_chunk_id(prepared.source, prepared.file_hash, index))
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
                self.store.upsert(name, ids, vectors, texts, metadatas)
            for prepared, current in replacing:
                manifest.pending.remove((prepared.source, prepared.file_hash))
                manifest.sources[prepared.source] = SourceEntry(
                    prepared.file_hash, len(prepared.chunks), prepared.size, now
                )
                if current:
                    manifest.stale.append((prepared.source, current.hash))
            manifest_file.write(manifest)  # the commit point
            for prepared, current in replacing:
                # Stale entries stay listed until the next write sweeps them (a no-op then).
                if current:
                    self.store.delete(name, _version(prepared.source, current.hash))
        for prepared, current in replacing:
            result.files += 1
            result.chunks_added += len(prepared.chunks)
            result.chunks_removed += current.chunks if current else 0

    def forget(self, name: str, source: str) -> int:
        """Remove `source` (as stored, or a path to it) from collection `name`; returns the
        number of chunks removed."""
        manifest_file = self._existing(name)
        with manifest_file.locked():
            manifest = manifest_file.read(fresh=True)
            self._sweep(name, manifest)
            key = source if source in manifest.sources else str(Path(source).resolve())
            entry = manifest.sources.pop(key, None)
            if entry is None:
                manifest_file.write(manifest)
                raise LookupError(f"{source!r} is not in collection {name!r}.")
            manifest.stale.append((key, entry.hash))
            manifest_file.write(manifest)
            self.store.delete(name, _version(key, entry.hash))
            manifest.stale.clear()
            manifest_file.write(manifest)
        return entry.chunks

    # Reading -----------------------------------------------------------------------------

    def stats(self, name: str) -> dict[str, Any]:
        """What collection `name` costs: its documents, chunks, the bytes of its index
        (float32 vectors plus chunk text, as stored) and the time spent ingesting it."""
        manifest = self._existing(name).read()
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
        manifest = self._existing(name).read()
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

    def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        # Same model, same normalization as the documents; MiniLM takes no query prefix.
        return self.embedder.embed_documents(list(queries))

    def search(self, name: str, query: str, k: int) -> list[Hit]:
        return self.search_vector(name, self.embedder.embed_query(query), k)

    def search_vector(self, name: str, vector: Sequence[float], k: int) -> list[Hit]:
        manifest = self._existing(name).read()
        if not manifest.sources:
            return []
        # Over-fetch a little: chunks of uncommitted versions (after a crash) are skipped.
        found = self.store.search(name, vector, k + 8)
        hits = [
            Hit(
                source=c.metadata["source"],
                text=c.text,
                score=round(float(c.score), 4),
                location=_location(c.metadata),
                chunk_index=int(c.metadata.get("chunk_index", 0)),
            )
            for c in found
            if manifest.committed_hash(c.metadata["source"]) == c.metadata.get("file_hash")
        ]
        return hits[:k]
