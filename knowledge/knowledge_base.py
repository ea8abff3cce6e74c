"""Knowledge collections under one folder: create, list, delete, inspect them, and the entry
points to write (`ingest.py`), search (`searcher.py`, `modes.py`) and move them to another
embedder (`migration.py`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from common.errors import BadInput, NotFound
from common.names import validate_name
from knowledge.chunking import PlacedChunk, join_chunks
from knowledge.ingest import CollectionWriter, as_items
from knowledge.lexical import LexicalIndexes
from knowledge.loaders import DEFAULT_LIMITS, FileLimits
from knowledge.manifest import CollectionFolder, Manifest, ManifestRecord
from knowledge.migration import EmbedderChange, Embedders
from knowledge.modes import Mode, retrieval_mode
from knowledge.questions import ChunkQuestions, WriteQuestions
from knowledge.records import FolderRoot, RecordsRoot, ServerRoot, move_to_server
from knowledge.results import Hit, IngestResult, Progress, UnknownCollectionError
from knowledge.searcher import Searcher
from knowledge.store import ChromaStore


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
        chroma_url: str | None = None,
    ) -> None:
        self.root = root
        self.embedder = embedder
        # `embedder` is called `embedder_name` (a setting's value); `load_embedder` loads
        # any other that a collection has moved to (`change_embedder`).
        self.embedders = Embedders(embedder, embedder_name, load_embedder)
        self.default_mode: Mode = default_mode
        # Writes the questions a chunk answers, for the questions mode.
        self.write_questions = write_questions
        self.questions_max_chunks = questions_max_chunks
        self.store = ChromaStore(root / "chroma", embedder, url=chroma_url)
        self.lexical = LexicalIndexes(self._folder, self.store)
        self.writer = CollectionWriter(
            self.store, self.embedders.of, chunk_size, chunk_overlap, file_limits, embed_batch_size
        )
        self.embedder_change = EmbedderChange(self.store, self.writer, self.embedders)
        folders = FolderRoot(root / "collections")
        self.records: RecordsRoot = folders
        if self.store.on_server:
            self.records = ServerRoot(self.store.records_table())
            move_to_server(folders, self.records)
        self._manifests: dict[str, ManifestRecord] = {}
        self.searcher = Searcher(
            self.store, self.lexical, self.embedders, self._existing, self._questions, hypothesize
        )

    # Collections -------------------------------------------------------------------------

    def _manifest(self, name: str) -> ManifestRecord:
        # One object per collection, so its read cache lives as long as this knowledge base.
        if name not in self._manifests:
            name = validate_name(name)
            folder = CollectionFolder(self.root / "collections" / name, self.records.of(name))
            self._manifests[name] = ManifestRecord(folder)
        return self._manifests[name]

    def _folder(self, name: str) -> CollectionFolder:
        return self._manifest(name).folder

    def _existing(self, name: str) -> ManifestRecord:
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
        return self.records.names()

    def create(self, name: str) -> None:
        manifest = self._manifest(name)
        with manifest.locked():
            if not manifest.exists():  # its vectors will be the default embedder's
                self.store.ensure(name)
                manifest.write(Manifest(embedder=self.embedder_name))

    def delete(self, name: str) -> None:
        folder = self._existing(name).folder
        with folder.locked():
            for index in self.store.indexes(name):
                self.store.drop(index)
            folder.remove()
        self.lexical.forget(name)

    def mode(self, name: str) -> Mode:
        """Collection `name`'s retrieval mode: its own setting, else the default."""
        chosen = self._existing(name).folder.read_mode()
        return retrieval_mode(chosen).name if chosen else self.default_mode

    def set_mode(self, name: str, mode: str, progress: Progress | None = None) -> None:
        """Make `mode` the retrieval mode of collection `name` (conversations may override).
        The questions mode first has the model write questions for every chunk (from then
        on, at each ingestion)."""
        folder = self._existing(name).folder
        if retrieval_mode(mode).questions:
            self.add_questions(name, progress)
        folder.write_mode(mode)

    def _questions(self, name: str) -> ChunkQuestions:
        return ChunkQuestions(self._existing(name).folder)

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

    @property
    def embedder_name(self) -> str:
        return self.embedders.default_name

    def embedder_of(self, manifest: Manifest) -> Embeddings:
        """The embedder of a collection's vectors, as its manifest names it."""
        return self.embedders.of(manifest)

    def embedder_name_of(self, name: str) -> str:
        return self.embedders.name_of(self._committed(name))

    def change_embedder(
        self, name: str, spec: str, progress: Progress | None = None
    ) -> dict[str, Any]:
        """Move collection `name` to embedding model `spec` without stopping it
        (`knowledge/migration.py`)."""
        return self.embedder_change.run(name, self._existing(name), spec, progress)

    def documents(self, name: str) -> list[dict[str, Any]]:
        manifest = self._committed(name)
        return [{"source": s, **asdict(e)} for s, e in sorted(manifest.sources.items())]

    def stats(self, name: str) -> dict[str, Any]:
        """What collection `name` costs: its documents, chunks, the bytes of its index
        (float32 vectors plus chunk text, as stored) and the time spent ingesting it."""
        manifest = self._committed(name)
        footprint = self.searcher.read(name, lambda _, index: self.store.footprint(index))
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
        return {
            source: (file_hash, [chunk.text for chunk in chunks])
            for source, (file_hash, chunks) in self.placed_chunks_by_source(name).items()
        }

    def placed_chunks_by_source(self, name: str) -> dict[str, tuple[str, list[PlacedChunk]]]:
        """`chunks_by_source` with where each chunk was cut from, for `join_chunks`."""
        manifest = self._committed(name)
        grouped: dict[str, list[tuple[int, PlacedChunk]]] = {}
        for text, meta in self.searcher.read(name, lambda _, index: self.store.chunks(index)):
            if manifest.committed_hash(meta["source"]) == meta.get("file_hash"):
                chunk = PlacedChunk.of(text, meta)
                grouped.setdefault(meta["source"], []).append((meta["chunk_index"], chunk))
        return {
            source: (manifest.sources[source].hash, [c for _, c in sorted(chunks, key=_first)])
            for source, chunks in sorted(grouped.items())
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

    def summaries_folder(self, name: str) -> Path:
        """Where the summaries of collection `name`'s documents are kept (deleted with it)."""
        folder = self._existing(name).folder
        return folder.made(folder.summaries)

    def source_texts(self, name: str) -> list[str]:
        """Each committed source's text, rebuilt from its chunks in reading order."""
        return [join_chunks(chunks) for _, chunks in self.placed_chunks_by_source(name).values()]

    # Writing -----------------------------------------------------------------------------

    def ingest(
        self,
        name: str,
        files: Iterable[Path | tuple[Path, str]],
        progress: Progress | None = None,
    ) -> IngestResult:
        """Add new and changed files to collection `name` (created if needed). Files are
        paths (stored under their absolute path) or (path, source name) pairs."""
        manifest_record = self._manifest(name)
        self.create(name)
        result = self.writer.ingest(name, manifest_record, as_items(files), progress)
        if result.chunks_added and retrieval_mode(self.mode(name)).questions:
            try:
                self.add_questions(name, progress)
            except ValueError as error:  # the chunks are in; they are searched by their text
                result.errors.append({"path": "", "error": f"No questions written: {error}"})
        return result

    def forget(self, name: str, source: str) -> int:
        """Remove `source` (see `Manifest.source_key`) from collection `name`; returns the
        number of chunks removed."""
        return self.writer.forget(name, self._existing(name), source)

    # Reading (`searcher.py`) -------------------------------------------------------------

    @property
    def hypothesize(self) -> Callable[[str], str] | None:
        """Writes an answer to a question without documents, for the hyde mode."""
        return self.searcher.hypothesize

    @hypothesize.setter
    def hypothesize(self, hypothesize: Callable[[str], str] | None) -> None:
        self.searcher.hypothesize = hypothesize

    def search(self, name: str, query: str, k: int, mode: str | None = None) -> list[Hit]:
        """The `k` chunks of collection `name` that best match `query`, best first, by `mode`
        (None: the collection's own; see `knowledge/modes.py`)."""
        return next(self.search_many(name, [query], k, mode))

    def search_vector(self, name: str, vector: Sequence[float], k: int) -> list[Hit]:
        """The `k` chunks nearest to `vector` (made by the collection's embedder)."""
        return self.searcher.search_vector(name, vector, k)

    def search_many(
        self, name: str, queries: Sequence[str], k: int, mode: str | None = None
    ) -> Iterator[list[Hit]]:
        """The hits of each of many queries, in order; queries are embedded in batches."""
        return self.searcher.search_many(name, queries, k, mode or self.mode(name))

    def embed_queries(self, queries: Sequence[str]) -> list[list[float]]:
        return self.searcher.embed_queries(queries)


def _first(pair: tuple[int, PlacedChunk]) -> int:
    return pair[0]
