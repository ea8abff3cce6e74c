"""The Gradio front end: a thin layer that maps widgets onto `ChatService`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components.chatbot import ExampleMessage

from bot.access import Access, page_scope
from bot.admission import Busy
from bot.backends.summary import SummaryBackend
from bot.evaluation.scoring import normalize_answer
from bot.jobs import Jobs
from bot.model import ModelBusy
from bot.provenance import (
    answer_provenance,
    conversation_json,
    conversation_markdown,
    conversation_turns,
    message_text,
)
from bot.scoped import scoped
from bot.service import EVIDENCE_HEADING, ChatService, Reply, too_long
from bot.sessions import Sessions
from bot.ui.common import caller_view, download_folder, one_line_errors
from bot.ui.compare import compare_tab
from bot.ui.conversations import ANSWERED, ConversationList, after_each_call, answered_of
from bot.ui.knowledge import knowledge_tab
from bot.ui.options import OptionControls
from bot.ui.train import train_tab
from bot.uploads import UploadGuard, Uploads
from common.errors import KbotError
from common.text import counted, literal_markdown, one_line, plain_snippet
from knowledge.reading import NOT_IN_DOCUMENTS

DEFAULT_BACKEND = "base"
LOCAL = Access("local")
CHAT_CONCURRENCY = 8  # answers generated at once; more wait in the queue
# Beside escaping document text: the page loads images and media from this server alone, so
# a remote image in a document is never fetched by a visitor's browser. Sent as an HTTP header
# on every response (`server_options`) and, for pages saved or proxied without it, in the page.
POLICY = "img-src 'self' data: blob:; media-src 'self' data: blob:; object-src 'none'"
CONTENT_POLICY = f'<meta http-equiv="Content-Security-Policy" content="{POLICY}">'


class ContentPolicyHeader:
    """ASGI middleware: the content policy as a header of every HTTP response."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_policy(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", POLICY.encode()))
                message = message | {"headers": headers}
            await send(message)

        await self.app(scope, receive, with_policy)


_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-f]+>")


