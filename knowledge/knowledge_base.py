"""Knowledge collections under one folder: create, list, delete, inspect them, and the entry
points to write (`ingest.py`) and search (`search.py`) them."""

from __future__ import annotations

import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from filelock import Timeout
from langchain_core.embeddings import Embeddings

from common.errors import BadInput, NotFound, Refused
from common.files import file_lock, write_atomically
from common.names import validate_name
from knowledge import search
from knowledge.chunking import join_chunks
from knowledge.ingest import CollectionWriter, as_items, chunk_id, version
from knowledge.lexical import LexicalIndex, LexicalIndexes, fuse
from knowledge.loaders import DEFAULT_LIMITS, FileLimits
from knowledge.manifest import Manifest, ManifestFile, store_key
from knowledge.questions import ChunkQuestions, WriteQuestions
from knowledge.results import MODES, Hit, IngestResult, Mode, Progress, UnknownCollectionError
from knowledge.store import ChromaStore, MissingIndexError

T = TypeVar("T")

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
        hypothesize: Callable[[str], str] | None = None,
        write_questions: WriteQuestions | None = None,
        questions_max_chunks: int = 500,
        embedder_name: str = "",
        load_embedder: Callable[[str], Embeddings] | None = None,
    ) -> None:
        self.root = root
        self.embedder = embedder
        # What `embedder` is called (a setting's value), and how to load any other one that a
        # collection has moved to (`change_embedder`).
        self.embedder_name = embedder_name
        self._load_embedder = load_embedder
        self._embedders: dict[str, Embeddings] = {}
        self._embedders_lock = threading.Lock()
        self.default_mode: Mode = default_mode
        # Writes an answer to a question without documents, for the hyde mode.
        self.hypothesize = hypothesize
        # Writes the questions a chunk answers, for the questions mode.
        self.write_questions = write_questions
        self.questions_max_chunks = questions_max_chunks
        self.store = ChromaStore(root / "chroma", embedder)
        self.lexical = LexicalIndexes(root / "collections", self.store)
        self.writer = CollectionWriter(
            self.store, self.embedder_of, chunk_size, chunk_overlap, file_limits, embed_batch_size
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
            if not manifest.exists():  # its vectors will be the default embedder's
                self.store.ensure(name)
                manifest.write(Manifest(embedder=self.embedder_name))

    def delete(self, name: str) -> None:
        manifest = self._existing(name)
        with manifest.locked():
            for index in self.store.indexes(name):
                self.store.drop(index)
            manifest.path.unlink()
        shutil.rmtree(manifest.folder, ignore_errors=True)
        self.lexical.forget(name)

    def mode(self, name: str) -> Mode:
        """Collection `name`'s retrieval mode: its own setting, else the default."""
        chosen = self._existing(name).folder / "mode"
        return _checked_mode(chosen.read_text().strip()) if chosen.is_file() else self.default_mode

    def set_mode(self, name: str, mode: str, progress: Progress | None = None) -> None:
        """Make `mode` the retrieval mode of collection `name` (conversations may override).
        The questions mode first has the model write questions for every chunk (from then
        on, at each ingestion)."""
        manifest = self._existing(name)
        if _checked_mode(mode) == "questions":
            self.add_questions(name, progress)
        write_atomically(manifest.folder / "mode", mode)

    def _questions(self, name: str) -> ChunkQuestions:
        return ChunkQuestions(self._existing(name).folder / "questions")

    def add_questions(self, name: str, progress: Progress | None = None) -> int:
        """Have the model write questions for the chunks of collection `name` that have none
        yet; returns how many chunks it wrote for."""
        if self.write_questions is None:
            raise BadInput("The questions mode needs a model to write questions.")
        chunks = self.chunks_by_source(name)
        written = self._questions(name)
        missing = written.missing(chunks)
        if missing > self.questions_max_chunks:
            raise BadInput(
                f"Writing questions for {missing:,} chunks of {name!r} is more than "
                f"{self.questions_max_chunks:,} at once (setting KBOT_QUESTIONS_MAX_CHUNKS)."
            )
        return written.write_missing(chunks, self.write_questions, progress)

    # Embedders ---------------------------------------------------------------------------

    def embedder_of(self, manifest: Manifest) -> Embeddings:
        """The embedder of a collection's vectors, as its manifest names it."""
        spec = manifest.embedder
        if not spec or spec == self.embedder_name:
            return self.embedder
        with self._embedders_lock:  # each model loads once, however many ask at once
            if spec not in self._embedders:
                if self._load_embedder is None:
                    raise BadInput(f"No way to load the embedder {spec!r} here.")
                self._embedders[spec] = self._load_embedder(spec)
            return self._embedders[spec]

    def embedder_name_of(self, name: str) -> str:
        return self._committed(name).embedder or self.embedder_name

    def change_embedder(
        self, name: str, spec: str, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Move collection `name` to embedding model `spec` without stopping it: a new index
        is built from the stored chunks while searches keep using the old one; chunks
        written meanwhile are caught up under the collection's lock, and one manifest commit
        switches to the new index, after which the old one is dropped. A failure or a kill
        before that commit leaves the old index serving (the half-built one is dropped by
        the next change)."""
        manifest_file = self._existing(name)
        changing = file_lock(manifest_file.folder / ".embedder.lock")
        try:
            changing.acquire(timeout=0)
        except Timeout:
            raise Refused(f"Collection {name!r} is already changing embedder.") from None
        try:
            return self._change_embedder(name, manifest_file, spec, progress)
        finally:
            changing.release()

    def _change_embedder(
        self, name: str, manifest_file: ManifestFile, spec: str, progress: Progress | None
    ) -> dict[str, Any]:
        started = time.perf_counter()
        before = manifest_file.read(fresh=True)
        if (before.embedder or self.embedder_name) == spec:
            return {"collection": name, "embedder": spec, "chunks": 0, "changed": False}
        embedder = self.embedder_of(Manifest(embedder=spec))  # loads it, or fails clearly
        current = store_key(name, before)
        for leftover in set(self.store.indexes(name)) - {current}:
            self.store.drop(leftover)
        target = Manifest(embedder=spec, index=uuid.uuid4().hex[:8])
        new_index = store_key(name, target)
        copied = self._copy_versions(current, new_index, _versions(before), embedder, progress)
        with manifest_file.locked():
            now = manifest_file.read(fresh=True)
            if store_key(name, now) != current:
                self.store.drop(new_index)
                raise Refused(f"Collection {name!r} changed embedder meanwhile; try again.")
            for source, file_hash in _versions(before) - _versions(now):
                self.store.delete(new_index, version(source, file_hash))
            copied += self._copy_versions(
                current, new_index, _versions(now) - _versions(before), embedder
            )
            now.embedder, now.index = target.embedder, target.index
            manifest_file.write(now)  # the switch
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

    def _copy_versions(
        self,
        source_index: str,
        target_index: str,
        versions: set[tuple[str, str]],
        embedder: Embeddings,
        progress: Progress | None = None,
    ) -> int:
        """Embed the chunks of `versions` in `source_index` again with `embedder` into
        `target_index`, under the same ids, several sources a batch; returns how many."""
        copied, batch = 0, []
        ordered = sorted(versions)
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

    def documents(self, name: str) -> list[dict[str, Any]]:
        manifest = self._committed(name)
        return [{"source": s, **asdict(e)} for s, e in sorted(manifest.sources.items())]

    def stats(self, name: str) -> dict[str, Any]:
        """What collection `name` costs: its documents, chunks, the bytes of its index
        (float32 vectors plus chunk text, as stored) and the time spent ingesting it."""
        manifest = self._committed(name)
        footprint = self._read(name, lambda _, index: self.store.footprint(index))
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
        grouped = self.chunks_by_source(name)
        return [(source, text) for source, (_, texts) in grouped.items() for text in texts]

    def chunks_by_source(self, name: str) -> dict[str, tuple[str, list[str]]]:
        """Each committed source's content hash and chunks in reading order, by source."""
        manifest = self._committed(name)
        grouped: dict[str, list[tuple[int, str]]] = {}
        for text, meta in self._read(name, lambda _, index: self.store.chunks(index)):
            if manifest.committed_hash(meta["source"]) == meta.get("file_hash"):
                grouped.setdefault(meta["source"], []).append((meta["chunk_index"], text))
        return {
            source: (manifest.sources[source].hash, [text for _, text in sorted(pieces)])
            for source, pieces in sorted(grouped.items())
        }

    def stored_source(self, name: str, source: str, paths: bool = True) -> str:
        """`source` as collection `name` stores it (see `Manifest.source_key`)."""
        manifest = self._committed(name)
        key = manifest.source_key(source, paths)
        if key is None:
            named = sum(Path(stored).name == source for stored in manifest.sources)
            if named:
                raise NotFound(
                    f"{named} documents of collection {name!r} are named {source!r}: give the "
                    "one meant by its path, as stored."
                )
            raise NotFound(f"{source!r} is not in collection {name!r}.")
        return key

    def folder(self, name: str) -> Path:
        """Collection `name`'s own folder, for what is derived from it (deleted with it)."""
        return self._existing(name).folder

    def source_texts(self, name: str) -> list[str]:
        """Each committed source's text, rebuilt from its chunks in reading order."""
        return [join_chunks(texts) for _, texts in self.chunks_by_source(name).values()]

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
        result = self.writer.ingest(name, manifest_file, as_items(files), progress)
        if result.chunks_added and self.mode(name) == "questions":
            try:
                self.add_questions(name, progress)
            except ValueError as error:  # the chunks are in; they are searched by their text
                result.errors.append({"path": "", "error": f"No questions written: {error}"})
        return result

    def forget(self, name: str, source: str) -> int:
        """Remove `source` (see `Manifest.source_key`) from collection `name`; returns the
        number of chunks removed."""
        return self.writer.forget(name, self._existing(name), source)

    # Reading -----------------------------------------------------------------------------

    def search(self, name: str, query: str, k: int, mode: str | None = None) -> list[Hit]:
        """The `k` chunks of collection `name` that best match `query`, best first, by `mode`
        (None: the collection's own; see `MODES`)."""
        return next(self.search_many(name, [query], k, mode))

    def search_vector(self, name: str, vector: Sequence[float], k: int) -> list[Hit]:
        """The `k` chunks nearest to `vector` (made by the collection's embedder)."""

        def nearest(manifest: Manifest, index: str) -> list[Hit]:
            return search.search_vector(self.store, manifest, index, vector, k)

        return self._read(name, nearest)

    def search_many(
        self, name: str, queries: Sequence[str], k: int, mode: str | None = None
    ) -> Iterator[list[Hit]]:
        """The hits of each of many queries, in order; queries are embedded in batches."""
        mode = _checked_mode(mode) if mode else self.mode(name)
        manifest = self._committed(name)
        if mode == "hyde" and self.hypothesize is None:
            raise BadInput("The hyde mode needs a model to write hypothetical answers.")
        if mode == "questions" and not self._questions(name).signature():
            raise BadInput(
                f"Collection {name!r} has no questions written yet: make questions its mode "
                f"first (kbot collections --set-mode {name} questions), which writes them."
            )
        if mode == "bm25":
            lexical = self._lexical(name, manifest)
            return (lexical.search(query, k) for query in queries)
        return self._nearest(name, manifest, list(queries), k, mode)

    def _nearest(
        self, name: str, manifest: Manifest, queries: list[str], k: int, mode: Mode
    ) -> Iterator[list[Hit]]:
        """Dense, hybrid or hyde hits of each query. Should the collection move to another
        embedder meanwhile, the queries not answered yet are embedded again for its new
        index."""
        fused = mode in ("hybrid", "questions")
        depth = max(k, _FUSION_DEPTH) if fused else k
        lexical = self._lexical(name, manifest, mode == "questions") if fused else None
        done = 0
        while done < len(queries):
            embedder, index = self.embedder_of(manifest), store_key(name, manifest)
            left = queries[done:]
            vectors = self._query_vectors(embedder, left, hypothetical=mode == "hyde")
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
        fresh = self._existing(name).read(fresh=True)
        if store_key(name, fresh) == store_key(name, manifest):
            self.store.ensure(store_key(name, fresh))
        return fresh

    def _read(self, name: str, read: Callable[[Manifest, str], T]) -> T:
        """`read(manifest, index)` on the committed collection, again on the new index should
        the collection move to another embedder while it reads."""
        manifest = self._committed(name)
        try:
            return read(manifest, store_key(name, manifest))
        except MissingIndexError:
            manifest = self._after_missing_index(name, manifest)
            return read(manifest, store_key(name, manifest))

    def _lexical(self, name: str, manifest: Manifest, questions: bool = False) -> LexicalIndex:
        """BM25 over the committed chunks; with `questions`, over each chunk's text and the
        questions written for it."""

        def get(manifest: Manifest) -> LexicalIndex:
            if not questions:
                return self.lexical.get(name, manifest)
            written = self._questions(name)
            hashes = {source: entry.hash for source, entry in manifest.sources.items()}
            return self.lexical.get(
                name, manifest, (written.signature(), lambda: written.read(hashes))
            )

        try:
            return get(manifest)
        except MissingIndexError:  # the chunks are the same in the new index
            return get(self._after_missing_index(name, manifest))

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

    def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        return search.embed_queries(self.embedder, queries)


def _versions(manifest: Manifest) -> set[tuple[str, str]]:
    return {(source, entry.hash) for source, entry in manifest.sources.items()}


def _checked_mode(mode: str) -> Mode:
    if mode not in MODES:
        raise BadInput(f"Unknown retrieval mode {mode!r}: use one of {', '.join(MODES)}.")
    return next(known for known in MODES if known == mode)


def _fused(dense: list[Hit], lexical: LexicalIndex, query: str, depth: int, k: int) -> list[Hit]:
    """Hybrid's `k` best: the dense hits fused with BM25's best `depth` chunks for `query`,
    of which those beyond its matches scored 0."""
    matches = lexical.search(query, depth)
    return fuse(dense, matches, k, lexical_zeros=min(depth, len(lexical.chunks)) - len(matches))
