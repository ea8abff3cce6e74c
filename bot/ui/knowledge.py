"""The Knowledge tab: collections, uploads with a progress bar, documents and their chunks."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gradio as gr
from gradio.components import Component
from gradio.events import Dependency

from bot.access import Access, page_scope
from bot.scoped import scoped
from bot.ui.common import (
    Confirmation,
    caller_view,
    checked,
    hidden,
    needs,
    one_line_errors,
    progress_callback,
)
from bot.uploads import own_uploads
from bot.views import ResourcesView
from common.errors import BadInput, NotFound
from common.text import counted, friendly_time, literal_markdown
from knowledge.modes import MODES

COLUMNS = ["document", "chunks", "size (kB)", "ingested"]


NO_COLLECTION = "Choose a collection or type a name for a new one."
NO_FILES = "Add one or more files first."


def _listing(resources: ResourcesView, name: str | None) -> tuple[Any, Any]:
    """The documents table and the document choices of collection `name`."""
    return _table(resources, name), gr.Dropdown(choices=_sources(resources, name))


def _table(resources: ResourcesView, name: str | None) -> list[list[Any]]:
    if not name or name not in resources.knowledge.collections():
        return []
    return [
        [
            Path(d["source"]).name,
            d["chunks"],
            round(d["bytes"] / 1000, 1),
            friendly_time(d["ingested_at"]),
        ]
        for d in resources.knowledge.documents(name)
    ]


def _settings(resources: ResourcesView, name: str | None) -> tuple[Any, Any]:
    """The retrieval mode and embedder choices showing collection `name`'s own."""
    if not name or name not in resources.knowledge.collections():
        return gr.Dropdown(value=None), gr.Dropdown(value=None)
    return (
        gr.Dropdown(value=resources.knowledge.mode(name)),
        gr.Dropdown(value=resources.knowledge.embedder_name_of(name)),
    )


def _source_id(source: str) -> str:
    """What the browser gets for a document: a file ingested from the command line is stored
    under its absolute path, which is the server's business alone."""
    return hashlib.sha256(source.encode()).hexdigest()[:16]


def _sources(resources: ResourcesView, name: str | None) -> list[tuple[str, str]]:
    if not name or name not in resources.knowledge.collections():
        return []
    documents = resources.knowledge.documents(name)
    return [(Path(d["source"]).name, _source_id(d["source"])) for d in documents]


def _source_of(resources: ResourcesView, name: str, source_id: str) -> str:
    for document in resources.knowledge.documents(name):
        if _source_id(document["source"]) == source_id:
            return document["source"]
    raise NotFound(f"Collection {name!r} holds no such document.")


class KnowledgeHandlers:
    """What the Knowledge tab's controls do. Each works on the collections its caller may
    see (`caller_view`): on a signed-in server, users add to collections of their own.
    `linked_update` refreshes components elsewhere (the chat's collection choices) whenever
    collections change here."""

    def __init__(
        self,
        resources: ResourcesView,
        access: Access,
        linked_update: Callable[[ResourcesView], list[Any]],
    ) -> None:
        self.resources = resources
        self.access = access
        self.linked_update = linked_update

    def _view(self, request: gr.Request) -> ResourcesView:
        return caller_view(self.resources, self.access, request)

    def refresh(self, request: gr.Request) -> Any:
        return gr.Dropdown(choices=self._view(request).knowledge.collections())

    def show(self, name: str | None, request: gr.Request) -> tuple[Any, Any]:
        return _listing(self._view(request), name)

    def settings_of(self, name: str | None, request: gr.Request) -> tuple[Any, Any]:
        return _settings(self._view(request), name)

    def ingest(
        self,
        name: str | None,
        paths: list[str] | None,
        request: gr.Request,
        progress=gr.Progress(),
    ) -> tuple:
        view = self._view(request)
        if not name:
            raise BadInput(NO_COLLECTION)
        if not paths:
            raise BadInput(NO_FILES)
        files = own_uploads(self.resources.uploads, self.access, request, paths)
        result = view.knowledge.ingest(
            name, [(path, path.name) for path in files], progress_callback(progress)
        )
        failed = {Path(error["path"]).name for error in result.errors}
        read = [path.name for path in files if path.name not in failed]
        named = f" ({', '.join(read[:3])}{f' and {len(read) - 3} more' if len(read) > 3 else ''})"
        lines = [
            f"**{result.collection}**: {counted(len(read), 'file')} read{named if read else ''}, "
            f"{counted(result.chunks_added, 'chunk')} added, {result.chunks_unchanged} "
            f"unchanged, {result.chunks_removed} removed."
        ]
        lines += [f"- ⚠️ {error['error']}" for error in result.errors]
        return (
            "\n".join(lines),
            gr.Dropdown(choices=view.knowledge.collections(), value=name),
            None,
            *_listing(view, name),
            *self.linked_update(view),
            *_settings(view, name),  # a new collection's mode and embedder
        )

    def forget(self, name: str | None, source: str | None, request: gr.Request) -> tuple:
        view = self._view(request)
        if not name or not source:
            raise BadInput("Choose a collection and a document.")
        stored = _source_of(view, name, source)
        removed = view.knowledge.forget(name, stored)
        return f"Removed {Path(stored).name} ({removed} chunks).", *_listing(view, name)

    def ask_forget(self, name: str, source_id: str, request: gr.Request) -> str:
        view = self._view(request)
        stored = _source_of(view, name, source_id)
        return (
            f"Remove **{literal_markdown(Path(stored).name)}** from "
            f"**{literal_markdown(name)}**? Answers stop using it; adding the file again "
            "brings it back."
        )

    def change_mode(
        self,
        name: str | None,
        chosen: str | None,
        request: gr.Request,
        progress=gr.Progress(),
    ) -> str:
        self.access.require(request, "change collections")
        view = self._view(request)
        if not name or chosen not in MODES:
            raise BadInput("Choose a collection and a retrieval mode.")
        view.knowledge.set_mode(name, chosen, progress_callback(progress))
        return f"**{name}** now retrieves by {chosen}."

    def change_embedder(
        self,
        name: str | None,
        chosen: str | None,
        request: gr.Request,
        progress=gr.Progress(),
    ) -> str:
        self.access.require(request, "change collections")
        view = self._view(request)
        # Only what the operator listed: a client value never names a model or a folder.
        if not name or chosen not in self.resources.settings.embedders:
            raise BadInput("Choose a collection and one of the embedders offered.")
        changed = view.knowledge.change_embedder(name, chosen, progress_callback(progress))
        if not changed["changed"]:
            return f"**{name}** is already embedded by {chosen}."
        return (
            f"**{name}** is now embedded by {chosen} ({changed['chunks']} chunks in "
            f"{changed['seconds']} s)."
        )