class PlainJoinErrors:
    """ASGI middleware: Gradio refuses a malformed call of an event that has a validator (too
    few inputs, a server path as a file) at the queue's door with the exception's own text,
    component reprs and server paths included, whatever `show_error` says. That refusal (400)
    keeps its words, as one line without them."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].endswith("/queue/join"):
            return await self.app(scope, receive, send)
        refused: dict[str, Any] = {}
        body = bytearray()

        async def plain(message: dict) -> None:
            if message["type"] == "http.response.start" and message["status"] == 400:
                refused.update(message)
                return
            if not refused:
                return await send(message)
            body.extend(message.get("body", b""))
            if message.get("more_body"):
                return
            try:
                detail = str(json.loads(body).get("detail", ""))
            except (ValueError, AttributeError):
                detail = ""
            said = one_line(_OBJECT_REPR.sub("…", detail)) or "Malformed request."
            text = json.dumps({"detail": said}).encode()
            headers = [(k, v) for k, v in refused["headers"] if k.lower() != b"content-length"]
            headers.append((b"content-length", str(len(text)).encode()))
            await send(refused | {"headers": headers})
            await send({"type": "http.response.body", "body": text})

        await self.app(scope, receive, plain)


def server_options(access: Access, uploads: Uploads) -> dict[str, Any]:
    """FastAPI options of the served app (Gradio's `app_kwargs`): the content policy header,
    each signed-in user's uploads their own, and no schema or docs pages, which would list
    every route to anyone."""
    from starlette.middleware import Middleware

    middleware = [Middleware(ContentPolicyHeader), Middleware(PlainJoinErrors)]
    if access.mode == "signed-in":
        middleware.append(Middleware(UploadGuard, access=access, uploads=uploads))
    return {"middleware": middleware, "openapi_url": None, "docs_url": None, "redoc_url": None}


def _info_line(reply: Reply, backend_name: str) -> str:
    # A reply the model did not write (a summary of stored sentences) has no token count.
    tokens = f" · {counted(reply.tokens, 'token')}" if reply.tokens else ""
    waited = f" (waited {reply.queue_s:.1f} s for the model)" if reply.queue_s >= 0.5 else ""
    return f"{backend_name}{tokens} · {reply.latency_s:.1f} s{waited}"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~])")


def escape_markdown(text: str) -> str:
    """Document text shown as plain text: markup in a document (a remote image, a link, a
    heading) is not rendered, so it can neither load anything nor pose as the app's own."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", " ".join(text.split()))


def _where(item: dict[str, Any]) -> str:
    where = Path(item.get("source", "?")).name
    return where + (f", {item['location']}" if item.get("location") else "")


def _sources_markdown(sources: list[dict[str, Any]]) -> str:
    lines = []
    # Ranked, without scores: a reranker's score (-2.64) means nothing to a reader.
    for number, source in enumerate(sources, start=1):
        snippet = escape_markdown(plain_snippet(str(source.get("text", ""))))
        lines.append(f"**[{number}]** {escape_markdown(_where(source))}  \n{snippet}")
    return "\n\n".join(lines)


def _evidence_markdown(evidence: list[dict[str, Any]]) -> str:
    """The sentences the answer rests on, under it, each with its source and passage."""
    lines = [
        f"> {escape_markdown(item['text'])} — *{escape_markdown(_where(item))}* "
        f"\\[{item['passage']}\\]"
        for item in evidence
    ]
    return f"\n\n{EVIDENCE_HEADING}\n" + "\n>\n".join(lines) if lines else ""


def supporting(answer: str, evidence: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The sentences an answer was taken from: those that hold it word for word, where any do
    (the reader copies a phrase), else all that were read (an answer in other words). The
    reply's provenance keeps every sentence read."""
    said = normalize_answer(answer)
    holding = [e for e in evidence if said and f" {said} " in f" {normalize_answer(e['text'])} "]
    return holding or evidence


def render_reply(reply: Reply, backend_name: str) -> str | list[dict[str, Any]]:
    """While streaming: the text so far. At the end: the answer, then a small info line
    naming the backend (with the sources, when there are any, folded inside it)."""
    if not reply.done:
        return reply.answer
    searched = f"Searched for: *{escape_markdown(reply.searched)}*\n\n" if reply.searched else ""
    info = {
        "role": "assistant",
        "content": searched
        + (_sources_markdown(reply.sources) or "Answered without retrieved sources."),
        "metadata": {"title": _info_line(reply, backend_name), "status": "done"},
    }
    # A refusal rests on nothing: the statements read are not shown as if they supported it.
    declined = reply.answer.strip() == NOT_IN_DOCUMENTS
    shown = [] if declined else supporting(reply.answer, reply.evidence)
    answer = reply.answer + _evidence_markdown(shown)
    return [{"role": "assistant", "content": answer}, info]


def cannot_answer(
    reason: str, advice: str = "Not answered: change the choice in the sidebar and send it again."
) -> list[dict[str, Any]]:
    """Why a message was not answered, as a line in the conversation: the history stays in
    view, and the model never sees the line (info lines are left out of its history)."""
    return [
        {
            "role": "assistant",
            "content": advice,
            "metadata": {"title": f"⚠️ {reason}", "status": "done"},
        }
    ]


def welcome(collections: list[str] | None, tools: bool) -> str:
    """What an empty chat shows: what the bot does and the next step, for this caller (whose
    `collections` are None until the page knows who it is)."""
    lines = ["### Ask your own documents", ""]
    if collections is None:
        lines.append(
            "Choose a backend in the sidebar: **RAG (retrieval)** answers from a collection "
            "of documents, quoting the sentences it rests on."
        )
    elif collections:
        listed = ", ".join(f"**{literal_markdown(name)}**" for name in collections[:8])
        more = f" and {len(collections) - 8} more" if len(collections) > 8 else ""
        lines.append(
            f"Your collections: {listed}{more}. Choose **RAG (retrieval)** and a collection in "
            "the sidebar, then ask: answers quote the sentences they rest on and cite sources."
        )
    elif tools:
        lines.append(
            "1. Add documents (PDF, Markdown, text, HTML, Word, CSV) in the **Knowledge** tab.\n"
            "2. Choose **RAG (retrieval)** and the collection in the sidebar, then ask: answers "
            "quote the sentences they rest on and cite sources."
        )
    else:
        lines.append("No document collections are shared on this server yet.")
    if tools:
        lines += [
            "",
            "Or teach the model with a LoRA adapter in **Train**, and measure which way answers "
            "best in **Compare**. The **Base model** answers from what it already knows.",
        ]
    return "\n".join(lines)


EXAMPLE_COLLECTIONS = 3
ABOUT_COLLECTION = "What is this collection about?"


def example_questions(collections: list[str]) -> list[ExampleMessage] | None:
    """What an empty chat offers to ask: what each of the caller's first collections is about,
    which the Summary backend answers from the whole collection (retrieval would see only the
    few passages nearest the words of the question)."""
    shown = collections[:EXAMPLE_COLLECTIONS]
    return [
        {"text": ABOUT_COLLECTION, "display_text": f"What is {n} about?"} for n in shown
    ] or None


# On a phone the open sidebar covers the whole chat: it starts closed there (its toggle stays).
CLOSE_SIDEBAR_ON_PHONES = """() => {
  if (!window.matchMedia('(max-width: 768px)').matches) return;
  const toggle = document.querySelector('.sidebar.open .toggle-button');
  if (toggle) toggle.click();
}"""


def waiting(state: str) -> list[dict[str, Any]]:
    """What an answer not begun is waiting for, shown where it will appear (ends with "…")."""
    return [{"role": "assistant", "content": "", "metadata": {"title": state, "status": "pending"}}]


STOPPED = "⏹️ Stopped: the answer above is incomplete"


def stopped_history(history: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """The history of an answer stopped while it was written, with an info line saying so
    (the model never sees info lines, so the next answer is not told about it); None when
    no answer was being written."""
    last = history[-1] if history else {}
    meta = last.get("metadata") or {}
    waited = meta.get("status") == "pending"  # stopped before its first word
    if last.get("role") != "assistant" or (meta.get("title") and not waited):
        return None  # finished (its info line came) or not started
    line = {"role": "assistant", "content": "", "metadata": {"title": STOPPED, "status": "done"}}
    return [*(history[:-1] if waited else history), line]


def unwrap_single(values: list[Any]) -> Any:
    """Gradio takes a bare value, not a one-item list, for an event with one output."""
    return values[0] if len(values) == 1 else values


def build_app(service: ChatService, access: Access = LOCAL) -> gr.Blocks:
    """The chat, plus the Knowledge, Train and Compare tabs unless `access` is chat-only."""
    backends = list(service.registry)
    names = {backend.id: backend.name for backend in backends}
    admission = service.resources.admission

    # What the page holds before its user is known: on a signed-in server, shared data only.
    shared = ChatService(scoped(service.resources, page_scope(access)), service.registry)

    def chat(
        message: str,
        history: list[dict[str, Any]],
        backend: str,
        options: dict[str, Any] | None,
        request: gr.Request,
    ) -> Iterator[str | list[dict[str, Any]]]:
        view = caller_view(service.resources, access, request)
        answering = ChatService(view, service.registry)
        try:
            with admission.admit(access.caller_key(request)):
                others = admission.in_flight() - 1
                if others:
                    yield waiting(f"Waiting: {counted(others, 'other answer')} being written…")
                read = False
                for reply in answering.reply(message, history, backend, options):
                    if not reply.done and not reply.answer:
                        if reply.sources and not read:  # retrieved; the model reads now
                            read = True
                            yield waiting(f"Reading {counted(len(reply.sources), 'passage')}…")
                        continue
                    shown = render_reply(reply, names[reply.backend])
                    if reply.done and isinstance(shown, list):
                        answered = (shown[0]["content"], reply.answer, reply.provenance)
                        answered_of(sessions, request).append(answered)
                    yield shown
        except (Busy, ModelBusy) as error:
            yield cannot_answer(str(error), "Not answered: the server is busy. Send it later.")
        except KbotError as error:
            yield cannot_answer(str(error))

    limit = service.resources.settings.max_message_chars

    def message_problem(message: str | None) -> dict[str, Any]:
        text = (message or "").strip()
        refusal = too_long(text, limit)
        if refusal:
            return gr.validate(False, refusal)
        return gr.validate(bool(text), "")

    # Per browser session: the provenance of its answers (for exports), a running training's
    # or comparison's cancel switch; gone when the page closes.
    sessions = Sessions(access)

    def mark_stopped(
        history: list[dict[str, Any]],
        backend_id: str,
        chosen: dict[str, Any] | None,
        request: gr.Request,
    ) -> Any:
        """A stopped answer is marked, and exported with where it came from."""
        marked = stopped_history(history)
        if marked is None:
            return gr.skip()
        partial = message_text(history[-1].get("content"))  # empty if stopped while waiting
        if partial:
            view = caller_view(service.resources, access, request)
            chosen_backend = service.registry.get(backend_id)
            parsed = chosen_backend.parse_options(chosen).model_dump()
            reply = Reply(backend=chosen_backend.id, answer=partial)
            origin = answer_provenance(view, chosen_backend.id, parsed, reply) | {"stopped": True}
            answered_of(sessions, request).append((partial, partial, origin))
        return marked

    def forget_session(request: gr.Request) -> None:
        sessions.forget(request)

    def export(history: list[dict[str, Any]], request: gr.Request) -> list[str]:
        turns = conversation_turns(history or [], list(sessions.get(request, ANSWERED) or ()))
        if not turns:
            raise gr.Error("Nothing to export yet: ask something first.")
        folder = download_folder(kept_s)
        (folder / "conversation.json").write_text(conversation_json(turns), encoding="utf-8")
        (folder / "conversation.md").write_text(conversation_markdown(turns), encoding="utf-8")
        return [str(folder / "conversation.json"), str(folder / "conversation.md")]

    # Uploaded files and results handed to browsers are deleted once this old.
    kept_s = service.resources.settings.upload_minutes * 60
    with gr.Blocks(title="Knowledge Bot", delete_cache=(kept_s, kept_s)) as app:
        with gr.Sidebar(open=True):
            gr.Markdown("## Knowledge Bot")
            if access.hf_sign_in:
                gr.LoginButton(elem_id="hf-sign-in")  # Gradio adds the OAuth routes for it
            conversations = ConversationList(service.resources, access, sessions, service.registry)
            backend = gr.Dropdown(
                choices=[(b.name, b.id) for b in backends],
                value=DEFAULT_BACKEND,
                label="Backend",
                info="Belongs to this conversation; other tabs keep their own.",
                elem_id="backend",
                allow_custom_value=True,  # so an unknown id gets our error, naming the choices
            )
            description = gr.Markdown(service.registry.get(DEFAULT_BACKEND).description)
            controls = OptionControls(backends, shared.resources, DEFAULT_BACKEND)
            # The options of the selected backend, as one JSON value: the API takes it as-is.
            options = gr.JSON(value={}, visible=False, label="options")

        with gr.Tab("Chat"):
            chatbot = gr.Chatbot(
                elem_id="chatbot",
                label="Conversation",
                height="65vh",
                # The caller's own collections come on load (`greet`), never in the page.
                placeholder=welcome(None, access.tools),
            )
            chat_ui = gr.ChatInterface(
                one_line_errors(chat),
                additional_inputs=[backend, options],
                chatbot=chatbot,
                textbox=(
                    message_box := gr.Textbox(
                        elem_id="message",
                        placeholder="Ask something…",
                        label="Message",  # named beside a refused message
                        show_label=False,
                        submit_btn=True,
                        stop_btn=True,
                    )
                ),
                api_name="chat",
                # In the browser, an empty send does nothing and a refused message stays in
                # the box, said why beside it (the API still answers either with a reply).
                validator=message_problem,
                # Requests pass straight to `chat`, whose admission turns a caller past their
                # share away at once; Gradio's queue would hold them in one line, where one
                # caller's flood keeps everyone else waiting or refused.
                concurrency_limit=service.resources.settings.queue_size,
                fill_height=True,
            )
            stopped = message_box.stop(
                one_line_errors(mark_stopped),
                [chatbot, backend, options],
                chatbot,
                api_visibility="private",
            )
            with gr.Accordion("Export this conversation", open=False):
                gr.Markdown(
                    "JSON and Markdown, each answer with where it came from: backend, model, "
                    "collection and its version, adapter and its training data, sources."
                )
                exporting = gr.Button("Export", size="sm", elem_id="export")
                exported = gr.File(file_count="multiple", label="Files", elem_id="export-files")
            exporting.click(one_line_errors(export), chatbot, exported, api_visibility="private")
            app.unload(one_line_errors(forget_session))
        app.load(None, None, None, js=CLOSE_SIDEBAR_ON_PHONES)

        documents_changed: list[Any] = []
        if access.tools:
            jobs = Jobs(service.resources, access)
            documents_changed = knowledge_tab(
                service.resources, access, controls.dropdowns, controls.refreshed_choices
            )
            train_tab(
                service.resources,
                access,
                controls.dropdowns,
                controls.refreshed_choices,
                sessions,
                jobs,
            )
            compare_tab(service, access, sessions, jobs)

        def on_backend(backend_id: str, *values: Any) -> list[Any]:
            return [
                service.registry.get(backend_id).description,
                controls.options_for(backend_id, *values),
                *controls.visibility(backend_id),
            ]

        backend.change(
            one_line_errors(on_backend),
            [backend, *controls.components],
            [description, options, *controls.groups.values()],
            api_visibility="private",
        )
        for control in controls.components:
            control.change(
                one_line_errors(controls.options_for),
                [backend, *controls.components],
                options,
                api_visibility="private",
            )

        def follow(request: gr.Request, *values: Any) -> Any:
            view = caller_view(service.resources, access, request)
            return unwrap_single(controls.dependent_choices(view, *values))

        following = {
            "fn": one_line_errors(follow),
            "inputs": controls.components,
            "outputs": controls.dependents,
            "api_visibility": "private",
        }
        for parent in controls.parents:
            parent.change(**following)
        for event in documents_changed if controls.dependents else ():
            event.then(**following)

        def greet(request: gr.Request) -> Any:
            collections = caller_view(service.resources, access, request).knowledge.collections()
            return gr.Chatbot(
                placeholder=welcome(collections, access.tools),
                examples=example_questions(collections),
            )

        app.load(one_line_errors(greet), None, chatbot, api_visibility="private")

        def try_example(selected: gr.SelectData, request: gr.Request) -> list[Any]:
            """An example sets up its backend and collection and puts its question in the box,
            to be sent (or changed first)."""
            view = caller_view(service.resources, access, request)
            names = view.knowledge.collections()[:EXAMPLE_COLLECTIONS]
            index = selected.index
            if not isinstance(index, int) or not 0 <= index < len(names):
                return [gr.skip()] * (2 + len(controls.components))
            chosen = {"collection": names[index]}
            summary = SummaryBackend.id
            return [summary, *controls.restored(view, summary, chosen), ABOUT_COLLECTION]

        chatbot.example_select(
            one_line_errors(try_example),
            None,
            [backend, *controls.components, message_box],
            api_visibility="private",
        )
        # Saved when the chat settles: after the chat's own save step (each answer, retry,
        # undo, edit and clear) and after a Stop.
        settled = [stopped.then]
        for step in (chat_ui._save_conversation, chat_ui._delete_conversation):
            settled += after_each_call(app, step, chatbot)
        conversations.wire(chatbot, chat_ui.chatbot_state, backend, options, controls, settled)
        restoring = {
            "fn": conversations.restore,
            "inputs": [conversations.open_id, conversations.saved],
            "outputs": conversations.restore_outputs,
            "api_visibility": "private",
        }
        if controls.dropdowns:

            def fill_choices(request: gr.Request) -> Any:
                view = caller_view(service.resources, access, request)
                return unwrap_single(controls.refreshed_choices(view, page_opened=True))

            # The open conversation's options are set once the choices are the caller's, and
            # lists that follow an option (a collection's documents) once those are set.
            loaded = app.load(
                one_line_errors(fill_choices), None, controls.dropdowns, api_visibility="private"
            ).then(**restoring)
            if controls.dependents:
                loaded.then(**following)
        else:
            app.load(**restoring)
    unguarded = [
        getattr(handler.fn, "__qualname__", "?")
        for handler in app.fns.values()
        if getattr(handler.fn, "__module__", "").startswith("bot.")
        and not getattr(handler.fn, "one_line", False)
    ]
    # Every handler of ours is registered as `one_line_errors(handler)`: checked here, at
    # build time, so a new one without it fails every test that builds the app.
    assert not unguarded, f"Register these as one_line_errors(handler): {unguarded}"
    return app
