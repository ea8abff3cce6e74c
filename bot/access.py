"""Who may do what on a served app.

Four ways to serve, decided once at start (`decide_access`):
  * local: on a loopback address without sign-in; the one person at the machine may do all.
  * signed-in: `KBOT_AUTH` names a users file; everyone signs in, and each user's role says
    which data they work on (`Scope`): admins on the shared collections, adapters and
    question sets; users on private ones of their own, reading the shared ones. On a
    Hugging Face Space, `KBOT_AUTH=huggingface` signs people in with their Hugging Face
    account instead (`KBOT_ADMINS` names the admins); visitors who have not signed in may
    chat with the shared data.
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
import os
import re
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from common.errors import BadInput, NotFound, Refused
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


class AccessDenied(Refused):
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
            raise BadInput(f"KBOT_AUTH={str(path)!r}: no users file there.")
        return cls.model_validate_json(path.read_text(encoding="utf-8"))

    def write(self, path: Path) -> None:
        write_atomically(path, self.model_dump_json(indent=1), durable=True)
        path.chmod(0o600)  # hashes only, but nobody else needs to read them

    def add(self, name: str, password: str, role: Role) -> None:
        if not name.strip() or len(password) < 8:
            raise BadInput("A user needs a name and a password of at least 8 characters.")
        self.users[name.strip()] = User(role=role, password=hash_password(password))

    def check(self, name: str, password: str) -> bool:
        """Gradio's sign-in check. Unknown names cost one hash too, so timing tells nothing."""
        user = self.users.get(name)
        stored = user.password if user else _NO_USER
        return password_matches(stored, password) and user is not None

    def new_api_key(self, name: str) -> str:
        """A new API key for user `name` (replacing any earlier one); only its hash is kept."""
        if name not in self.users:
            raise NotFound(f"No user {name!r}.")
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


def client_address(request: Any) -> str:
    """The address a request comes from. Behind a proxy on this machine or its private network
    (a Space's, nginx), every request comes from the proxy: then the address it forwards is
    the client's. A client on the internet cannot pose as another this way: its own
    X-Forwarded-For is read only when the peer is such a proxy."""
    client = getattr(request, "client", None)
    peer = getattr(client, "host", None) or "unknown"
    forwarded = (getattr(request, "headers", None) or {}).get("x-forwarded-for", "")
    try:
        trusted = ipaddress.ip_address(peer).is_private  # loopback addresses are private too
    except ValueError:
        trusted = False
    if trusted and forwarded.strip():
        return forwarded.split(",")[-1].strip()  # the entry the nearest proxy appended
    return peer


# KBOT_AUTH's value for signing in with Hugging Face (Gradio's OAuth, on a Space).
HF_SIGN_IN = "huggingface"


def hf_username(request: Any) -> str | None:
    """The Hugging Face account signed in on this request's browser session, as Gradio's
    OAuth keeps it (`gr.OAuthProfile` reads the same), or None."""
    try:
        info = request.request.session.get("oauth_info") or {}
    except (AttributeError, AssertionError):  # no session: sign-in is not on
        return None
    if info.get("expires_at") is not None and info["expires_at"] < time.time():
        return None
    return (info.get("userinfo") or {}).get("preferred_username") or None


@dataclass(frozen=True)
class Access:
    mode: Mode
    users: Users | None = None
    # Signing in with Hugging Face: the accounts that are admins (everyone else is a user).
    hf_admins: frozenset[str] | None = None

    @property
    def hf_sign_in(self) -> bool:
        return self.hf_admins is not None

    def caller(self, request: Any) -> tuple[str, Role] | None:
        """Who is calling and in which role, on a signed-in server; None if not signed in."""
        if self.hf_admins is not None:
            name = hf_username(request)
            return (name, "admin" if name in self.hf_admins else "user") if name else None
        name = getattr(request, "username", None)
        role = self.users.role(name) if self.users and name else None
        return (name, role) if name and role else None

    def caller_key(self, request: Any, user: str | None = None) -> str | None:
        """Whom a request counts against for fair shares: the signed-in user (or `user`, an
        API key's), else the client's address; None on a local server, whose one person may
        use all of it."""
        if self.mode == "local":
            return None
        if user is None and self.mode == "signed-in":
            caller = self.caller(request)
            user = caller[0] if caller else None
        return f"user:{user}" if user else f"address:{client_address(request)}"

    @property
    def tools(self) -> bool:
        """Whether the Knowledge, Train and Compare tabs (and their handlers) exist."""
        return self.mode != "chat-only"

    def require(self, request: Any, action: str) -> None:
        """Refuse `action` (a phrase: "train models") unless the caller may do it here. What
        it works on is the caller's `Scope`: there a user cannot reach shared or others' data."""
        if self.mode in ("local", "open"):
            return
        if self.mode == "chat-only":
            raise AccessDenied(f"This server is chat-only: nobody may {action} here.")
        if self.caller(request) is None:
            raise AccessDenied(f"Sign in to {action}.")


