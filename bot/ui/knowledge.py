"""The Knowledge tab: collections, uploads with a progress bar, documents and their chunks."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from bot.access import Access
from bot.resources import Resources
from bot.ui.common import progress_callback, require

COLUMNS = ["document", "chunks", "size (kB)", "ingested"]


def _table(resources: Resources, name: str | None) -> list[list[Any]]:
    if not name or name not in resources.knowledge.collections():
        return []
    return [
        [Path(d["source"]).name, d["chunks"], round(d["bytes"] / 1000, 1), d["ingested_at"]]
        for d in resources.knowledge.documents(name)
    ]


def _sources(resources: Resources, name: str | None) -> list[tuple[str, str]]:
    if not name or name not in resources.knowledge.collections():
        return []
    return [(Path(d["source"]).name, d["source"]) for d in resources.knowledge.documents(name)]


def knowledge_tab(
    resources: Resources,
    access: Access,
    linked: list[gr.components.Component],
    linked_update: Callable[[], list[Any]],
) -> None:
    """`linked` are components elsewhere (the chat's collection choices) that `linked_update`
    refreshes whenever collections change here."""
    knowledge = resources.knowledge

    with gr.Tab("Knowledge"):
        gr.Markdown(
            "Documents are split into chunks, embedded once and stored. Adding a file again "
            "only embeds what changed. Formats: txt, md, rst, html, pdf, docx, csv."
        )
        collection = gr.Dropdown(
            choices=knowledge.collections(),
            label="Collection",
            info="Choose one, or type a new name to create it.",
            allow_custom_value=True,
            elem_id="kb-collection",
        )
        files = gr.File(
            file_count="multiple", label="Documents to add", type="filepath", elem_id="kb-files"
        )
        add = gr.Button("Add to collection", variant="primary", elem_id="kb-add")
        status = gr.Markdown(elem_id="kb-status")
        table = gr.Dataframe(
            headers=COLUMNS, value=[], interactive=False, label="Documents", elem_id="kb-documents"
        )
        with gr.Row():
            document = gr.Dropdown(label="Document", choices=[], scale=3)
            delete = gr.Button("Delete document", variant="stop", scale=1)

        def show(name: str | None) -> tuple[Any, Any]:
            return _table(resources, name), gr.Dropdown(choices=_sources(resources, name))

        def ingest(
            name: str | None, paths: list[str] | None, request: gr.Request, progress=gr.Progress()
        ):
            require(access, request, "add documents")
            if not name:
                raise gr.Error("Choose a collection or type a name for a new one.")
            if not paths:
                raise gr.Error("Add one or more files first.")
            try:
                result = knowledge.ingest(
                    name,
                    [(Path(p), Path(p).name) for p in paths],
                    progress_callback(progress),
                )
            except ValueError as error:  # an invalid collection name
                raise gr.Error(str(error)) from None
            lines = [
                f"**{result.collection}**: {result.files} file(s) read, "
                f"{result.chunks_added} chunks added, {result.chunks_unchanged} unchanged, "
                f"{result.chunks_removed} removed."
            ]
            lines += [f"- ⚠️ {error['error']}" for error in result.errors]
            return (
                "\n".join(lines),
                gr.Dropdown(choices=knowledge.collections(), value=name),
                None,
                *show(name),
                *linked_update(),
            )

        def forget(name: str | None, source: str | None, request: gr.Request):
            require(access, request, "delete documents")
            if not name or not source:
                raise gr.Error("Choose a collection and a document.")
            removed = knowledge.forget(name, source)
            return f"Removed {Path(source).name} ({removed} chunks).", *show(name)

        collection.change(show, collection, [table, document], api_visibility="private")
        add.click(
            ingest,
            [collection, files],
            [status, collection, files, table, document, *linked],
            api_visibility="private",
        )
        delete.click(
            forget, [collection, document], [status, table, document], api_visibility="private"
        )
