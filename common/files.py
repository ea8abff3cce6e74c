"""Files that readers never see half-written, and locks that several threads and processes
(the app and the CLI beside it) take turns on."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from filelock import FileLock


def write_atomically(path: Path, data: str | bytes, *, durable: bool = False) -> Path:
    """Write `data` to `path` through a hidden temporary file renamed into place: an existing
    file is replaced only once the new one is complete. `durable` also waits for the disk
    (for commit points, whose loss after a power cut would lose committed data)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # One staging name per write, so concurrent writers never share a half-written file, even
    # processes of other machines or containers (whose process ids repeat) on a shared folder.
    staging = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        with staging.open("wb") as out:
            out.write(payload)
            if durable:
                out.flush()
                os.fsync(out.fileno())
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)
    return path


def file_lock(path: Path) -> FileLock:
    """An exclusive lock on `path` (created if needed), for `with`. Each call makes a new lock
    object: two threads of one process exclude each other just like two processes. The lock
    file stays in place on release, so a waiter never locks a file that was just replaced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(path, preserve_lock_file=True)
