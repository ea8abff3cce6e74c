"""Where each collection's records live: its manifest (the commit point, `manifest.py`), its
retrieval mode and the questions written for its chunks, with the locks its writers take turns
on. These decide what a search returns, so every process that serves the collection must see
the same ones.

- With the embedded store (`FolderRecords`) they are files in the collection's folder under
  KBOT_HOME, as they have always been, and the locks are file locks.
- With a Chroma server (`ServerRecords`) they are rows of one table in that server,
  `kbot-records`, so app replicas with different KBOT_HOME folders (other machines) see the
  same manifests, modes and questions; the locks are leases in the same table.

A record is written whole or not at all in both: a file is renamed into place, a row is one
upsert. Caches derived from the records (BM25 indexes, summaries) stay in each process's own
KBOT_HOME, keyed by what they were built from.

Why leases rather than a lock server: Chroma is the one server a team already runs. Its `add`
keeps the row already under an id (the first writer wins) and its `delete` takes a condition on
the row, which together are enough for a lock. A holder renews its lease while it works; a
lease that nobody renews for `LEASE_SECONDS` (its holder was killed or lost the network) is
taken over. Each waiter times that on its own clock, so machines' clocks need not agree.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from filelock import FileLock, Timeout

from common.files import file_lock, write_atomically

# A lease not renewed for this long is taken over; its holder renews it four times as often.
LEASE_SECONDS = 10.0
_POLL_SECONDS = 0.05
# Chroma stores a vector with every row; the records table's are all this one.
_NO_VECTOR = [0.0]
MANIFEST = "manifest.json"


class Lock(Protocol):
    """An exclusive lock (`FileLock` or `Lease`): `with`, or `acquire(timeout)`, which
    raises `filelock.Timeout` when it is not had in time."""

    def acquire(self, timeout: float | None = None) -> Any: ...

    def release(self) -> Any: ...

    def __enter__(self) -> Any: ...

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
        /,
    ) -> Any: ...


class Records(Protocol):
    """One collection's records, by entry name ("manifest.json", "mode",
    "questions/KEY.json"...)."""

    def read(self, entry: str) -> tuple[str, str] | None:
        """The entry's (stamp, text), or None if absent. The stamp changes with every
        write."""
        ...

    def stamp(self, entry: str) -> str | None:
        """The entry's stamp (cheaper than reading it), or None if absent."""
        ...

    def write(self, entry: str, text: str) -> str:
        """Replace the entry, whole and durably; returns its new stamp."""
        ...

    def entries(self, prefix: str) -> list[str]:
        """The names of the entries that start with `prefix`."""
        ...

    def delete(self, entry: str) -> None: ...

    def remove_all(self) -> None:
        """Every entry but the locks, the manifest first: without it there is no collection,
        should the rest outlive a crash."""
        ...

    def lock(self, entry: str) -> Lock:
        """A new lock object for `entry` (a name starting with "."): two of them exclude each
        other, in one thread or across processes."""
        ...


class RecordsRoot(Protocol):
    """The records of every collection."""

    def of(self, name: str) -> Records: ...

    def names(self) -> list[str]:
        """The collections that have a manifest."""
        ...


# Files ------------------------------------------------------------------------------------


