"""Each collection's manifest: which version (content hash) of each source is committed.

Chroma has no transactions, so the manifest is the commit point. A file's new chunks are
written under their own ids first, then the manifest switches to them in one atomic rename,
and only then are the old chunks deleted. A crash at any point leaves either the old or the
new version committed; the leftovers are listed (`pending`, `stale`) and swept on the next
write. Searches only return chunks of committed versions. A file lock makes writes from
several threads or processes (the UI and the CLI) take turns.

The manifest lives in the collection's own folder (`CollectionFolder`), beside what is derived
from the collection; the same lock guards the making and removing of those entries.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock

from common.files import file_lock, write_atomically
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
    """A collection's own folder, `collections/<name>/`, and the name of each of its entries:
    every module asks here for its own. The names are those on disk since the first version,
    so existing folders keep working. Entries are made and removed, and the mode is written,
    under `locked()`, the lock the manifest's writers hold, so none of them brings back the
    folder of a collection being deleted."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def manifest(self) -> Path:
        """The commit point of the collection's chunks (`ManifestFile`)."""
        return self.path / "manifest.json"

    @property
    def lock(self) -> Path:
        return self.path / ".lock"

    @property
    def mode(self) -> Path:
        """The retrieval mode chosen for the collection; absent: the default."""
        return self.path / "mode"

    @property
    def questions(self) -> Path:
        """The questions written for its chunks (`questions.py`)."""
        return self.path / "questions"

    @property
    def summaries(self) -> Path:
        """Its documents' summaries, cached by content (`summaries.py`)."""
        return self.path / "summaries"

    def lexical(self, expanded: bool = False) -> Path:
        """Its saved BM25 indexes (`lexical.py`): of the chunks, or with `expanded`, of the
        chunks with their questions."""
        return self.path / ("bm25-questions" if expanded else "bm25")

    @property
    def embedder_lock(self) -> Path:
        """Held while the collection moves to another embedder (`migration.py`)."""
        return self.path / ".embedder.lock"

    def exists(self) -> bool:
        return self.manifest.exists()

    def locked(self) -> FileLock:
        return file_lock(self.lock)

    def made(self, entry: Path) -> Path:
        """`entry` (one of this folder's subfolders), made first if missing."""
        if entry.is_dir():  # the usual case, without taking the lock
            return entry
        self._require()  # before the lock, whose file would bring the folder back
        with self.locked():
            self._require()
            entry.mkdir(exist_ok=True)
        return entry

    def write_mode(self, mode: str) -> None:
        with self.locked():
            self._require()
            write_atomically(self.mode, mode)

    def remove(self) -> None:
        """Everything in the folder but its lock file; the caller holds `locked()`. The
        manifest goes first: a folder without it is no collection, should the rest outlive a
        crash. The lock file stays (see `file_lock`): a writer waiting on it then finds the
        collection gone, rather than another writer locking a new file beside it."""
        self.manifest.unlink(missing_ok=True)
        for entry in self.path.iterdir():
            if entry == self.lock:
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def _require(self) -> None:
        if not self.exists():
            raise UnknownCollectionError(f"Collection {self.name!r} was deleted meanwhile.")


class ManifestFile:
    """A collection's manifest on disk. Reads are cached until the file changes (every file
    ingested and every query reads it, and collections can hold thousands of sources)."""

    def __init__(self, folder: CollectionFolder) -> None:
        self.folder = folder
        self.path = folder.manifest
        self._cache: tuple[tuple[int, int, int], Manifest] | None = None

    def exists(self) -> bool:
        return self.path.exists()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return None
        return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

    def read(self, fresh: bool = False) -> Manifest:
        """A private copy of the manifest, safe to change and `write` back. Writers pass
        `fresh` under the lock: a file stamp can in theory repeat, the file's content not."""
        stamp = self._stamp()
        if stamp is None:
            return Manifest()
        if fresh or self._cache is None or self._cache[0] != stamp:
            raw = json.loads(self.path.read_text())
            manifest = Manifest(
                sources={k: SourceEntry(**v) for k, v in raw.get("sources", {}).items()},
                pending=[tuple(p) for p in raw.get("pending", [])],
                stale=[tuple(s) for s in raw.get("stale", [])],
                ingest_seconds=raw.get("ingest_seconds", 0.0),
                embedder=raw.get("embedder", ""),
                index=raw.get("index", ""),
            )
            self._cache = (stamp, manifest)
        return _copy(self._cache[1])

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
        # Compact: C-speed encoding. Durable: this rename is the commit point.
        write_atomically(self.path, json.dumps(data, separators=(",", ":")), durable=True)
        stamp = self._stamp()
        if stamp is not None:
            self._cache = (stamp, _copy(manifest))

    def locked(self) -> FileLock:
        return self.folder.locked()
