"""Each collection's manifest: which version (content hash) of each source is committed.

Chroma has no transactions, so the manifest is the commit point. A file's new chunks are
written under their own ids first, then the manifest switches to them in one atomic rename,
and only then are the old chunks deleted. A crash at any point leaves either the old or the
new version committed; the leftovers are listed (`pending`, `stale`) and swept on the next
write. Searches only return chunks of committed versions. A lock makes writes from several
threads, processes (the UI and the CLI) or app replicas take turns.

The manifest is one of the collection's records (`records.py`: a file in its folder, or a row
on the Chroma server); `CollectionFolder` names them and the caches derived from the
collection, and the same lock guards the writing of the mode and the collection's removal.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from knowledge.records import MANIFEST, Lock, Records
from knowledge.results import UnknownCollectionError


@dataclass
class SourceEntry:
    hash: str
    chunks: int
    bytes: int
    ingested_at: str


@dataclass
class Manifest:
    sources: dict[str, SourceEntry] = field(default_factory=dict)
    # (source, hash) versions that may have chunks in the store but are not committed.
    pending: list[tuple[str, str]] = field(default_factory=list)
    stale: list[tuple[str, str]] = field(default_factory=list)
    # Wall time of every ingestion that changed the collection, summed (its build cost).
    ingest_seconds: float = 0.0
    # The embedding model of the collection's vectors ("": the knowledge base's default) and
    # the suffix of the Chroma index that holds them ("": the collection's first index).
    # Changing the embedder builds a new index and switches both here, in one commit.
    embedder: str = ""
    index: str = ""

    def committed_hash(self, source: str) -> str | None:
        entry = self.sources.get(source)
        return entry.hash if entry else None

    def source_key(self, source: str, paths: bool = True) -> str | None:
        """`source` as stored here, given as stored, as a path to it (with `paths`: for local
        callers only, since it reads the file system), or by its file name when no other
        document has that name; None if absent."""
        if source in self.sources:
            return source
        if paths and (key := str(Path(source).resolve())) in self.sources:
            return key
        named = [stored for stored in self.sources if Path(stored).name == source]
        return named[0] if len(named) == 1 else None


def store_key(name: str, manifest: Manifest) -> str:
    """What the store calls collection `name`'s current index (see `ChromaStore`)."""
    return f"{name}@{manifest.index}" if manifest.index else name


def _copy(manifest: Manifest) -> Manifest:
    # Entries are replaced, never changed in place, so a shallow copy is private enough.
    return Manifest(
        dict(manifest.sources),
        list(manifest.pending),
        list(manifest.stale),
        manifest.ingest_seconds,
        manifest.embedder,
        manifest.index,
    )


class CollectionFolder:
    """A collection's records (`records.py`: its manifest, mode and questions, with the locks
    its writers take) and its own folder of caches, `collections/<name>/` under KBOT_HOME
    (BM25 indexes, summaries), which every process keeps for itself. Each module asks here for
    its entry. The names are those on disk since the first version, so existing folders keep
    working. The mode is written and the collection removed under `locked()`, the lock the
    manifest's writers hold, so no write brings back a collection being deleted."""

    def __init__(self, path: Path, records: Records) -> None:
        self.path = path
        self.records = records

    @property
    def name(self) -> str:
        return self.path.name

    # Records: the same for every process that serves the collection.
    manifest = MANIFEST  # the commit point of the collection's chunks (`ManifestRecord`)
    mode = "mode"  # the retrieval mode chosen for the collection; absent: the default
    questions = "questions/"  # the questions written for its chunks (`questions.py`)

    # Caches: this process's own.
    @property
    def summaries(self) -> Path:
        """Its documents' summaries, cached by content (`summaries.py`)."""
        return self.path / "summaries"

    def lexical(self, expanded: bool = False) -> Path:
        """Its saved BM25 indexes (`lexical.py`): of the chunks, or with `expanded`, of the
        chunks with their questions."""
        return self.path / ("bm25-questions" if expanded else "bm25")

    def exists(self) -> bool:
        return self.records.stamp(self.manifest) is not None

    def locked(self) -> Lock:
        return self.records.lock(".lock")

    def embedder_locked(self) -> Lock:
        """Held while the collection moves to another embedder (`migration.py`)."""
        return self.records.lock(".embedder.lock")

    def made(self, entry: Path) -> Path:
        """`entry` (one of the cache folders), made first if missing, never for a collection
        deleted meanwhile. Without the writers' lock: a search that builds a cache must not
        wait for a write (nor, on a server, for the lease of a writer that was killed)."""
        if entry.is_dir():  # the usual case
            return entry
        self.require()
        entry.mkdir(parents=True, exist_ok=True)
        if not self.exists():  # deleted meanwhile: take back what was made
            shutil.rmtree(entry, ignore_errors=True)
            self.require()
        return entry

    def read_mode(self) -> str | None:
        found = self.records.read(self.mode)
        return found[1].strip() if found else None

    def write_mode(self, mode: str) -> None:
        with self.locked():
            self.require()
            self.records.write(self.mode, mode)

    def remove(self) -> None:
        """Every record (the manifest first) and cache; the caller holds `locked()`."""
        self.records.remove_all()
        for cache in (self.summaries, self.lexical(), self.lexical(expanded=True)):
            shutil.rmtree(cache, ignore_errors=True)

    def require(self) -> None:
        if not self.exists():
            raise UnknownCollectionError(f"Collection {self.name!r} was deleted meanwhile.")


class ManifestRecord:
    """A collection's manifest record. Reads are cached until the record changes (every file
    ingested and every query reads it, and collections can hold thousands of sources)."""

    def __init__(self, folder: CollectionFolder) -> None:
        self.folder = folder
        self.records = folder.records
        self._cache: tuple[str, Manifest] | None = None

    def exists(self) -> bool:
        return self.folder.exists()

    def read(self, fresh: bool = False) -> Manifest:
        """A private copy of the manifest, safe to change and `write` back. Writers pass
        `fresh` under the lock: a file stamp can in theory repeat, the record's content not."""
        cached = None if fresh else self._cache
        if cached is not None and self.records.stamp(MANIFEST) == cached[0]:
            return _copy(cached[1])
        found = self.records.read(MANIFEST)
        if found is None:
            return Manifest()
        stamp, text = found
        raw = json.loads(text)
        manifest = Manifest(
            sources={k: SourceEntry(**v) for k, v in raw.get("sources", {}).items()},
            pending=[tuple(p) for p in raw.get("pending", [])],
            stale=[tuple(s) for s in raw.get("stale", [])],
            ingest_seconds=raw.get("ingest_seconds", 0.0),
            embedder=raw.get("embedder", ""),
            index=raw.get("index", ""),
        )
        self._cache = (stamp, manifest)
        return _copy(manifest)

    def write(self, manifest: Manifest) -> None:
        data = {
            "sources": {k: vars(v) for k, v in manifest.sources.items()},
            "pending": manifest.pending,
            "stale": manifest.stale,
            # Unrounded: a manifest read back must equal the one kept in memory.
            "ingest_seconds": manifest.ingest_seconds,
            "embedder": manifest.embedder,
            "index": manifest.index,
        }
        # Compact: C-speed encoding. Written whole and durably: this is the commit point.
        stamp = self.records.write(MANIFEST, json.dumps(data, separators=(",", ":")))
        self._cache = (stamp, _copy(manifest))

    def locked(self) -> Lock:
        return self.folder.locked()
