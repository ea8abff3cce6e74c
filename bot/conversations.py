"""Conversations that last: each one's messages, backend and options, and its answers'
provenance, kept under KBOT_HOME for a known user (the local user or a signed-in one) and in
the browser for anonymous visitors.

Both keep the same records through one `Conversations` class over a mapping of id -> record:
a folder of JSON files (`ConversationFolder`), or the plain dict held in the visitor's browser.
Ids are made here (random hex) and checked before any file is touched; owners are folders
named by a hash, so no client value ever becomes part of a path.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from collections.abc import Iterator, MutableMapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from bot.provenance import message_text
from common.errors import BadInput, NotFound
from common.files import write_atomically
from common.text import one_line

MAX_MESSAGES = 400  # the newest messages of a conversation are kept
TITLE_CHARS = 80
_ID = re.compile(r"[0-9a-f]{32}")


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")  # orders saves in a second


def title_of(text: str) -> str:
    """A conversation's title: its first question, as one short line."""
    return one_line(text, TITLE_CHARS) or "Conversation"


class Conversation(BaseModel):
    id: str = Field(default_factory=lambda: secrets.token_hex(16))
    title: str = "Conversation"
    backend: str = "base"
    options: dict[str, Any] = {}
    messages: list[dict[str, Any]] = []
    # (shown content, answer, provenance) of each answer, as the export matches them.
    answered: list[tuple[str, str, dict[str, Any]]] = []
    created_at: str = Field(default_factory=now)
    updated_at: str = Field(default_factory=now)


def checked_id(conversation_id: Any) -> str:
    """`conversation_id` if it is one this store could have made; refused otherwise."""
    if not isinstance(conversation_id, str) or not _ID.fullmatch(conversation_id):
        raise NotFound("No such conversation: it may have been deleted.")
    return conversation_id


class ConversationFolder(MutableMapping[str, dict[str, Any]]):
    """One owner's conversations as JSON files in `folder`, one per id."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def _path(self, conversation_id: str) -> Path:
        return self.folder / f"{checked_id(conversation_id)}.json"

    def __getitem__(self, conversation_id: str) -> dict[str, Any]:
        path = self._path(conversation_id)
        try:
            return Conversation.model_validate_json(path.read_text(encoding="utf-8")).model_dump()
        except (OSError, ValidationError, ValueError):
            raise KeyError(conversation_id) from None

    def __setitem__(self, conversation_id: str, record: dict[str, Any]) -> None:
        write_atomically(self._path(conversation_id), Conversation(**record).model_dump_json())

    def __delitem__(self, conversation_id: str) -> None:
        try:
            self._path(conversation_id).unlink()
        except FileNotFoundError:
            raise KeyError(conversation_id) from None

    def __iter__(self) -> Iterator[str]:
        if not self.folder.is_dir():
            return iter(())
        return iter(p.stem for p in self.folder.glob("*.json") if _ID.fullmatch(p.stem))

    def __len__(self) -> int:
        return sum(1 for _ in self)


def owner_folder(root: Path, owner: str) -> Path:
    """The folder of `owner`'s conversations: named by a hash of the name, so any user name
    (slashes, dots, anything) stays one folder inside `root`."""
    return root / hashlib.sha256(owner.encode()).hexdigest()[:32]


class Conversations:
    """One owner's conversations over `records` (id -> record), keeping the `limit` most
    recently updated ones."""

    def __init__(self, records: MutableMapping[str, dict[str, Any]], limit: int) -> None:
        self.records = records
        self.limit = limit

    def listing(self) -> list[Conversation]:
        """The conversations, the most recently updated first (unreadable ones left out)."""
        return self._newest_first()[: self.limit]

    def _newest_first(self) -> list[Conversation]:
        found = []
        # A client's browser store may hold anything: at most twice the limit is read.
        for conversation_id in list(itertools.islice(self.records, 2 * self.limit)):
            try:
                found.append(Conversation(**self.records[conversation_id]))
            except (KeyError, TypeError, ValidationError):
                continue
        return sorted(found, key=lambda c: c.updated_at, reverse=True)

    def get(self, conversation_id: Any) -> Conversation:
        try:
            return Conversation(**self.records[checked_id(conversation_id)])
        except (KeyError, TypeError, ValidationError):
            raise NotFound("No such conversation: it may have been deleted.") from None

    def save(self, conversation: Conversation) -> Conversation:
        """Store `conversation` (its newest messages); the oldest beyond the limit go."""
        conversation.messages = conversation.messages[-MAX_MESSAGES:]
        shown = {message_text(m.get("content")) for m in conversation.messages}
        conversation.answered = [a for a in conversation.answered if a[0] in shown]
        conversation.updated_at = now()
        self.records[conversation.id] = conversation.model_dump()
        if len(self.records) > self.limit:  # reading every conversation only when one must go
            for old in self._newest_first()[self.limit :]:
                del self.records[old.id]
        return conversation

    def rename(self, conversation_id: Any, title: str) -> Conversation:
        conversation = self.get(conversation_id)
        if not title.strip():
            raise BadInput("A conversation needs a title.")
        conversation.title = title_of(title)
        return self.save(conversation)

    def delete(self, conversation_id: Any) -> None:
        self.get(conversation_id)  # refused if not there
        del self.records[conversation_id]
