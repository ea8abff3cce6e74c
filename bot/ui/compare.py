"""The Compare tab: one question set through several backends, scored, with costs and charts;
and "ask all", one question answered by several backends side by side."""

from __future__ import annotations

import html
import shutil
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from bot.access import Access, page_scope
from bot.evaluation.questions import Question, QuestionFileError, load_questions, question_of
from bot.evaluation.report import costs_figure, scores_figure, write_report
from bot.evaluation.runner import ask_all, available_specs, best_modes, compare, in_modes
from bot.evaluation.table import table
from bot.jobs import Jobs
from bot.scoped import scoped
from bot.service import ChatService, Reply
from bot.sessions import Sessions
from bot.training import question_set_path, question_sets
from bot.ui.common import (
    caller_view,
    cancel_idle,
    cancel_live,
    checked,
    download_folder,
    needs,
    one_line_errors,
    progress_callback,
)
from bot.uploads import own_uploads
from common.text import counted
from knowledge.modes import MODES

COLUMNS = ["question", "answers", "source"]
ANSWER_SEPARATOR = " | "


def questions_frame(questions: list[Question]) -> pd.DataFrame:
    return pd.DataFrame(
        [[q.question, ANSWER_SEPARATOR.join(q.answers), q.source or ""] for q in questions],
        columns=COLUMNS,
    )


def questions_from_frame(frame: pd.DataFrame | None) -> list[Question]:
    """The (possibly edited) table as questions; a bad row fails with its number."""
    questions = []
    rows = [] if frame is None else frame.fillna("").astype(str).values.tolist()
    for number, (question, answers, source) in enumerate(rows, start=1):
        if not question.strip() and not answers.strip():
            continue
        golds = [a.strip() for a in answers.split(ANSWER_SEPARATOR.strip()) if a.strip()]
        record = {"question": question, "answers": golds or [""], "source": source.strip() or None}
        try:
            questions.append(question_of(record, number))
        except ValueError as error:
            raise QuestionFileError(f"Question table, row {number}: {error}.") from None
    if not questions:
        raise QuestionFileError("The question table is empty: upload, choose or generate a set.")
    return questions


def _question_problem(frame: pd.DataFrame | None) -> str | None:
    try:
        questions_from_frame(frame)
    except QuestionFileError as error:
        return str(error)
    return None


def _report_name() -> str:
    # Never built from a client value (a session id could hold "../").
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return f"compare-{stamp}-{uuid.uuid4().hex[:8]}.html"


def side_by_side(replies: list[Reply]) -> str:
    cards = []
    for reply in replies:
        state = f"{counted(reply.tokens, 'token')} · {reply.latency_s:.1f} s" if reply.done else "…"
        sources = ", ".join(dict.fromkeys(Path(s["source"]).name for s in reply.sources))
        cards.append(
            f'<div class="ask-all-card" data-backend="{html.escape(reply.backend)}" '
            'style="flex:1 1 16rem;border:1px solid #ccc;border-radius:8px;padding:0.6rem">'
            f"<b>{html.escape(reply.backend)}</b> <small>{state}</small>"
            '<p class="ask-all-answer" style="white-space:pre-wrap">'
            f"{html.escape(reply.answer)}</p>"
            + (f"<small>sources: {html.escape(sources)}</small>" if sources else "")
            + "</div>"
        )
    return f'<div style="display:flex;flex-wrap:wrap;gap:0.6rem">{"".join(cards)}</div>'


