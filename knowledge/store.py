"""The module that talks to Chroma (`records.py` only writes rows of the table it is given):
one persistent client under KBOT_HOME or one client of a Chroma server, one Chroma
collection (index) per knowledge collection and embedder. langchain-chroma creates the
indexes (cosine space); writes take vectors we computed ourselves (outside the collection
lock), and reads must not create a missing index, neither of which langchain-chroma offers,
so both use Chroma's collection directly.

Chroma's embedded client keeps each vector index in memory and does not see what another
process (the CLI beside a running app) wrote. Every write therefore leaves a new token in a
`generation` file; a client that finds a token it did not write reopens itself first.
"""

from __future__ import annotations

import contextlib
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import chromadb
from chromadb.api import ClientAPI
from chromadb.api.shared_system_client import SharedSystemClient
from chromadb.config import Settings as ChromaSettings
from chromadb.errors import NotFoundError
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from common.errors import BadInput, NotFound
from common.files import write_atomically

# Chunks read per request when reading a whole collection.
_PAGE = 5000


class MissingIndexError(NotFound):
    """An index that is not in the store (any more): its collection moved to another
    embedder meanwhile, so the caller reads the manifest again and uses the new one."""


@dataclass(frozen=True)
class StoredChunk:
    text: str
    metadata: dict[str, Any]
    score: float