# Private collections, adapters and question sets are stored as "u<10 hex of the user's
# name>-<name>": one flat store each, in which a user's names never meet another's. Shared
# names may not take that form.
_PRIVATE = re.compile(r"u[0-9a-f]{10}-(.+)")


@dataclass(frozen=True)
class Scope:
    """Whose data a request sees and may change.
    Everyone (`user` None: a local or open server) and admins work on the shared data; a user
    works on their own private data and reads the shared data."""

    user: str | None = None
    admin: bool = True
    # Visitors who have not signed in (Hugging Face sign-in): the shared data, to read only.
    read_only: bool = False

    @property
    def prefix(self) -> str | None:
        """What this user's private names start with where stored (None: works on shared)."""
        if self.user is None or self.admin:
            return None
        return f"u{hashlib.sha256(self.user.encode()).hexdigest()[:10]}-"

    def stored(self, name: str, kind: str = "collection") -> str:
        """Where a collection (or adapter, question set: `kind`) this caller creates or
        changes under `name` is stored."""
        if self.read_only:
            raise AccessDenied("Sign in to add or change anything.")
        name = validate_name(name, kind)
        if self.prefix is None:
            if _PRIVATE.fullmatch(name):
                raise InvalidNameError(f"Invalid {kind} name {name!r}: reserved.")
            return name
        return validate_name(self.prefix + name, kind)

    def shown(self, stored: str) -> str | None:
        """The name this caller knows a stored item by; None if it is not theirs to see."""
        if not _PRIVATE.fullmatch(stored):
            return stored
        if self.prefix and stored.startswith(self.prefix):
            return stored[len(self.prefix) :]
        return None

    def resolve(self, name: str, stored: Iterable[str]) -> str | None:
        """The stored name that `name` means to this caller among `stored`: their own first,
        then a shared one; None if neither exists."""
        present = set(stored)
        for candidate in (self.prefix and self.prefix + name, name):
            if candidate and candidate in present and self.shown(candidate) == name:
                return candidate
        return None

    def visible(self, stored: Iterable[str]) -> list[str]:
        """The names this caller sees among `stored`, sorted, each once."""
        return sorted({shown for shown in map(self.shown, stored) if shown})

    def folder(self, root: Path) -> Path:
        """Where this caller's own files under `root` go (reports): a user's in a folder of
        their own, the shared ones in `root` itself."""
        return root / self.prefix.rstrip("-") if self.prefix else root

    def may_change(self, stored: str) -> bool:
        if self.read_only:
            return False
        private = bool(_PRIVATE.fullmatch(stored))
        return stored.startswith(self.prefix) if self.prefix else not private


def page_scope(access: Access) -> Scope:
    """What a page holds before its user is known: the shared data alone, read-only on a
    signed-in or chat-only server."""
    if access.mode == "signed-in":
        return Scope("", admin=True, read_only=True)
    return server_scope(access)


def server_scope(access: Access) -> Scope:
    """The scope of everyone on a server without users: the shared data, never a user's private
    data (a data folder that signed-in users filled may later be served without users)."""
    return Scope(read_only=access.mode == "chat-only")


def scope_of(access: Access, request: Any) -> Scope:
    """The scope of a request: signed-in users by their role, everyone else shared."""
    if access.mode != "signed-in":
        return server_scope(access)
    caller = access.caller(request)
    if caller is None and access.hf_sign_in:
        return page_scope(access)
    if caller is None:
        raise AccessDenied("Sign in first.")
    name, role = caller
    return Scope(name, admin=role == "admin")


def decide_access(
    host: str,
    share: bool,
    auth_file: Path | None,
    unsafe_public: bool = False,
    admins: str = "",
) -> Access:
    if auth_file is not None and str(auth_file) == HF_SIGN_IN:
        if not os.environ.get("SPACE_ID"):
            raise BadInput(
                f"KBOT_AUTH={HF_SIGN_IN} signs in with Hugging Face accounts, which works on "
                "a Hugging Face Space (with `hf_oauth: true` in its README) only."
            )
        return Access("signed-in", hf_admins=frozenset(admins.replace(",", " ").split()))
    if auth_file is not None:
        users = Users.read(auth_file)
        if not users.users:
            raise BadInput(f"KBOT_AUTH={str(auth_file)!r} holds no users: add one first.")
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