class CompareHandlers:
    """What the Compare tab's controls do. Each works on what its caller may see
    (`caller_view`): a user compares their own and the shared collections and adapters, and
    writes question sets of their own."""

    def __init__(
        self, service: ChatService, access: Access, sessions: Sessions, jobs: Jobs
    ) -> None:
        self.service = service
        self.access = access
        self.sessions = sessions
        self.jobs = jobs

    def _callers(self, request: gr.Request) -> ChatService:
        return ChatService(
            caller_view(self.service.resources, self.access, request), self.service.registry
        )

    def refresh(self, request: gr.Request) -> tuple[Any, Any, Any]:
        caller = self._callers(request)
        return (
            gr.CheckboxGroup(choices=available_specs(caller)),
            gr.Dropdown(choices=question_sets(caller.resources)),
            gr.Dropdown(choices=caller.resources.knowledge.collections()),
        )

    def load_upload(self, path: str | None, request: gr.Request) -> pd.DataFrame | dict:
        if not path:
            return gr.skip()
        (own,) = own_uploads(self.service.resources.uploads, self.access, request, [path])
        return questions_frame(load_questions(own))

    def load_saved(self, name: str | None, request: gr.Request) -> pd.DataFrame | dict:
        if not name:
            return gr.skip()
        path = question_set_path(self._callers(request).resources, name)
        return questions_frame(load_questions(path))

    def make_questions(
        self,
        collection: str | None,
        count: float | None,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        name, path, _ = self.jobs.write_questions(
            request, collection, int(count or 50), progress_callback(progress)
        )
        return (
            questions_frame(load_questions(path)),
            gr.Dropdown(choices=question_sets(self._callers(request).resources), value=name),
        )

    def evaluate(
        self,
        chosen: list[str],
        chosen_modes: list[str],
        edited: pd.DataFrame,
        request: gr.Request,
        progress=gr.Progress(),
    ):
        self.access.require(request, "run comparisons")
        caller = self._callers(request)
        try:
            questions = questions_from_frame(edited)
            cancel = self.sessions.put(request, "comparison", threading.Event())
            comparison = compare(
                caller,
                questions,
                in_modes(caller.registry, chosen, chosen_modes),
                progress_callback(progress),
                cancel,
            )
        finally:
            self.sessions.drop(request, "comparison")
        titles, rows = table(comparison)
        settings = caller.resources.settings
        reports = caller.resources.scope.folder(settings.home / "reports")
        kept = write_report(comparison, reports / _report_name())
        download = download_folder(settings.upload_minutes * 60) / kept.name
        shutil.copyfile(kept, download)
        done = sum(len(r.answers) for r in comparison.results)
        note = " Cancelled: partial results." if comparison.cancelled else ""
        winners = best_modes(comparison)
        if winners:
            listed = ", ".join(f"**{c}**: {m}" for c, m in winners.items())
            note += f" Best retrieval mode: {listed}."
        return (
            f"{done} answers scored on {len(questions)} questions.{note}",
            pd.DataFrame(rows, columns=titles),
            scores_figure(comparison),
            costs_figure(comparison),
            str(download),
            winners,
            gr.Button(visible=bool(winners)),
        )

    def adopt_modes(self, winners: dict[str, str], request: gr.Request) -> str:
        self.access.require(request, "change collections")
        knowledge = self._callers(request).resources.knowledge
        for collection, mode in winners.items():
            knowledge.set_mode(collection, mode)
        done = ", ".join(f"**{c}** now retrieves by {m}" for c, m in winners.items())
        return f"{done}." if done else "Run a comparison with two retrieval modes first."

    def cancel(self, request: gr.Request) -> str:
        event = self.sessions.get(request, "comparison")
        if event is None:
            return "No comparison of yours is running on this page."
        event.set()
        return "Cancelling after the current answer…"

    def ask_every(
        self, text: str, chosen: list[str], chosen_modes: list[str], request: gr.Request
    ) -> Iterator[str]:
        self.access.require(request, "ask every backend")
        caller = self._callers(request)
        expanded = in_modes(caller.registry, chosen, chosen_modes)
        for replies in ask_all(caller, text, expanded):
            yield side_by_side(replies)


def compare_tab(service: ChatService, access: Access, sessions: Sessions, jobs: Jobs) -> None:
    """The tab's layout, wired to `CompareHandlers`."""
    shown = ChatService(scoped(service.resources, page_scope(access)), service.registry)
    handlers = CompareHandlers(service, access, sessions, jobs)

    with gr.Tab("Compare", elem_id="tab-compare") as tab:
        gr.Markdown(
            "Which way of adding knowledge works best on **your** data? Pick backends and a "
            "question set (JSONL lines `{question, answer or answers, source}`), or let the "
            "model write questions from a collection. Every answer is scored (exact match, "
            "token F1, contains the answer, retrieval hit@k) beside what each backend cost."
        )
        specs = gr.CheckboxGroup(
            choices=available_specs(shown), label="Backends", elem_id="compare-backends"
        )
        modes = gr.CheckboxGroup(
            choices=list(MODES),
            label="Retrieval modes: each RAG backend above runs once in each mode checked "
            "(none: the collection's own mode)",
            elem_id="compare-modes",
        )
        with gr.Row():
            upload = gr.File(
                file_types=[".jsonl"],
                type="filepath",
                label="Upload questions (JSONL)",
                elem_id="compare-upload",
            )
            with gr.Column():
                saved = gr.Dropdown(
                    choices=question_sets(shown.resources),
                    value=None,
                    label="…or a generated question set",
                    elem_id="compare-saved",
                )
                source = gr.Dropdown(
                    choices=shown.resources.knowledge.collections(),
                    value=None,
                    label="Generate a new set from a collection",
                    elem_id="compare-gen-collection",
                )
                with gr.Row():
                    chunks = gr.Number(
                        value=50,
                        precision=0,
                        label="Chunks to use",
                        minimum=1,
                        elem_id="compare-gen-chunks",
                    )
                    generate = gr.Button("Generate Q/A pairs", elem_id="compare-generate")
        frame = gr.Dataframe(
            value=pd.DataFrame(columns=COLUMNS),
            headers=COLUMNS,
            interactive=True,
            wrap=True,
            max_height=320,
            label="Questions (editable; several answers separated by |)",
            elem_id="compare-questions",
        )
        with gr.Row():
            run = gr.Button("Run comparison", variant="primary", elem_id="compare-run")
            stop = gr.Button("Cancel", variant="stop", interactive=False)
        status = gr.Markdown(elem_id="compare-status")
        best = gr.State({})  # collection -> the mode that answered best (kept on the server)
        adopt = gr.Button(
            "Make the best modes the collections' own", visible=False, elem_id="compare-adopt"
        )
        # Unwrapped: narrow columns wrapped their headers letter by letter; it scrolls instead.
        results = gr.Dataframe(label="Scores and costs", elem_id="compare-results")
        scores_plot = gr.Plot(label="Answer quality")
        costs_plot = gr.Plot(label="Costs")
        report = gr.File(label="Report (self-contained HTML)", elem_id="compare-report")

        gr.Markdown("### Ask all\nOne question, answered by every backend checked above.")
        with gr.Row():
            question = gr.Textbox(
                show_label=False, placeholder="Ask every backend…", elem_id="ask-all-question"
            )
            ask = gr.Button("Ask all", elem_id="ask-all-send", scale=0)
        answers = gr.HTML(elem_id="ask-all-answers")

    tab.select(
        one_line_errors(handlers.refresh), None, [specs, saved, source], api_visibility="private"
    )
    upload.upload(one_line_errors(handlers.load_upload), upload, frame, api_visibility="private")
    saved.input(one_line_errors(handlers.load_saved), saved, frame, api_visibility="private")
    # Batch work holds the model for minutes: one such job at a time, the rest queue.
    generate.click(
        one_line_errors(handlers.make_questions),
        [source, chunks],
        [frame, saved],
        api_visibility="private",
        concurrency_limit=1,
        concurrency_id="batch",
    )
    form_check = checked(needs("Tick one backend or more to compare."), None, _question_problem)
    running = run.click(
        one_line_errors(handlers.evaluate),
        [specs, modes, frame],
        [status, results, scores_plot, costs_plot, report, best, adopt],
        api_visibility="private",
        validator=form_check,
        concurrency_limit=1,
        concurrency_id="batch",
    )
    # Cancel is live only while a comparison runs (or waits for its turn).
    run.click(
        one_line_errors(cancel_live),
        [specs, modes, frame],
        stop,
        api_visibility="private",
        validator=form_check,
    )
    running.then(one_line_errors(cancel_idle), None, stop, api_visibility="private")
    stop.click(one_line_errors(handlers.cancel), None, status, api_visibility="private")
    adopt.click(one_line_errors(handlers.adopt_modes), best, status, api_visibility="private")
    for trigger in (ask.click, question.submit):
        trigger(
            one_line_errors(handlers.ask_every),
            [question, specs, modes],
            answers,
            api_visibility="private",
        )
