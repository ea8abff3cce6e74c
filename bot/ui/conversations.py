"""The sidebar's conversation list: every conversation is saved as it settles (after each
answer, a Stop, an undo or a retry), can be reopened with its backend and options, renamed and
deleted, and the open one comes back on reload. Known users' conversations are kept under
KBOT_HOME (`bot/conversations.py`), anonymous visitors' in their own browser."""

from __future__ import annotations

import functools
import secrets
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.events import EventListener

from bot.access import Access
from bot.backends import BackendRegistry
from bot.conversations import (
    Conversation,
    ConversationFolder,
    Conversations,
    owner_folder,
    title_of,
)
from bot.provenance import message_text
from bot.sessions import Sessions
from bot.ui.common import Confirmation, caller_view, checked, needs, one_line_errors
from bot.ui.options import OptionControls
from bot.views import ResourcesView
from common.errors import NotFound
from common.files import write_atomically
from common.text import friendly_time

# Browser storage holds a few megabytes: anonymous visitors keep their newest conversations.
BROWSER_CONVERSATIONS = 20
ANSWERED = "answered"  # the session's (shown, answer, provenance) list, as the export reads it


def answered_of(sessions: Sessions, request: Any) -> deque:
    """The session's (shown, answer, provenance) of its answers, newest last (bounded)."""
    return sessions.setdefault(request, ANSWERED, lambda: deque(maxlen=500))


def conversation_owner(access: Access, request: Any) -> str | None:
    """Whose conversations the server keeps: the local user's or a signed-in user's; None for
    an anonymous visitor, whose conversations stay in their browser."""
    if access.mode == "local":
        return "local"
    caller = access.caller(request) if access.mode == "signed-in" else None
    return caller[0] if caller else None


def browser_secret(home: Path) -> str:
    """The key browser storage is encrypted with, the same after a restart (Gradio picks a new
    one per start otherwise, and visitors' saved conversations would be lost)."""
    path = home / "browser-secret"
    if not path.is_file():
        write_atomically(path, secrets.token_hex(16))
        path.chmod(0o600)
    return path.read_text(encoding="utf-8").strip()


