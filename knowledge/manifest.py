"""Each collection's manifest: which version (content hash) of each source is committed.

Chroma has no transactions, so the manifest is the commit point. A file's new chunks are
written under their own ids first, then the manifest switches to them in one atomic rename,
and only then are the old chunks deleted. A crash at any point leaves either the old or the
new version committed; the leftovers are listed (`pending`, `stale`) and swept on the next
write. Searches only return chunks of committed versions. A file lock (`fcntl.flock`) makes
writes from several threads or processes (the UI and the CLI) take turns.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path


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

    def committed_hash(self, source: str) -> str | None:
        entry = self.sources.get(source)
        return entry.hash if entry else None


class ManifestFile:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "manifest.json"

    def exists(self) -> bool:
        return self.path.exists()

    def read(self) -> Manifest:
        if not self.path.exists():
            return Manifest()
        raw = json.loads(self.path.read_text())
        return Manifest(
            sources={k: SourceEntry(**v) for k, v in raw.get("sources", {}).items()},
            pending=[tuple(p) for p in raw.get("pending", [])],
            stale=[tuple(s) for s in raw.get("stale", [])],
        )

    def write(self, manifest: Manifest) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        data = {
            "sources": {k: asdict(v) for k, v in sorted(manifest.sources.items())},
            "pending": manifest.pending,
            "stale": manifest.stale,
        }
        staging = self.path.with_name(f".manifest.{os.getpid()}.tmp")
        with staging.open("w") as out:
            json.dump(data, out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(staging, self.path)

    @contextmanager
    def locked(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        with (self.folder / ".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
