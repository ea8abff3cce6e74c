"""Pieces the benchmark scripts share."""

from __future__ import annotations

import sys
import time
from pathlib import Path

_T0 = time.perf_counter()


def elapsed() -> float:
    """Seconds since the script started."""
    return time.perf_counter() - _T0


def log(message: str) -> None:
    """A progress line on stderr, stamped with the seconds since the script started."""
    print(f"[{elapsed():7.1f}s] {message}", file=sys.stderr, flush=True)


def timed_ingest(
    kb, collection: str, files: list[Path], label: str
) -> tuple[object, float, list[float]]:
    """Ingest `files` into `collection`; returns the result, the seconds it took, and the
    time per file (ms) in each fifth of the files, which shows how the per-file cost changes
    as the collection grows."""
    start = time.perf_counter()
    last_log, done, marks = [start], [0], [start]
    step = max(1, len(files) // 5)

    def progress(fraction: float, step_label: str) -> None:
        now = time.perf_counter()
        done[0] = int(fraction * len(files))  # files read and stored so far
        while len(marks) <= 5 and done[0] >= len(marks) * step:
            marks.append(now)
        if now - last_log[0] > 30:
            last_log[0] = now
            log(f"  {label}: {done[0]:,} / {len(files):,} files")

    result = kb.ingest(collection, files, progress)
    seconds = time.perf_counter() - start
    if result.errors:
        raise RuntimeError(f"{label}: {len(result.errors)} errors, first {result.errors[0]}")
    per_file = [round(1000 * (b - a) / step, 1) for a, b in zip(marks, marks[1:], strict=False)]
    return result, seconds, per_file
