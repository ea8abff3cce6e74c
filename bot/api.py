"""An OpenAI-compatible API beside the chat UI: `/v1/models` and `/v1/chat/completions`.

Model names are backend specs, as `kbot eval` takes them: `base`, `rag:COLLECTION`,
`lora:ADAPTER`, `full:CHECKPOINT`, `rag+lora:COLLECTION:ADAPTER`. Any OpenAI client works:
point its base URL at `http://HOST:PORT/v1`. On a signed-in server each user calls with their
own API key (`kbot users key NAME`) and sees what they may see in the UI.
"""

from __future__ import annotations

import itertools
import json
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from bot.access import Access, Scope, page_scope, server_scope
from bot.admission import Busy
from bot.evaluation.runner import available_specs
from bot.model import ModelBusy
from bot.scoped import scoped
from bot.service import ChatService, Reply
from common.errors import KbotError, NotFound, Refused
from common.text import one_line

log = logging.getLogger(__name__)


class Message(BaseModel):
    role: Literal["system", "user", "assistant", "tool", "developer"]
    content: str | list[dict[str, Any]] | None = None


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    # Clients send more (temperature, max_tokens...): the server's settings decide those.
    model_config = ConfigDict(extra="ignore")

    model: str
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


def _refusal(
    status: int, message: str, kind: str = "invalid_request_error", retry_after: int | None = None
) -> JSONResponse:
    """An error as OpenAI's clients read it."""
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    body = {"error": {"message": message, "type": kind, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


def _failure(error: BaseException) -> JSONResponse:
    """Any error of an answer as an OpenAI error object, with the status that fits it."""
    if isinstance(error, Busy):
        return _refusal(429, str(error), "rate_limit_exceeded", error.retry_after)
    if isinstance(error, ModelBusy):
        return _refusal(503, str(error), "server_busy", 60)
    if isinstance(error, NotFound):
        return _refusal(404, str(error))
    if isinstance(error, Refused):
        return _refusal(403, str(error), "permission_denied")
    if isinstance(error, KbotError):
        return _refusal(400, str(error))
    log.error("An API request failed", exc_info=error)
    reason = one_line(str(error)) or type(error).__name__
    return _refusal(500, f"The answer failed: {reason}.", "server_error")


def openai_router(service: ChatService, access: Access) -> APIRouter:
    """The routes, answering through `service` with the rights `access` gives each caller.
    Requests are admitted as the chat page's are (`Resources.admission`): a caller past their
    share, or a server past its queue, gets 429 with Retry-After."""
    router = APIRouter(prefix="/v1")
    admission = service.resources.admission

    def caller(request: Request) -> tuple[ChatService, str | None] | JSONResponse:
        """The service as the caller may use it (on a signed-in server, by API key), and whom
        the request counts against."""
        scope, user = server_scope(access), None
        if access.hf_sign_in:  # keys belong to a users file: here the API is a visitor's
            scope = page_scope(access)
        elif access.mode == "signed-in" and access.users is not None:
            header = request.headers.get("authorization", "")
            key = header.removeprefix("Bearer ").strip()
            user = access.users.user_of_key(key) if key else None
            if user is None:
                return _refusal(401, "A valid API key is needed: `kbot users key NAME`.", "auth")
            scope = Scope(user, admin=access.users.role(user) == "admin")
        chat = ChatService(scoped(service.resources, scope), service.registry)
        return chat, access.caller_key(request, user)

    @router.get("/models", response_model=None)
    def models(request: Request) -> dict[str, Any] | JSONResponse:
        called = caller(request)
        if isinstance(called, JSONResponse):
            return called
        return {
            "object": "list",
            "data": [
                {"id": spec, "object": "model", "created": 0, "owned_by": "kbot"}
                for spec in available_specs(called[0])
            ],
        }

    @router.post("/chat/completions", response_model=None)
    def completions(body: ChatRequest, request: Request) -> JSONResponse | StreamingResponse:
        called = caller(request)
        if isinstance(called, JSONResponse):
            return called
        chat, key = called
        history = [m.model_dump() for m in body.messages if m.role in ("user", "assistant")]
        if not history or history[-1]["role"] != "user":
            return _refusal(400, "The last message must be the user's.")
        question = _text(history.pop()["content"])
        try:
            release = admission.enter(key)
        except Busy as error:
            return _failure(error)
        try:
            backend, options = chat.registry.parse_spec(body.model)
            replies = chat.reply(question, history, backend.id, options)
            first = last = next(replies)  # a bad model or option fails here, before any answer
            if not body.stream:
                *_, last = [first, *replies]
        except Exception as error:
            release()
            return _failure(error)
        except BaseException:
            release()
            raise
        envelope = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time())}
        envelope["model"] = body.model
        if not body.stream:
            release()
            return JSONResponse(_completion(envelope, last))
        usage = bool(body.stream_options and body.stream_options.include_usage)
        return StreamingResponse(
            _chunks(envelope, first, replies, usage, release), media_type="text/event-stream"
        )

    return router


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return content or ""


def _usage(reply: Reply) -> dict[str, int]:
    return {
        "prompt_tokens": reply.prompt_tokens,
        "completion_tokens": reply.tokens,
        "total_tokens": reply.prompt_tokens + reply.tokens,
    }


def _provenance(reply: Reply) -> dict[str, Any]:
    """Where the answer came from (`bot/provenance.py`), beside the standard fields: clients
    ignore what they do not know."""
    return reply.provenance or {"backend": reply.backend}


def _completion(envelope: dict[str, Any], reply: Reply) -> dict[str, Any]:
    return envelope | {
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.answer},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(reply),
        "kbot": _provenance(reply),
    }


def _chunks(
    envelope: dict[str, Any],
    first: Reply,
    replies: Generator[Reply],
    usage: bool,
    release: Callable[[], None],
) -> Iterator[str]:
    """Server-sent events as OpenAI streams them: the answer's new text in each chunk, then
    a chunk with the finish reason (and the usage when asked), then [DONE]. A client that goes
    away closes this generator, which stops the generation."""

    def event(choices: list[dict[str, Any]], **more: Any) -> str:
        chunk = envelope | {"object": "chat.completion.chunk", "choices": choices} | more
        return f"data: {json.dumps(chunk)}\n\n"

    def delta(text: str) -> str:
        return event([{"index": 0, "delta": {"content": text}, "finish_reason": None}])

    try:
        yield event([{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}])
        sent, last = 0, first
        for reply in itertools.chain([first], replies):
            # Growing snapshots stream their new text; a reply that is done at once (an empty
            # or too long message) is sent whole.
            text = reply.answer[sent:] if not reply.done else ("" if sent else reply.answer)
            if text:
                sent += len(text)
                yield delta(text)
            last = reply
        yield event([{"index": 0, "delta": {}, "finish_reason": "stop"}], kbot=_provenance(last))
        if usage:
            yield event([], usage=_usage(last))
    except Exception as error:  # after the headers: the error goes in the stream, as OpenAI's
        yield f"data: {bytes(_failure(error).body).decode()}\n\n"
    finally:
        replies.close()
        release()
    yield "data: [DONE]\n\n"


def mount_api(app: Any, service: ChatService, access: Access) -> None:
    """Serve the API beside a launched Gradio app (`app.app` is its FastAPI server). Routes
    added after start are matched like the others: Gradio has no catch-all route."""
    app.app.include_router(openai_router(service, access))