class FolderRecords:
    """Records as files in a collection's folder (`collections/NAME/ENTRY`)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def read(self, entry: str) -> tuple[str, str] | None:
        stamp = self.stamp(entry)
        if stamp is None:
            return None
        try:
            return stamp, (self.path / entry).read_text()
        except FileNotFoundError:
            return None

    def stamp(self, entry: str) -> str | None:
        try:
            stat = (self.path / entry).stat()
        except FileNotFoundError:
            return None
        return f"{stat.st_ino}-{stat.st_mtime_ns}-{stat.st_size}"

    def write(self, entry: str, text: str) -> str:
        write_atomically(self.path / entry, text, durable=True)
        stamp = self.stamp(entry)
        assert stamp is not None  # just written
        return stamp

    def entries(self, prefix: str) -> list[str]:
        folder, _, start = prefix.rpartition("/")
        where = self.path / folder
        if not where.is_dir():
            return []
        return sorted(
            f"{folder}/{p.name}" if folder else p.name
            for p in where.iterdir()
            if p.is_file() and p.name.startswith(start) and not p.name.startswith(".")
        )

    def delete(self, entry: str) -> None:
        (self.path / entry).unlink(missing_ok=True)

    def remove_all(self) -> None:
        # The lock files stay (see `file_lock`): a writer waiting on one then finds the
        # collection gone, rather than another writer locking a new file beside it.
        (self.path / MANIFEST).unlink(missing_ok=True)
        if not self.path.is_dir():
            return
        for entry in self.path.iterdir():
            if entry.name.endswith(".lock"):
                continue
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)

    def lock(self, entry: str) -> FileLock:
        return file_lock(self.path / entry)


class FolderRoot:
    def __init__(self, path: Path) -> None:
        self.path = path

    def of(self, name: str) -> FolderRecords:
        return FolderRecords(self.path / name)

    def names(self) -> list[str]:
        if not self.path.is_dir():
            return []
        return sorted(p.name for p in self.path.iterdir() if (p / MANIFEST).is_file())


# A Chroma server ---------------------------------------------------------------------------


class ServerRecords:
    """Records as rows of the records table: id "NAME/ENTRY", the text as the row's document,
    and a fresh stamp in its metadata at each write."""

    def __init__(self, table: Any, name: str) -> None:
        # `table` is a chromadb Collection on the server (`ChromaStore.records_table`).
        self.table = table
        self.name = name

    def _id(self, entry: str) -> str:
        return f"{self.name}/{entry}"

    def read(self, entry: str) -> tuple[str, str] | None:
        found = self.table.get(ids=[self._id(entry)], include=["documents", "metadatas"])
        if not found["ids"]:
            return None
        return found["metadatas"][0]["stamp"], found["documents"][0]

    def stamp(self, entry: str) -> str | None:
        found = self.table.get(ids=[self._id(entry)], include=["metadatas"])
        return found["metadatas"][0]["stamp"] if found["ids"] else None

    def write(self, entry: str, text: str) -> str:
        meta = {"collection": self.name, "entry": entry, "stamp": uuid.uuid4().hex}
        self.table.upsert(
            ids=[self._id(entry)], embeddings=[_NO_VECTOR], documents=[text], metadatas=[meta]
        )
        return meta["stamp"]

    def _listed(self) -> list[str]:
        found = self.table.get(where={"collection": self.name}, include=["metadatas"])
        return [meta["entry"] for meta in found["metadatas"]]

    def entries(self, prefix: str) -> list[str]:
        return sorted(e for e in self._listed() if e.startswith(prefix) and not e.startswith("."))

    def delete(self, entry: str) -> None:
        self.table.delete(ids=[self._id(entry)])

    def remove_all(self) -> None:
        self.delete(MANIFEST)
        doomed = [e for e in self._listed() if not e.startswith(".")]
        if doomed:
            self.table.delete(ids=[self._id(e) for e in doomed])

    def lock(self, entry: str) -> Lease:
        return Lease(self.table, self.name, entry)


class ServerRoot:
    def __init__(self, table: Any) -> None:
        self.table = table

    def of(self, name: str) -> ServerRecords:
        return ServerRecords(self.table, name)

    def names(self) -> list[str]:
        found = self.table.get(where={"entry": MANIFEST}, include=["metadatas"])
        return sorted(meta["collection"] for meta in found["metadatas"])


def move_to_server(folders: FolderRoot, server: ServerRoot) -> list[str]:
    """Hand the server the records that an earlier version kept in KBOT_HOME beside a Chroma
    server (its chunks were already there): each collection the server has no manifest of.
    The manifest goes last, so a crash before it leaves the move to do again; the local one is
    then renamed away, so a collection deleted later is not brought back. Returns the names."""
    moved = []
    known = set(server.names())
    for name in folders.names():
        if name in known:
            continue
        local, shared = folders.of(name), server.of(name)
        for entry in [*local.entries("questions/"), "mode", MANIFEST]:
            found = local.read(entry)
            if found is not None:
                shared.write(entry, found[1])
        # Another replica on the same folder may have moved it a moment ago: the same rows.
        with contextlib.suppress(FileNotFoundError):
            (local.path / MANIFEST).rename(local.path / f"{MANIFEST}.moved")
        moved.append(name)
    return moved


class Lease:
    """A lock held as a row of the records table, renewed while held (see the module's
    description). Like `FileLock`, one object is one claim: two objects exclude each other."""

    def __init__(self, table: Any, collection: str, entry: str) -> None:
        self.table = table
        self.key = f"{collection}/{entry}"
        self.holder = uuid.uuid4().hex
        self._meta = {"collection": collection, "entry": entry, "holder": self.holder}
        self._stop = threading.Event()
        self._renewing: threading.Thread | None = None

    def acquire(self, timeout: float | None = None) -> Lease:
        """Wait for the lease (at most `timeout` seconds; None or negative: as long as it
        takes); raises `filelock.Timeout` when another holder keeps it."""
        deadline = None if timeout is None or timeout < 0 else time.monotonic() + timeout
        watched: tuple[str, int] | None = None
        since = time.monotonic()
        while True:
            # `add` keeps an existing row: only a free lease becomes ours.
            self.table.add(
                ids=[self.key], embeddings=[_NO_VECTOR], metadatas=[{**self._meta, "beat": 0}]
            )
            found = self.table.get(ids=[self.key], include=["metadatas"])
            if found["ids"]:
                current = found["metadatas"][0]
                if current["holder"] == self.holder:
                    self._start_renewing()
                    return self
                held = (current["holder"], current["beat"])
                if held != watched:
                    watched, since = held, time.monotonic()
                elif time.monotonic() - since > LEASE_SECONDS:
                    self._take_over(*held)
                    continue
            if deadline is not None and time.monotonic() >= deadline:
                raise Timeout(self.key)
            time.sleep(_POLL_SECONDS)

    def _take_over(self, holder: str, beat: int) -> None:
        """Drop a lease whose holder stopped renewing it, unless it renewed meanwhile."""
        self.table.delete(ids=[self.key], where={"$and": [{"holder": holder}, {"beat": beat}]})

    def _start_renewing(self) -> None:
        self._stop.clear()
        self._renewing = threading.Thread(target=self._renew, daemon=True, name="lease")
        self._renewing.start()

    def _renew(self) -> None:
        beat = 0
        while not self._stop.wait(LEASE_SECONDS / 4):
            beat += 1
            found = self.table.get(ids=[self.key], include=["metadatas"])
            if not found["ids"] or found["metadatas"][0]["holder"] != self.holder:
                return  # taken over after a pause longer than the lease: nothing to renew
            self.table.update(ids=[self.key], metadatas=[{**self._meta, "beat": beat}])

    def release(self) -> None:
        self._stop.set()
        if self._renewing is not None:
            self._renewing.join()
            self._renewing = None
        self.table.delete(ids=[self.key], where={"holder": self.holder})

    def __enter__(self) -> Lease:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()
