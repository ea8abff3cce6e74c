"""The Train tab: LoRA or full fine-tuning with live progress, a loss plot and a result card."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
from gradio.blocks import Block
from gradio.components import Component
from pydantic import ValidationError

from adapters.meta import ArtifactMeta
from adapters.train import TrainConfig
from bot.access import Access, page_scope
from bot.backends.backend import validation_problems
from bot.jobs import Jobs, TrainingOutcome
from bot.scoped import scoped
from bot.sessions import Sessions
from bot.training import question_sets
from bot.ui.common import (
    Control,
    caller_view,
    cancel_idle,
    cancel_live,
    field_control,
    one_line_errors,
    progress_callback,
)
from bot.views import ResourcesView
from common.errors import BadInput, KbotError

log = logging.getLogger(__name__)


def _result_card(meta: ArtifactMeta) -> str:
    base_mb = (meta.base_model_bytes or 0) / 1e6
    size_mb = meta.file_bytes / 1e6
    share = f" ({size_mb / base_mb:.1%} of the full model's {base_mb:.0f} MB)" if base_mb else ""
    eval_loss = meta.eval_loss if meta.eval_loss is not None else "—"
    return (
        f"### {meta.method.upper()} · {meta.steps} steps\n"
        "| measure | value |\n|---|---|\n"
        f"| trainable parameters | {meta.trainable_params:,} of {meta.total_params:,} "
        f"({meta.trainable_share:.2%}) |\n"
        f"| saved size | {size_mb:.1f} MB{share} |\n"
        f"| training time | {meta.train_seconds:.0f} s |\n"
        f"| peak memory | {meta.peak_memory_mb:.0f} MB |\n"
        f"| final train loss / eval loss | {meta.final_train_loss} / {eval_loss} |\n"
    )


def _loss_frame(history: list[dict[str, float]]) -> pd.DataFrame:
    """Losses by step and series, always numeric. The chart's axes are fixed by the first
    frame it gets: an empty frame with an untyped loss column made the loss axis a list of
    categories for the whole run (rising, with labels like 41608429). So even before the first
    step the frame holds both series with numeric (NaN, not drawn) values."""
    rows = [
        {"step": h["step"], "loss": h["loss"], "series": "train"} for h in history if "loss" in h
    ]
    rows += [
        {"step": h["step"], "loss": h["eval_loss"], "series": "eval"}
        for h in history
        if "eval_loss" in h
    ]
    if not rows:
        rows = [{"step": math.nan, "loss": math.nan, "series": s} for s in ("train", "eval")]
    return pd.DataFrame(rows).astype({"step": "float64", "loss": "float64", "series": "str"})


LOSS_COLOURS = {"train": "#2f6fba", "eval": "#e0782b"}
MIN_STEPS_SHOWN = 10  # the step axis starts this long, so early ticks are whole steps


def _loss_plot(history: list[dict[str, float]]) -> gr.LinePlot:
    steps = [h["step"] for h in history]
    return gr.LinePlot(_loss_frame(history), x_lim=[0, max([MIN_STEPS_SHOWN, *steps])])


# Recipe fields shown at once; the others sit under "More settings". Defaults and help come
# from `TrainConfig`, like the CLI's flags.
_MAIN_FIELDS = ("max_steps", "epochs", "learning_rate", "lora_r", "batch_size")
_HIDDEN_FIELDS = ("method", "name", "overwrite", "resume")


def _recipe_controls(names: tuple[str, ...]) -> dict[str, Control]:
    fields = TrainConfig.model_fields
    return {name: field_control(name, fields[name], elem_id=f"train-{name}") for name in names}


def _unset(value: Any) -> bool:
    """An empty field: the recipe's default applies."""
    return value is None or (isinstance(value, str) and not value.strip())


def _config(values: dict[str, Any]) -> TrainConfig:
    """The recipe from the form: empty fields keep their defaults."""
    given = {k: v for k, v in values.items() if not _unset(v)}
    if isinstance(given.get("name"), str):
        given["name"] = given["name"].strip()
    return TrainConfig(**given)


