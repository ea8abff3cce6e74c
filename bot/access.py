"""Who may do what on a served app.

Four ways to serve, decided once at start (`decide_access`):
  * local: on a loopback address without sign-in; the one person at the machine may do all.
  * signed-in: `KBOT_AUTH` names a users file; everyone signs in, and each user's role says
    what they may do (admins: ingest, forget, train, write questions, run comparisons).
  * chat-only: reachable by others (a share link, a non-loopback host) without sign-in. The
    Knowledge, Train and Compare tabs are not built at all, so their handlers do not exist.
  * open: the same, with every tab, because the operator said so (`--unsafe-public`).
Handlers check rights themselves (`Access.require`): a hidden button is no protection, since
anyone can call a handler over HTTP.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from common.files import write_atomically
from common.names import InvalidNameError, validate_name

log = logging.getLogger(__name__)

Role = Literal["admin", "user"]
Mode = Literal["local", "signed-in", "chat-only", "open"]

# scrypt from the standard library: a memory-hard password hash with no extra dependency
# (passlib, the usual wrapper, has had no release since 2020). 16 MiB and ~50 ms per check.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


# Checked against for unknown names: a well-formed hash that no password matches.
_NO_USER = f"scrypt${'00' * 16}${'00' * 64}"


class AccessDenied(PermissionError):
    """The caller may not do this; the message says what it takes."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def password_matches(stored: str, password: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        computed = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    except ValueError:
        return False
    return hmac.compare_digest(computed.hex(), digest)


class User(BaseModel):
    role: Role
    password: str  # the scrypt hash, never the password
    api_key: str | None = None  # the SHA-256 of the user's API key, never the key


def _key_digest(key: str) -> str:
    # API keys are 32 random bytes: a fast hash is enough (a slow one guards weak passwords).
    return hashlib.sha256(key.encode()).hexdigest()


class Users(BaseModel):
    """The users file (`KBOT_AUTH`): names, roles and password hashes."""

    users: dict[str, User] = {}

    @classmethod
    def read(cls, path: Path) -> Users:
        if not path.is_file():
            raise FileNotFoundError(f"KBOT_AUTH={str(path)!r}: no users file there.")
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def write(self, path: Path) -> None:
        write_atomically(path, self.model_dump_json(indent=1), durable=True)
        path.chmod(0o600)  # hashes only, but nobody else needs to read them

    def add(self, name: str, password: str, role: Role) -> None:
        if not name.strip() or len(password) < 8:
            raise ValueError("A user needs a name and a password of at least 8 characters.")
        self.users[name.strip()] = User(role=role, password=hash_password(password))

    def check(self, name: str, password: str) -> bool:
        """Gradio's sign-in check. Unknown names cost one hash too, so timing tells nothing."""
        user = self.users.get(name)
        stored = user.password if user else _NO_USER
        return password_matches(stored, password) and user is not None

    def new_api_key(self, name: str) -> str:
        """A new API key for user `name` (replacing any earlier one); only its hash is kept."""
        if name not in self.users:
            raise LookupError(f"No user {name!r}.")
        key = "kbot-" + secrets.token_urlsafe(32)
        self.users[name].api_key = _key_digest(key)
        return key

    def user_of_key(self, key: str) -> str | None:
        """The user whose API key `key` is, or None."""
        digest = _key_digest(key)
        for name, user in self.users.items():
            if user.api_key and hmac.compare_digest(user.api_key, digest):
                return name
        return None

    def role(self, name: str | None) -> Role | None:
        user = self.users.get(name or "")
        return user.role if user else None

    def listing(self) -> list[dict[str, Any]]:
        return [{"name": name, "role": user.role} for name, user in sorted(self.users.items())]


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Access:
    mode: Mode
    users: Users | None = None

    @property
    def tools(self) -> bool:
        """Whether the Knowledge, Train and Compare tabs (and their handlers) exist."""
        return self.mode != "chat-only"

    def require(self, request: Any, action: str) -> None:
        """Refuse `action` (a phrase: "train models") unless the caller may do it."""
        if self.mode in ("local", "open"):
            return
        if self.mode == "chat-only":
            raise AccessDenied(f"This server is chat-only: nobody may {action} here.")
        username = getattr(request, "username", None)
        if self.users is None or self.users.role(username) != "admin":
            raise AccessDenied(f"Only an admin may {action}.")


# Private collections are stored as "u<10 hex of the user's name>-<name>": one flat store, in
# which a user's names never meet another's. Shared names may not take that form.
_PRIVATE = re.compile(r"u[0-9a-f]{10}-(.+)")


@dataclass(frozen=True)
class Scope:
    """Whose data a request sees and may change.
    Everyone (`user` None: a local or open server) and admins work on the shared data; a user
    works on their own private data and reads the shared data."""

    user: str | None = None
    admin: bool = True

    @property
    def prefix(self) -> str | None:
        """What this user's private names start with where stored (None: works on shared)."""
        if self.user is None or self.admin:
            return None
        return f"u{hashlib.sha256(self.user.encode()).hexdigest()[:10]}-"

    def stored(self, name: str) -> str:
        """Where a collection this caller creates or changes under `name` is stored."""
        name = validate_name(name)
        if self.prefix is None:
            if _PRIVATE.fullmatch(name):
                raise InvalidNameError(f"Invalid collection name {name!r}: reserved.")
            return name
        return validate_name(self.prefix + name)

    def shown(self, stored: str) -> str | None:
        """The name this caller knows a stored collection by; None if it is not theirs to see."""
        if not _PRIVATE.fullmatch(stored):
            return stored
        if self.prefix and stored.startswith(self.prefix):
            return stored[len(self.prefix) :]
        return None

    def may_change(self, stored: str) -> bool:
        private = bool(_PRIVATE.fullmatch(stored))
        return stored.startswith(self.prefix) if self.prefix else not private


def page_scope(access: Access) -> Scope:
    """What a page holds before its user is known (and what admins work on): on a signed-in
    server, the shared data alone; on others, everything."""
    return Scope("", admin=True) if access.mode == "signed-in" else Scope()


def scope_of(access: Access, request: Any) -> Scope:
    """The scope of a request: signed-in users by their role, everyone else shared."""
    if access.mode != "signed-in" or access.users is None:
        return Scope()
    username = getattr(request, "username", None)
    role = access.users.role(username)
    if role is None:
        raise AccessDenied("Sign in first.")
    return Scope(username, admin=role == "admin")


def decide_access(
    host: str, share: bool, auth_file: Path | None, unsafe_public: bool = False
) -> Access:
    if auth_file is not None:
        users = Users.read(auth_file)
        if not users.users:
            raise ValueError(f"KBOT_AUTH={str(auth_file)!r} holds no users: add one first.")
        return Access("signed-in", users)
    if is_loopback(host) and not share:
        return Access("local")
    if unsafe_public:
        log.warning(
            "Serving every tab without sign-in on a public address (--unsafe-public): anyone "
            "who reaches it can ingest, delete and train."
        )
        return Access("open")
    return Access("chat-only")
