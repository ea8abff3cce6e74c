"""Each signed-in user's uploads are theirs.

Gradio keeps uploaded files in one cache and serves any of them at `/gradio_api/file=PATH`
to whoever names the path, and its handlers take any cached path as a file input. On a
signed-in server, a user who learns another's upload path could then fetch or ingest it.
`UploadGuard` (ASGI middleware) notes who sent each upload and answers a download of it to
that person alone; the handlers that read uploaded files take only the caller's own
(`Uploads.own`).
"""

from __future__ import annotations

import json
import os
import threading
from collections import OrderedDict
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote

from bot.access import Access, AccessDenied, hf_username

UPLOAD_ROUTE = "/gradio_api/upload"
FILE_ROUTE = "/gradio_api/file="


class Uploads:
    """Who sent each upload, for the newest `limit` uploads (older ones are gone from the
    cache by then: `KBOT_UPLOAD_MINUTES`)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._owners: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()
        self.limit = limit

    def record(self, paths: list[str], owner: str) -> None:
        with self._lock:
            for path in paths:
                self._owners[os.path.abspath(path)] = owner
            while len(self._owners) > self.limit:
                self._owners.popitem(last=False)

    def owner(self, path: str) -> str | None:
        with self._lock:
            return self._owners.get(os.path.abspath(path))

    def own(self, paths: list[str], user: str) -> list[Path]:
        """`paths` if each is an upload of `user`'s; else `AccessDenied`, naming no path."""
        for path in paths:
            if self.owner(path) != user:
                raise AccessDenied(
                    f"{Path(path).name}: not a file you uploaded. Upload it again from this page."
                )
        return [Path(path) for path in paths]


def own_uploads(
    uploads: Uploads, access: Access, request: Any, paths: list[str] | None
) -> list[Path]:
    """The uploaded files a handler was given, if they are the caller's own: on a signed-in
    server, a path another user uploaded (or any other cached file) is refused."""
    paths = [str(path) for path in paths or []]
    if access.mode != "signed-in":
        return [Path(path) for path in paths]
    caller = access.caller(request)
    return uploads.own(paths, caller[0] if caller else "")


def signed_in_user(access: Access, scope: dict[str, Any]) -> str:
    """The signed-in user of an HTTP request, as Gradio knows it ("" for visitors)."""
    from starlette.requests import Request

    request = Request(scope)
    if access.hf_sign_in:
        return hf_username(SimpleNamespace(request=request)) or ""
    app = scope.get("app")
    cookie_id = getattr(app, "cookie_id", "")
    token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
        f"access-token-unsecure-{cookie_id}"
    )
    return (getattr(app, "tokens", None) or {}).get(token) or ""


class UploadGuard:
    """ASGI middleware of a signed-in server: records who sent each upload, and answers a
    download of an upload to its sender alone (404 to others, as for a file that is not)."""

    def __init__(self, app: Any, access: Access, uploads: Uploads) -> None:
        self.app = app
        self.access = access
        self.uploads = uploads

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if path.endswith(UPLOAD_ROUTE) and scope.get("method") == "POST":
            return await self._record(scope, receive, send)
        if FILE_ROUTE in path:
            requested = unquote(path.split(FILE_ROUTE, 1)[1])
            owner = self.uploads.owner(requested)
            if owner is not None and owner != signed_in_user(self.access, scope):
                return await _not_found(send)
        await self.app(scope, receive, send)

    async def _record(self, scope: dict, receive: Any, send: Any) -> None:
        body = bytearray()
        status = {"code": 0}

        async def noting(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            elif message["type"] == "http.response.body":
                body.extend(message.get("body", b""))
                if not message.get("more_body") and status["code"] == 200:
                    paths = json.loads(bytes(body) or b"[]")
                    if isinstance(paths, list):
                        owner = signed_in_user(self.access, scope)
                        self.uploads.record([str(p) for p in paths], owner)
            await send(message)

        await self.app(scope, receive, noting)


async def _not_found(send: Any) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 404,
            "headers": [(b"content-type", b"text/plain; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": b"File not found."})