def knowledge_tab(
    resources: ResourcesView,
    access: Access,
    linked: Sequence[Component],
    linked_update: Callable[[ResourcesView], list[Any]],
) -> list[Dependency]:
    """The tab's layout, wired to `KnowledgeHandlers`; `linked` are the components that
    `linked_update` refreshes. Returns the events after which a collection's documents may
    have changed."""
    shown = scoped(resources, page_scope(access))
    handlers = KnowledgeHandlers(resources, access, linked_update)

    with gr.Tab("Knowledge") as tab:
        gr.Markdown(
            "Documents are split into chunks, embedded once and stored. Adding a file again "
            "only embeds what changed. Formats: txt, md, rst, html, pdf, docx, csv."
        )
        collection = gr.Dropdown(
            choices=shown.knowledge.collections(),
            value=None,  # not the first one: files go where their user chose
            label="Collection",
            info="Choose one, or type a new name to create it.",
            allow_custom_value=True,
            elem_id="kb-collection",
        )
        files = gr.File(
            file_count="multiple",
            label="Documents to add",
            type="filepath",
            elem_id="kb-files",
        )
        add = gr.Button("Add to collection", variant="primary", elem_id="kb-add")
        status = gr.Markdown(elem_id="kb-status")
        table = gr.Dataframe(
            headers=COLUMNS,
            value=[],
            interactive=False,
            label="Documents",
            elem_id="kb-documents",
        )
        with gr.Row():
            document = gr.Dropdown(label="Document", choices=[], scale=3, elem_id="kb-document")
            delete = gr.Button("Delete document", variant="stop", scale=1, elem_id="kb-delete")
        removal = Confirmation("kb-confirm-delete", "kb-keep-document")
        with gr.Accordion("Retrieval and embedder", open=False):
            gr.Markdown(
                "How the collection is searched (a conversation may choose another mode), and "
                "the model that embeds it. *questions* has the model write questions for "
                "every chunk first; a new embedder is built beside the old one, which keeps "
                "answering until the switch."
            )
            with gr.Row():
                mode = gr.Dropdown(list(MODES), label="Retrieval mode", elem_id="kb-mode")
                set_mode = gr.Button("Set mode", elem_id="kb-set-mode")
            with gr.Row():
                embedder = gr.Dropdown(
                    resources.settings.embedders,
                    label="Embedder",
                    elem_id="kb-embedder",
                )
                set_embedder = gr.Button("Change embedder", elem_id="kb-set-embedder")

    tab.select(one_line_errors(handlers.refresh), None, collection, api_visibility="private")
    collection.change(
        one_line_errors(handlers.show), collection, [table, document], api_visibility="private"
    )
    collection.change(
        one_line_errors(handlers.settings_of),
        collection,
        [mode, embedder],
        api_visibility="private",
    )
    # The questions mode and a new embedder run a model over every chunk: batch jobs.
    set_mode.click(
        one_line_errors(handlers.change_mode),
        [collection, mode],
        status,
        api_visibility="private",
        validator=checked(needs("Choose a collection."), needs("Choose a retrieval mode.")),
        concurrency_limit=1,
        concurrency_id="batch",
    )
    set_embedder.click(
        one_line_errors(handlers.change_embedder),
        [collection, embedder],
        status,
        api_visibility="private",
        validator=checked(needs("Choose a collection."), needs("Choose an embedder.")),
        concurrency_limit=1,
        concurrency_id="batch",
    )
    added = add.click(
        one_line_errors(handlers.ingest),
        [collection, files],
        [status, collection, files, table, document, *linked, mode, embedder],
        api_visibility="private",
        validator=checked(needs(NO_COLLECTION), needs(NO_FILES)),
        # A click while files are being added queues these files (in turn) instead of being
        # ignored, and the box then cleared by the earlier addition.
        trigger_mode="multiple",
    )
    chosen_document = checked(needs("Choose a collection."), needs("Choose a document to remove."))
    removal.asked_by(delete, handlers.ask_forget, [collection, document], validator=chosen_document)
    # The question names one document: another chosen puts it away.
    document.change(hidden, None, removal.group, api_visibility="private", queue=False)
    deleted = removal.confirm.click(
        one_line_errors(handlers.forget),
        [collection, document],
        [status, table, document],
        api_visibility="private",
        validator=chosen_document,
    )
    removal.confirm.click(hidden, None, removal.group, api_visibility="private", queue=False)
    return [added, deleted]
