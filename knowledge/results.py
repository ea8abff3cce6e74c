"""What the knowledge layer hands back: search hits and ingestion reports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from common.errors import NotFound

# fraction done (0-1), a short label of the current step
Progress = Callable[[float, str], None]


class UnknownCollectionError(NotFound):
    pass


@dataclass
class IngestResult:
    collection: str
    files: int = 0
    chunks_added: int = 0
    chunks_unchanged: int = 0
    chunks_removed: int = 0
    errors: list[dict[str, str]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Hit:
    source: str
    text: str
    score: float
    location: str = ""
    chunk_index: int = 0

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"source": self.source, "text": self.text, "score": self.score}
        if self.location:
            data["location"] = self.location
        return data