class ChromaStore:
    def __init__(self, path: Path, embedder: Embeddings, url: str | None = None) -> None:
        """The store in folder `path`, or on the Chroma server at `url` (`chroma run`); the
        folder keeps the generation token either way."""
        path.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._url = url
        self._generation_file = path / "generation"
        self._embedder = embedder
        self._lock = threading.RLock()
        self._open()

    def _open(self) -> None:
        self._seen = self._read_generation()
        settings = ChromaSettings(anonymized_telemetry=False)
        if self._url:
            self._client = _server_client(self._url, settings)
        else:
            self._client = chromadb.PersistentClient(path=str(self._path), settings=settings)
        self._max_batch = self._client.get_max_batch_size()

    def _read_generation(self) -> str:
        try:
            return self._generation_file.read_text()
        except FileNotFoundError:
            return ""

    @contextmanager
    def _using(self, *, writes: bool) -> Iterator[None]:
        """Serialise this process's access, reopen after other processes' writes, and tell
        other processes about ours."""
        with self._lock:
            if self._read_generation() != self._seen:
                SharedSystemClient.clear_system_cache()
                self._open()
            yield
            if writes:
                self._seen = uuid.uuid4().hex
                write_atomically(self._generation_file, self._seen)

    @staticmethod
    def _chroma_name(collection: str) -> str:
        """A collection's first index is `kb-NAME` (Chroma wants 3+ characters; names may be
        shorter); the index built when its embedder changed, `NAME@SUFFIX`, is
        `ke-SUFFIX-NAME` (the suffix is 8 hex digits, so no two names meet)."""
        name, _, index = collection.partition("@")
        return f"ke-{index}-{name}" if index else f"kb-{name}"

    def indexes(self, name: str) -> list[str]:
        """Every index of collection `name` in the store, as `name` or `name@SUFFIX`."""
        with self._using(writes=False):
            stored = [c.name for c in self._client.list_collections()]
        found = [name] if f"kb-{name}" in stored else []
        pattern = re.compile(rf"ke-([0-9a-f]{{8}})-{re.escape(name)}")
        return found + [f"{name}@{m[1]}" for s in stored if (m := pattern.fullmatch(s))]

    def _vectorstore(self, collection: str) -> Chroma:
        return Chroma(
            client=self._client,
            collection_name=self._chroma_name(collection),
            embedding_function=self._embedder,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )

    def _collection(self, collection: str) -> chromadb.Collection:
        """The index, created if it does not exist yet (for writes)."""
        return self._vectorstore(collection)._collection

    def ensure(self, collection: str) -> None:
        """Create the (empty) index if it does not exist."""
        with self._using(writes=True):
            self._collection(collection)

    @contextmanager
    def _reading(self, collection: str) -> Iterator[chromadb.Collection]:
        """The index as it is, for reads: a missing one is not created (an empty index would
        stand in for one that was dropped a moment ago) but reported."""
        with self._using(writes=False):
            try:
                yield self._client.get_collection(self._chroma_name(collection))
            except NotFoundError:
                raise MissingIndexError(collection) from None

    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: Sequence[Sequence[float]],
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]],
    ) -> None:
        with self._using(writes=True):
            target = self._collection(collection)
            for start in range(0, len(ids), self._max_batch):
                end = start + self._max_batch
                target.upsert(
                    ids=list(ids[start:end]),
                    embeddings=[list(v) for v in vectors[start:end]],
                    documents=list(texts[start:end]),
                    metadatas=list(metadatas[start:end]),
                )

    def delete(self, collection: str, where: dict[str, Any]) -> None:
        with self._using(writes=True), contextlib.suppress(NotFoundError):
            self._client.get_collection(self._chroma_name(collection)).delete(where=where)

    def vectors(self, collection: str, where: dict[str, Any]) -> dict[str, list[float]]:
        """Stored vectors by their chunk's content hash (to reuse them when a file changes)."""
        with self._reading(collection) as store:
            found = store.get(where=where, include=["embeddings", "metadatas"])
        return {
            meta["chunk_hash"]: list(vector)
            for meta, vector in zip(
                _column(found, "metadatas"), _column(found, "embeddings"), strict=True
            )
        }

    def _every(self, collection: str, include: list[str]) -> dict[str, list]:
        """`include` of every stored chunk, read a page at a time: one read of 100k chunks
        asks SQLite for more variables than it allows."""
        found: dict[str, list] = {key: [] for key in include}
        with self._reading(collection) as store:
            for offset in range(0, store.count(), _PAGE):
                # chromadb types `include` as a list of its own literals; these are among them.
                page = store.get(include=include, limit=_PAGE, offset=offset)  # type: ignore[arg-type]
                for key in include:
                    found[key] += _column(page, key)
        return found

    def chunks(
        self, collection: str, where: dict[str, Any] | None = None
    ) -> list[tuple[str, dict[str, Any]]]:
        """Every stored chunk (or those matching `where`) as (text, metadata)."""
        if where is not None:
            with self._reading(collection) as store:
                found = store.get(where=where, include=["documents", "metadatas"])
        else:
            found = self._every(collection, ["documents", "metadatas"])
        return list(zip(_column(found, "documents"), _column(found, "metadatas"), strict=True))

    def dimensions(self, collection: str) -> set[int]:
        """The lengths of the stored vectors (one model's vectors all have the same)."""
        vectors = self._every(collection, ["embeddings"])["embeddings"]
        return {len(vector) for vector in vectors}

    def footprint(self, collection: str) -> dict[str, int]:
        """Bytes of the stored vectors (as float32) and chunk texts of `collection`."""
        with self._reading(collection) as store:
            sample = store.get(limit=1, include=["embeddings"])
        texts = self._every(collection, ["documents"])["documents"]
        vectors = _column(sample, "embeddings")
        dims = len(vectors[0]) if vectors else 0
        return {
            "vector_bytes": 4 * dims * len(texts),
            "text_bytes": sum(len(t.encode()) for t in texts),
        }

    def count(self, collection: str) -> int:
        with self._reading(collection) as store:
            return store.count()

    def search(self, collection: str, vector: Sequence[float], k: int) -> list[StoredChunk]:
        """The `k` nearest chunks, best first; `score` is the cosine similarity."""
        with self._reading(collection) as store:
            found = store.query(
                query_embeddings=[list(vector)],
                n_results=k,
                include=["documents", "metadatas", "distances"],
            )
        # One query: the first (only) row of each field.
        texts, metas = _column(found, "documents")[0], _column(found, "metadatas")[0]
        distances = _column(found, "distances")[0]
        return [
            StoredChunk(text, dict(meta), 1.0 - distance)
            for text, meta, distance in zip(texts, metas, distances, strict=True)
        ]

    @property
    def on_server(self) -> bool:
        return bool(self._url)

    def records_table(self) -> chromadb.Collection:
        """The table that holds every collection's records on the Chroma server
        (`records.py`); its rows carry a placeholder vector."""
        return self._client.get_or_create_collection(
            "kbot-records", configuration={"hnsw": {"space": "l2"}}, embedding_function=None
        )

    def drop(self, collection: str) -> None:
        name = self._chroma_name(collection)
        with self._using(writes=True):
            if name in {c.name for c in self._client.list_collections()}:
                self._client.delete_collection(name)


def _server_client(url: str, settings: ChromaSettings) -> ClientAPI:
    """A client of the Chroma server at `url`; an unreachable server is a clear error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BadInput(f"KBOT_CHROMA_URL={url!r} is not an http(s) URL of a Chroma server.")
    try:
        return chromadb.HttpClient(
            host=parts.hostname,
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=settings,
        )
    except Exception as error:  # chromadb raises ValueError, httpx errors...
        raise BadInput(
            f"KBOT_CHROMA_URL={url!r}: no Chroma server answers there ({error}). Start one "
            "(`chroma run --path FOLDER --port PORT`) or unset the setting."
        ) from error


def _column(found: Mapping[str, Any], key: str) -> list:
    """One field of a Chroma result as a list: chromadb leaves out what was not included, and
    gives embeddings as one numpy array."""
    values = found.get(key)
    return [] if values is None else list(values)
