"""The Train tab: LoRA or full fine-tuning with live progress, a loss plot and a result card."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from adapters.train import TrainConfig
from bot.resources import Resources
from bot.training import generate_questions, question_sets, run_training, training_data

_cancels: dict[str, threading.Event] = {}  # per browser session


def _result_card(meta: dict[str, Any]) -> str:
    base_mb = (meta.get("base_model_bytes") or 0) / 1e6
    size_mb = meta["file_bytes"] / 1e6
    share = f" ({size_mb / base_mb:.1%} of the full model's {base_mb:.0f} MB)" if base_mb else ""
    eval_loss = meta["eval_loss"] if meta["eval_loss"] is not None else "—"
    return (
        f"### {meta['method'].upper()} · {meta['steps']} steps\n"
        f"| | |\n|---|---|\n"
        f"| trainable parameters | {meta['trainable_params']:,} of {meta['total_params']:,} "
        f"({meta['trainable_share']:.2%}) |\n"
        f"| saved size | {size_mb:.1f} MB{share} |\n"
        f"| training time | {meta['train_seconds']:.0f} s |\n"
        f"| peak memory | {meta['peak_memory_mb']:.0f} MB |\n"
        f"| final train loss / eval loss | {meta['final_train_loss']} / {eval_loss} |\n"
    )


def _loss_frame(history: list[dict[str, float]]) -> pd.DataFrame:
    rows = [
        {"step": h["step"], "loss": h["loss"], "series": "train"} for h in history if "loss" in h
    ]
    rows += [
        {"step": h["step"], "loss": h["eval_loss"], "series": "eval"}
        for h in history
        if "eval_loss" in h
    ]
    return pd.DataFrame(rows or [{"step": 0, "loss": None, "series": "train"}])


def write_qa_pairs(
    resources: Resources, collection: str | None, progress: gr.Progress, max_chunks: int = 100
) -> tuple[Path, list[dict[str, str]]]:
    """Q/A pairs written from `collection` with a progress bar; what goes wrong is shown to
    the user as a message."""
    if not collection:
        raise gr.Error("Choose the knowledge collection to write Q/A pairs from.")
    try:
        return generate_questions(
            resources,
            collection,
            max_chunks=max_chunks,
            progress=lambda fraction, label: progress(fraction, desc=label),
        )
    except (ValueError, LookupError) as error:
        raise gr.Error(str(error)) from None


def train_tab(
    resources: Resources,
    linked: list[gr.components.Component],
    linked_update: Callable[[], list[Any]],
) -> None:
    with gr.Tab("Train"):
        gr.Markdown(
            "Teach the model your data. **LoRA** trains small adapters beside the frozen base "
            "model; **full fine-tuning** trains every weight (the costly reference). Data: a "
            "JSONL of `{question, answer}`, chat `{messages}` or Alpaca records, or documents."
        )
        with gr.Row():
            method = gr.Radio(["lora", "full"], value="lora", label="Method")
            name = gr.Textbox(label="Name", placeholder="my-adapter", elem_id="train-name")
            overwrite = gr.Checkbox(label="Overwrite an existing one")
        with gr.Row():
            files = gr.File(file_count="multiple", type="filepath", label="Training data")
            with gr.Column():
                collection = gr.Dropdown(
                    choices=resources.knowledge.collections(),
                    label="Knowledge collection (its documents)",
                    value=None,
                    elem_id="train-collection",
                )
                qa_set = gr.Dropdown(
                    choices=question_sets(resources),
                    label="Q/A pairs written from a collection",
                    value=None,
                    elem_id="train-qa-set",
                )
                generate = gr.Button("Write Q/A pairs from the collection", size="sm")
        with gr.Row():
            steps = gr.Number(value=60, precision=0, label="Max steps")
            rate = gr.Number(value=None, label="Learning rate (empty: method default)")
            rank = gr.Number(value=16, precision=0, label="LoRA rank")
            batch = gr.Number(value=4, precision=0, label="Batch size")
        with gr.Row():
            start = gr.Button("Start training", variant="primary", elem_id="train-start")
            stop = gr.Button("Cancel", variant="stop")
        status = gr.Markdown(elem_id="train-status")
        plot = gr.LinePlot(x="step", y="loss", color="series", label="Loss", height=260)
        card = gr.Markdown(elem_id="train-card")

        def run(
            method: str,
            name: str,
            overwrite: bool,
            files: list[str] | None,
            collection: str | None,
            qa_name: str | None,
            steps: float | None,
            rate: float | None,
            rank: float | None,
            batch: float | None,
            request: gr.Request,
        ) -> Iterator[tuple]:
            try:
                config = TrainConfig(
                    method=method,
                    name=(name or "").strip(),
                    max_steps=int(steps) if steps else None,
                    learning_rate=rate or None,
                    lora_r=int(rank or 16),
                    lora_alpha=2 * int(rank or 16),
                    batch_size=int(batch or 4),
                    overwrite=overwrite,
                )
                resources.artifacts.check_free(config.name, config.overwrite)
                paths = [Path(f) for f in files or []]
                if qa_name:
                    paths.append(resources.settings.questions_dir / qa_name)
                data = training_data(resources, paths or None, collection or None)
            except Exception as error:
                raise gr.Error(str(error)) from None
            cancel = _cancels[request.session_hash] = threading.Event()
            state: dict[str, Any] = {"label": "starting…"}
            history: list[dict[str, float]] = []
            unchanged = [gr.skip()] * len(linked)

            def progress(fraction: float, label: str) -> None:
                state["label"] = f"{fraction:.0%} · {label}"

            def work() -> None:
                try:
                    state["result"] = run_training(
                        resources, config, data, progress, cancel, history
                    )
                except Exception as error:
                    state["error"] = error

            worker = threading.Thread(target=work, daemon=True)
            worker.start()
            while worker.is_alive():
                time.sleep(1.0)
                yield (
                    f"Training **{config.name}** · {state['label']}",
                    _loss_frame(list(history)),
                    "",
                    *unchanged,
                )
            if "error" in state:
                raise gr.Error(f"Training failed: {state['error']}")
            result = state["result"]
            if result.status == "cancelled":
                yield "Cancelled; nothing was saved.", gr.skip(), "", *unchanged
                return
            yield (
                f"Done: **{config.name}** is ready; pick it in the chat's backend list.",
                _loss_frame(result.meta["loss_history"]),
                _result_card(result.meta),
                *linked_update(),
            )

        def cancel(request: gr.Request) -> str:
            event = _cancels.get(request.session_hash)
            if event:
                event.set()
            return "Cancelling after the current step…"

        start.click(
            run,
            [method, name, overwrite, files, collection, qa_set, steps, rate, rank, batch],
            [status, plot, card, *linked],
            api_visibility="private",
        )
        stop.click(cancel, None, status, api_visibility="private")

        def write_pairs(collection: str | None, progress=gr.Progress()) -> tuple[Any, str]:
            path, pairs = write_qa_pairs(resources, collection, progress)
            return (
                gr.Dropdown(choices=question_sets(resources), value=path.name),
                f"Wrote {len(pairs)} Q/A pairs to `{path}`: read or edit them there (or in the "
                "Compare tab), then start training.",
            )

        generate.click(write_pairs, collection, [qa_set, status], api_visibility="private")
