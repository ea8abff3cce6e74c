"""Training data: documents (causal LM on their text) or question/answer records (SFT).

Every record is validated before training starts; a bad line fails the run with its number.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from common.errors import BadInput

if TYPE_CHECKING:
    from knowledge.loaders import FileLimits

RECORD_FORMATS = (
    '{"question", "answer"}, {"messages": [{"role", "content"}, ...]} or '
    '{"instruction", "input" (optional), "output"}'
)


class DataError(BadInput):
    """Training data that cannot be used; the message names the file and line."""


@dataclass(frozen=True)
class TrainingData:
    """`conversations` are chat messages, the last one the answer to learn (SFT); `texts` are
    documents to continue-train on. `kind` says which it holds: "sft", "text" or "mixed"."""

    kind: Literal["sft", "text", "mixed"]
    conversations: tuple[tuple[dict[str, str], ...], ...] = ()
    texts: tuple[str, ...] = ()
    origin: str = ""

    def __len__(self) -> int:
        return len(self.conversations) + len(self.texts)

    @property
    def fingerprint(self) -> str:
        payload = json.dumps([self.kind, self.conversations, self.texts], sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _text(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f'"{field}" must be a non-empty string')
    return value.strip()


def conversation_of(record: Any) -> tuple[dict[str, str], ...]:
    """One record in any supported format, as chat messages ending with the assistant's."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if "messages" in record:
        messages = record["messages"]
        if not isinstance(messages, list) or not messages:
            raise ValueError('"messages" must be a non-empty list')
        out = []
        for number, message in enumerate(messages, start=1):
            if not isinstance(message, dict) or message.get("role") not in (
                "system",
                "user",
                "assistant",
            ):
                raise ValueError(f'message {number} needs "role": system, user or assistant')
            out.append(
                {"role": message["role"], "content": _text(message.get("content"), "content")}
            )
        if out[-1]["role"] != "assistant":
            raise ValueError("the last message must be the assistant's answer")
        return tuple(out)
    if "question" in record or "answer" in record:
        return (
            {"role": "user", "content": _text(record.get("question"), "question")},
            {"role": "assistant", "content": _text(record.get("answer"), "answer")},
        )
    if "instruction" in record or "output" in record:
        prompt = _text(record.get("instruction"), "instruction")
        extra = record.get("input") or ""
        if not isinstance(extra, str):
            raise ValueError('"input" must be a string')
        if extra.strip():
            prompt += "\n\n" + extra.strip()
        return (
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": _text(record.get("output"), "output")},
        )
    raise ValueError(f"unknown record format; expected {RECORD_FORMATS}")


def _records(path: Path) -> list[tuple[str, Any]]:
    """(where, record) pairs of a .jsonl (one per line) or .json (a list) file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".json":
        try:
            items = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}: not valid JSON: {error}") from None
        if not isinstance(items, list):
            raise DataError(f"{path}: expected a JSON list of records")
        return [(f"{path}, item {n}", item) for n, item in enumerate(items, start=1)]
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append((f"{path}, line {number}", json.loads(line)))
        except json.JSONDecodeError as error:
            raise DataError(f"{path}, line {number}: not valid JSON: {error.msg}") from None
    return records


def load_records(path: Path) -> TrainingData:
    """Question/answer records from JSONL (or a JSON list), all validated first."""
    conversations = []
    for where, record in _records(path):
        try:
            conversations.append(conversation_of(record))
        except ValueError as error:
            raise DataError(f"{where}: {error}") from None
    if not conversations:
        raise DataError(f"{path}: no records")
    return TrainingData(kind="sft", conversations=tuple(conversations), origin=str(path))


def combine(parts: list[TrainingData]) -> TrainingData:
    """Several sources of training data as one (documents and Q/A records together)."""
    if not parts:
        raise DataError("no training data given")
    if len(parts) == 1:
        return parts[0]
    conversations = tuple(c for part in parts for c in part.conversations)
    texts = tuple(t for part in parts for t in part.texts)
    kind = "mixed" if conversations and texts else ("sft" if conversations else "text")
    origin = ", ".join(part.origin for part in parts)
    return TrainingData(kind=kind, conversations=conversations, texts=texts, origin=origin)


def load_documents(paths: list[Path], limits: FileLimits | None = None) -> TrainingData:
    from knowledge.loaders import DEFAULT_LIMITS, LoadError, expand_paths, load_file, read_checked

    texts = []
    for path in expand_paths(paths):
        try:
            documents = load_file(path, read_checked(path, limits or DEFAULT_LIMITS))
        except LoadError as error:
            raise DataError(f"{path.name} {error}") from None
        texts.append("\n\n".join(d.page_content for d in documents))
    if not texts:
        raise DataError("no documents found in " + ", ".join(map(str, paths)))
    return TrainingData(kind="text", texts=tuple(texts), origin=", ".join(map(str, paths)))


def load_training_data(paths: list[Path], limits: FileLimits | None = None) -> TrainingData:
    """.jsonl/.json files are question/answer records; other files (or folders) are
    documents. Both may be given together."""
    record_files = [p for p in paths if p.suffix.lower() in (".jsonl", ".json")]
    documents = [p for p in paths if p not in record_files]
    for path in record_files:
        if not path.is_file():
            raise DataError(f"{path}: no such file")
    parts = [load_records(path) for path in record_files]
    if documents:
        parts.append(load_documents(documents, limits))
    return combine(parts)


def collection_texts(knowledge: Any, name: str) -> TrainingData:
    """The documents of a knowledge collection, rebuilt from its stored chunks in order."""
    texts = knowledge.source_texts(name)
    if not texts:
        raise DataError(f"collection {name!r} holds no documents")
    return TrainingData(kind="text", texts=tuple(texts), origin=f"collection {name}")