@dataclass
class TrainForm:
    """The Train tab's inputs that a training reads."""

    recipe: dict[str, Component]  # by `TrainConfig` field
    files: Component
    collection: Component
    qa_set: Component

    def inputs(self) -> set[Block]:
        return {self.files, self.collection, self.qa_set, *self.recipe.values()}


class TrainHandlers:
    """What the Train tab's controls do. The rules (rights, limits, the day's time, one run
    at a time) are `Jobs`'; these show a run's progress, loss plot and result. `linked` are
    components elsewhere (the chat's adapter choices) that `linked_update` refreshes."""

    def __init__(
        self,
        resources: ResourcesView,
        access: Access,
        sessions: Sessions,
        jobs: Jobs,
        linked: Sequence[Component],
        linked_update: Callable[[ResourcesView], list[Any]],
    ) -> None:
        self.resources = resources
        self.access = access
        self.sessions = sessions
        self.jobs = jobs
        self.linked = linked
        self.linked_update = linked_update
        self.form: TrainForm | None = None  # set once the layout is built

    def start(self, values: dict[Component, Any], request: gr.Request) -> Iterator[tuple]:
        """Train the recipe in the form, yielding (status, loss plot, result card, *linked)
        every second while it runs; leaving the page cancels the run."""
        assert self.form is not None
        form = self.form
        self.jobs.check_may_train(request)  # a visitor hears to sign in, not what to fill in
        try:
            config = _config({key: values[control] for key, control in form.recipe.items()})
        except ValidationError as error:
            raise BadInput(f"Invalid recipe: {validation_problems(error)}") from None
        job = self.jobs.prepare_training(
            request,
            config,
            values[form.files],
            values[form.qa_set],
            values[form.collection],
        )
        cancel = self.sessions.put(request, "training", threading.Event())
        state: dict[str, Any] = {"label": "starting…"}
        history: list[dict[str, float]] = []
        unchanged = [gr.skip()] * len(self.linked)

        def progress(fraction: float, label: str) -> None:
            state["label"] = f"{fraction:.0%} · {label}"

        def work() -> None:
            try:
                state["outcome"] = self.jobs.run_training(job, progress, cancel, history)
            except Exception as error:
                if not isinstance(error, KbotError):
                    log.exception("A training failed")
                state["error"] = error

        worker = threading.Thread(target=work, daemon=True)
        worker.start()
        try:
            while worker.is_alive():
                worker.join(timeout=1.0)
                status = f"Training **{config.name}** · {state['label']}"
                yield status, _loss_plot(list(history)), "", *unchanged
        finally:
            # Gradio closes this generator when its client goes away: stop the run too.
            if worker.is_alive():
                cancel.set()
            self.sessions.drop(request, "training")
        if "error" in state:
            raise gr.Error(f"Training failed: {state['error']}")
        outcome: TrainingOutcome = state["outcome"]
        meta = outcome.result.meta
        if meta is None:
            said = (
                f"Stopped: {outcome.stopped} Nothing" if outcome.stopped else "Cancelled; nothing"
            )
            yield f"{said} was saved.", gr.skip(), "", *unchanged
            return
        where = (
            f"RAG reads with it once the app starts with `KBOT_READER={config.name}`."
            if config.as_reader
            else "pick it in the chat's backend list."
        )
        yield (
            f"Done: **{config.name}** is ready; {where}",
            _loss_plot(meta.loss_history),
            _result_card(meta),
            *self.linked_update(job.view),
        )

    def cancel(self, request: gr.Request) -> str:
        event = self.sessions.get(request, "training")
        if event is None:
            return "No training of yours is running on this page."
        event.set()
        return "Cancelling after the current step…"

    def write_pairs(
        self, collection: str | None, request: gr.Request, progress=gr.Progress()
    ) -> tuple[Any, str]:
        name, _, pairs = self.jobs.write_questions(
            request, collection, progress=progress_callback(progress)
        )
        return (
            gr.Dropdown(choices=question_sets(self._view(request)), value=name),
            f"Wrote {len(pairs)} Q/A pairs to `{name}`: read or edit them in the Compare tab, "
            "then start training.",
        )

    def refresh(self, request: gr.Request) -> tuple[Any, Any]:
        view = self._view(request)
        return (
            gr.Dropdown(choices=view.knowledge.collections()),
            gr.Dropdown(choices=question_sets(view)),
        )

    def _view(self, request: gr.Request) -> ResourcesView:
        return caller_view(self.resources, self.access, request)


