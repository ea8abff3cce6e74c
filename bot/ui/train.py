"""The Train tab: LoRA or full fine-tuning with live progress, a loss plot and a result card."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import gradio as gr
import pandas as pd
from gradio.components import Component
from pydantic import ValidationError

from adapters.meta import ArtifactMeta
from adapters.train import TrainConfig
from bot.access import Access, page_scope
from bot.backends.backend import validation_problems
from bot.scoped import scoped
from bot.sessions import Sessions
from bot.training import (
    TrainingQuota,
    question_set_path,
    question_sets,
    reader_training_data,
    run_training_in_child,
    training_data,
    within_limits,
)
from bot.ui.common import (
    Control,
    caller_view,
    field_control,
    one_line_errors,
    own_uploads,
    require,
    write_qa_pairs,
)
from bot.views import ResourcesView
from common.errors import KbotError

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


# Recipe fields shown at once; the others sit under "More settings". Defaults and help come
# from `TrainConfig`, like the CLI's flags.
_MAIN_FIELDS = ("max_steps", "epochs", "learning_rate", "lora_r", "batch_size")
_HIDDEN_FIELDS = ("method", "name", "overwrite", "resume")


def _recipe_controls(names: tuple[str, ...]) -> dict[str, Control]:
    fields = TrainConfig.model_fields
    return {name: field_control(name, fields[name], elem_id=f"train-{name}") for name in names}


def _unset(name: str, value: Any) -> bool:
    """An empty field, or 0 in a number field whose default is "none" (a cleared number box
    sends 0): the recipe's default applies."""
    optional = TrainConfig.model_fields[name].default is None
    return value is None or value == "" or (optional and value == 0)


def _config(values: dict[str, Any]) -> TrainConfig:
    """The recipe from the form: empty fields keep their defaults."""
    given = {k: v for k, v in values.items() if not _unset(k, v)}
    if isinstance(given.get("name"), str):
        given["name"] = given["name"].strip()
    return TrainConfig(**given)


def train_tab(
    resources: ResourcesView,
    access: Access,
    linked: Sequence[Component],
    linked_update: Callable[[ResourcesView], list[Any]],
    sessions: Sessions,
) -> None:
    shown = scoped(resources, page_scope(access))

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
            stop = gr.Button("Cancel", variant="stop", elem_id="train-cancel")
        status = gr.Markdown(elem_id="train-status")
        plot = gr.LinePlot(
            _loss_frame([]),
            x="step",
            y="loss",
            color="series",
            label="Loss",
            height=300,
            elem_id="train-plot",
        )
        card = gr.Markdown(elem_id="train-card")
        form_fields = {"method": method, "name": name, "overwrite": overwrite} | recipe

        def run(form: dict[Component, Any], request: gr.Request) -> Iterator[tuple]:
            require(access, request, "train models")
            view = caller_view(resources, access, request)
            try:
                config = _config({key: form[control] for key, control in form_fields.items()})
                within_limits(config, resources.settings)
                view.artifacts.check_free(config.name, config.overwrite)
                paths = own_uploads(resources, access, request, form[files])
                if form[qa_set]:
                    paths.append(question_set_path(view, form[qa_set]))
                gather = reader_training_data if config.as_reader else training_data
                data = gather(view, paths or None, form[collection] or None)
                # Artifacts' metadata is shown to everyone who may use them: file names only,
                # not the server's upload paths.
                for path in paths:
                    data = replace(data, origin=data.origin.replace(str(path), path.name))
            except ValidationError as error:
                raise gr.Error(f"Invalid recipe: {validation_problems(error)}") from None
            except KbotError as error:
                raise gr.Error(str(error)) from None
            quota = TrainingQuota(
                resources.settings.runs_dir / "usage.json", resources.settings.train_minutes_per_day
            )
            # Whose time a run uses: a signed-in user's; on a public server without users,
            # everyone's together. The machine's own local server is not limited.
            who = view.scope.user or "everyone"
            allowed = quota.left(who) if access.mode != "local" else math.inf
            if allowed <= 0:
                raise gr.Error(quota.refusal())
            cancel = sessions.put(request, "training", threading.Event())
            state: dict[str, Any] = {"label": "starting…"}
            history: list[dict[str, float]] = []
            unchanged = [gr.skip()] * len(linked)

            def progress(fraction: float, label: str) -> None:
                state["label"] = f"{fraction:.0%} · {label}"

            def work() -> None:
                try:
                    state["result"] = run_training_in_child(
                        view, config, data, progress, cancel, history
                    )
                except Exception as error:
                    if not isinstance(error, KbotError):
                        log.exception("A training failed")
                    state["error"] = error

            worker = threading.Thread(target=work, daemon=True)
            started = time.monotonic()
            worker.start()
            try:
                while worker.is_alive():
                    time.sleep(1.0)
                    if time.monotonic() - started > allowed and not cancel.is_set():
                        cancel.set()
                        state["quota"] = quota.refusal()
                    yield (
                        f"Training **{config.name}** · {state['label']}",
                        _loss_frame(list(history)),
                        "",
                        *unchanged,
                    )
            finally:
                # Gradio closes this generator when its client goes away: stop the run too.
                if worker.is_alive():
                    cancel.set()
                if access.mode != "local":
                    quota.use(who, time.monotonic() - started)
                sessions.drop(request, "training")
            if "error" in state:
                raise gr.Error(f"Training failed: {state['error']}")
            result = state["result"]
            if result.meta is None:
                said = (
                    f"Stopped: {state['quota']} Nothing"
                    if "quota" in state
                    else "Cancelled; nothing"
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
                _loss_frame(result.meta.loss_history),
                _result_card(result.meta),
                *linked_update(view),
            )

        def cancel(request: gr.Request) -> str:
            event = sessions.get(request, "training")
            if event is None:
                return "No training of yours is running on this page."
            event.set()
            return "Cancelling after the current step…"

        start.click(
            one_line_errors(run),
            {files, collection, qa_set, *form_fields.values()},
            [status, plot, card, *linked],
            api_visibility="private",
            # One training at a time on the server; the next waits in Gradio's queue.
            concurrency_limit=1,
            concurrency_id="training",
        )
        stop.click(one_line_errors(cancel), None, status, api_visibility="private")

        def write_pairs(
            collection: str | None, request: gr.Request, progress=gr.Progress()
        ) -> tuple[Any, str]:
            require(access, request, "write question sets")
            view = caller_view(resources, access, request)
            name, _, pairs = write_qa_pairs(view, collection, progress)
            return (
                gr.Dropdown(choices=question_sets(view), value=name),
                f"Wrote {len(pairs)} Q/A pairs to `{name}`: read or edit them in the "
                "Compare tab, then start training.",
            )

        def refresh(request: gr.Request) -> tuple[Any, Any]:
            view = caller_view(resources, access, request)
            return (
                gr.Dropdown(choices=view.knowledge.collections()),
                gr.Dropdown(choices=question_sets(view)),
            )

        tab.select(one_line_errors(refresh), None, [collection, qa_set], api_visibility="private")
        generate.click(
            one_line_errors(write_pairs),
            collection,
            [qa_set, status],
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="batch",
        )
