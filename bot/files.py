"""Writing files so that readers never see half of one."""

from __future__ import annotations

from pathlib import Path


def write_text_atomically(path: Path, text: str) -> Path:
    """Write `text` to `path` through a hidden temporary file renamed into place: an existing
    file is replaced only once the new one is complete."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(text, encoding="utf-8")
    staging.replace(path)
    return path