def first_question(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        text = message_text(message.get("content")) if message.get("role") == "user" else ""
        if text.strip():
            return text
    return ""


def kept_in_browser(store: Conversations, in_browser: bool) -> Any:
    """The browser's copy after a change: the conversations, where they live there."""
    return store.records if in_browser else gr.skip()


def continued(store: Conversations, open_id: str | None, question: str) -> Conversation:
    """The conversation a chat that began with `question` continues: the open one, unless that
    began otherwise (a save that comes late, after "New conversation", must not write one
    conversation over another), else a new one."""
    try:
        conversation = store.get(open_id)
    except NotFound:
        return Conversation(title=title_of(question))
    if first_question(conversation.messages) != question:
        return Conversation(title=title_of(question))
    return conversation


def after_each_call(app: gr.Blocks, step: Callable[..., Any], block: Any) -> list[Callable]:
    """A `.then` listener after each event of `app` that runs `step`. The chat interface
    builds its events itself and hands none back; chaining after its own steps keeps ours in
    order with them (its state is synced unqueued, and Gradio fires a State's change only
    after queued events)."""
    listeners = []
    for handler in app.fns.values():
        if handler.fn == step:
            after = EventListener(
                "then",
                trigger_after=handler._id,
                trigger_only_on_success=False,
                trigger_only_on_failure=False,
                has_trigger=False,
            )
            listeners.append(functools.partial(after.listener, block))
    assert listeners, f"no event runs {step}"
    return listeners


class ConversationList:
    """The controls (built in the sidebar) and their events (wired once the chat exists)."""

    def __init__(
        self,
        resources: ResourcesView,
        access: Access,
        sessions: Sessions,
        registry: BackendRegistry,
    ) -> None:
        settings = resources.settings
        self.root = settings.conversations_dir
        self.limit = settings.max_conversations
        self.resources = resources
        self.access = access
        self.sessions = sessions
        self.registry = registry
        secret = browser_secret(settings.home)
        self.open_id = gr.BrowserState(None, storage_key="kbot-open-conversation", secret=secret)
        self.saved = gr.BrowserState({}, storage_key="kbot-conversations", secret=secret)
        with gr.Accordion("Conversations", open=True, elem_id="conversation-list"):
            self.new = gr.Button("New conversation", size="sm", elem_id="new-conversation")
            self.listing = gr.Radio(
                choices=[], value=None, show_label=False, visible=False, elem_id="conversations"
            )
            with gr.Accordion(
                "Rename or delete", open=False, visible=False, elem_id="conversation-edit"
            ) as self.edit_box:
                self.title = gr.Textbox(label="Title", max_length=200, elem_id="conversation-title")
                with gr.Row():
                    self.rename = gr.Button("Rename", size="sm", elem_id="rename")
                    self.delete = gr.Button(
                        "Delete", size="sm", variant="stop", elem_id="delete-conversation"
                    )
                self.confirmation = Confirmation("confirm-delete", "keep-conversation")

    def store(self, request: Any, browser: Any) -> tuple[Conversations, bool]:
        """The caller's conversations, and whether they live in the browser."""
        owner = conversation_owner(self.access, request)
        if owner is not None:
            folder = ConversationFolder(owner_folder(self.root, owner))
            return Conversations(folder, self.limit), False
        records = browser if isinstance(browser, dict) else {}
        return Conversations(records, BROWSER_CONVERSATIONS), True

    def listed(self, store: Conversations, open_id: str | None) -> Any:
        choices = [(f"{c.title} · {friendly_time(c.updated_at)}", c.id) for c in store.listing()]
        value = open_id if any(i == open_id for _, i in choices) else None
        return gr.Radio(choices=choices, value=value, visible=bool(choices))

    def shown(self, conversation: Conversation | None) -> list[Any]:
        """The title, rename and delete controls for the open conversation (none: hidden)."""
        title = conversation.title if conversation else ""
        return [
            gr.Textbox(value=title),
            gr.Accordion(visible=conversation is not None),
            gr.Group(visible=False),
        ]

    def wire(
        self,
        chatbot: gr.Chatbot,
        chat_state: gr.State,
        backend: gr.Dropdown,
        options: gr.JSON,
        controls: OptionControls,
        settled: list[Any],
    ) -> None:
        """`settled`: `.then` listeners of the events after which the chat holds a
        conversation to save."""
        edits = [self.title, self.edit_box, self.confirmation.group]

        def kept(
            history: list[dict[str, Any]] | None,
            backend_id: str,
            chosen: dict[str, Any] | None,
            open_id: str | None,
            browser: Any,
            request: gr.Request,
        ) -> tuple[Conversations, bool, Conversation | None]:
            """The chat as it shows now, saved (none when it is empty)."""
            store, in_browser = self.store(request, browser)
            history = [m for m in history or [] if isinstance(m, dict)]
            question = first_question(history)
            if not question:
                return store, in_browser, None
            conversation = continued(store, open_id, question)
            if conversation.messages == history and conversation.backend == backend_id:
                return store, in_browser, conversation  # reopened as it was: nothing changed
            answered = list(self.sessions.get(request, ANSWERED) or ())
            known = {a[0] for a in conversation.answered}
            conversation.answered += [a for a in answered if a[0] not in known]
            conversation.messages, conversation.backend = history, backend_id
            conversation.options = chosen or {}
            return store, in_browser, store.save(conversation)

        def save(
            history: list[dict[str, Any]] | None,
            backend_id: str,
            chosen: dict[str, Any] | None,
            open_id: str | None,
            browser: Any,
            request: gr.Request,
        ) -> list[Any]:
            store, in_browser, conversation = kept(
                history, backend_id, chosen, open_id, browser, request
            )
            saved_id = conversation.id if conversation else None  # cleared: the next one is new
            return [
                saved_id,
                kept_in_browser(store, in_browser),
                self.listed(store, saved_id),
                *self.shown(conversation),
            ]

        chat_now = [chatbot, backend, options, self.open_id, self.saved]
        saving = {
            "fn": one_line_errors(save),
            "inputs": chat_now,
            "outputs": [self.open_id, self.saved, self.listing, *edits],
            "api_visibility": "private",
            # At once, as the chat's own steps before it run: a save waiting in a busy queue
            # would land after a "New conversation" clicked meanwhile.
            "queue": False,
        }
        for listen in settled:
            listen(**saving)

        def opened(conversation: Conversation, request: Any) -> list[Any]:
            answered_of(self.sessions, request).extend(conversation.answered)
            view = caller_view(self.resources, self.access, request)
            known = conversation.backend in self.registry.ids()
            backend_id = conversation.backend if known else None
            return [
                conversation.messages,
                conversation.messages,
                backend_id if backend_id else gr.skip(),
                *controls.restored(view, backend_id, conversation.options),
                conversation.id,
                *self.shown(conversation),
            ]

        chat_outputs = [chatbot, chat_state, backend, *controls.components, self.open_id]

        def reopen(
            listed: str | None,
            history: list[dict[str, Any]] | None,
            backend_id: str,
            chosen: dict[str, Any] | None,
            open_id: str | None,
            browser: Any,
            request: gr.Request,
        ) -> list[Any]:
            # The chat left is saved first: a click just after an answer may come before the
            # save that follows the answer.
            store, in_browser, _ = kept(history, backend_id, chosen, open_id, browser, request)
            return [
                kept_in_browser(store, in_browser),
                *opened(store.get(listed), request),
            ]

        self.listing.input(
            one_line_errors(reopen),
            [self.listing, *chat_now],
            [self.saved, *chat_outputs, *edits],
            api_visibility="private",
        )

        def restore(open_id: str | None, browser: Any, request: gr.Request) -> list[Any]:
            """On page load: the list, and the conversation open before the reload."""
            store, _ = self.store(request, browser)
            try:
                return [self.listed(store, open_id), *opened(store.get(open_id), request)]
            except NotFound:
                skipped = [gr.skip()] * (len(chat_outputs) - 1)
                return [self.listed(store, None), *skipped, None, *self.shown(None)]

        self.restore_outputs = [self.listing, *chat_outputs, *edits]
        self.restore = one_line_errors(restore)

        def start_new(
            history: list[dict[str, Any]] | None,
            backend_id: str,
            chosen: dict[str, Any] | None,
            open_id: str | None,
            browser: Any,
            request: gr.Request,
        ) -> list[Any]:
            # As `reopen`: the chat left is saved first.
            store, in_browser, _ = kept(history, backend_id, chosen, open_id, browser, request)
            return [
                [],
                [],
                None,
                kept_in_browser(store, in_browser),
                self.listed(store, None),
                *self.shown(None),
            ]

        self.new.click(
            one_line_errors(start_new),
            chat_now,
            [chatbot, chat_state, self.open_id, self.saved, self.listing, *edits],
            api_visibility="private",
            queue=False,
        )

        def rename(open_id: str | None, title: str, browser: Any, request: gr.Request) -> list[Any]:
            store, in_browser = self.store(request, browser)
            conversation = store.rename(open_id, title)
            return [
                kept_in_browser(store, in_browser),
                self.listed(store, conversation.id),
                gr.Textbox(value=conversation.title),
            ]

        self.rename.click(
            one_line_errors(rename),
            [self.open_id, self.title, self.saved],
            [self.saved, self.listing, self.title],
            api_visibility="private",
            validator=checked(needs("Open a conversation first."), needs("Type a title."), None),
        )

        def ask_delete(title: str) -> str:
            return f"Delete “{title}”? Its messages cannot be brought back."

        self.confirmation.asked_by(self.delete, ask_delete, self.title)

        def delete(open_id: str | None, browser: Any, request: gr.Request) -> list[Any]:
            store, in_browser = self.store(request, browser)
            store.delete(open_id)
            return [
                [],
                [],
                None,
                kept_in_browser(store, in_browser),
                self.listed(store, None),
                *self.shown(None),
            ]

        self.confirmation.confirm.click(
            one_line_errors(delete),
            [self.open_id, self.saved],
            [chatbot, chat_state, self.open_id, self.saved, self.listing, *edits],
            api_visibility="private",
        )