def train_tab(
    resources: ResourcesView,
    access: Access,
    linked: Sequence[Component],
    linked_update: Callable[[ResourcesView], list[Any]],
    sessions: Sessions,
    jobs: Jobs,
) -> None:
    """The tab's layout, wired to `TrainHandlers`."""
    shown = scoped(resources, page_scope(access))
    handlers = TrainHandlers(resources, access, sessions, jobs, linked, linked_update)

    with gr.Tab("Train") as tab:
        gr.Markdown(
            "Teach the model your data. **LoRA** trains small adapters beside the frozen base "
            "model; **full fine-tuning** trains every weight (the costly reference). Data: a "
            "JSONL of `{question, answer}`, chat `{messages}` or Alpaca records, or documents."
        )
        with gr.Row():
            method = gr.Radio(
                ["lora", "full"], value="lora", label="Method", elem_id="train-method"
            )
            name = gr.Textbox(label="Name", placeholder="my-adapter", elem_id="train-name")
            overwrite = gr.Checkbox(label="Overwrite an existing one", elem_id="train-overwrite")
        with gr.Row():
            files = gr.File(
                file_count="multiple",
                type="filepath",
                label="Training data",
                elem_id="train-files",
            )
            with gr.Column():
                collection = gr.Dropdown(
                    choices=shown.knowledge.collections(),
                    label="Knowledge collection (its documents)",
                    value=None,
                    elem_id="train-collection",
                )
                qa_set = gr.Dropdown(
                    choices=question_sets(shown),
                    label="Q/A pairs written from a collection",
                    value=None,
                    elem_id="train-qa-set",
                )
                generate = gr.Button("Write Q/A pairs from the collection", size="sm")
        with gr.Row():
            recipe = _recipe_controls(_MAIN_FIELDS)
        with gr.Accordion("More settings", open=False), gr.Row():
            others = tuple(
                n for n in TrainConfig.model_fields if n not in _MAIN_FIELDS + _HIDDEN_FIELDS
            )
            recipe |= _recipe_controls(others)
        with gr.Row():
            start = gr.Button("Start training", variant="primary", elem_id="train-start")
            stop = gr.Button("Cancel", variant="stop", elem_id="train-cancel", interactive=False)
        status = gr.Markdown(elem_id="train-status")
        plot = gr.LinePlot(
            _loss_frame([]),
            x="step",
            y="loss",
            color="series",
            color_title="loss on",
            color_map=LOSS_COLOURS,
            x_lim=[0, MIN_STEPS_SHOWN],
            label="Loss",
            height=300,
            elem_id="train-plot",
        )
        card = gr.Markdown(elem_id="train-card")

    fields: dict[str, Component] = {
        "method": method,
        "name": name,
        "overwrite": overwrite,
    }
    handlers.form = TrainForm(fields | recipe, files, collection, qa_set)
    training = start.click(
        one_line_errors(handlers.start),
        handlers.form.inputs(),
        [status, plot, card, *linked],
        api_visibility="private",
        # One training at a time on the server; the next waits in Gradio's queue.
        concurrency_limit=1,
        concurrency_id="training",
    )
    # Cancel is live only while a training runs (or waits for its turn).
    start.click(one_line_errors(cancel_live), None, stop, api_visibility="private", queue=False)
    training.then(one_line_errors(cancel_idle), None, stop, api_visibility="private")
    stop.click(one_line_errors(handlers.cancel), None, status, api_visibility="private")
    tab.select(
        one_line_errors(handlers.refresh), None, [collection, qa_set], api_visibility="private"
    )
    generate.click(
        one_line_errors(handlers.write_pairs),
        collection,
        [qa_set, status],
        api_visibility="private",
        concurrency_limit=1,
        concurrency_id="batch",
    )
