"""Training from the app's settings: the glue the CLI and the Train tab share."""

from __future__ import annotations

import threading
from pathlib import Path

from adapters.data import (
    DataError,
    TrainingData,
    collection_texts,
    combine,
    load_training_data,
)
from adapters.qa import generate_pairs
from adapters.train import Progress, TrainConfig, TrainResult, train
from bot.evaluation.questions import write_questions
from bot.model import model_location
from bot.resources import Resources
from common.names import validate_name


def training_data(
    resources: Resources, paths: list[Path] | None = None, collection: str | None = None
) -> TrainingData:
    """Data files (Q/A records and/or documents) and a knowledge collection's documents, any
    or both."""
    if not paths and not collection:
        raise ValueError("Give data files or a knowledge collection to train on.")
    parts = []
    if paths:
        max_bytes = int(resources.settings.max_file_mb * 1_000_000)
        parts.append(load_training_data(list(paths), max_bytes))
    if collection:
        parts.append(collection_texts(resources.knowledge, collection))
    return combine(parts)


def generate_questions(
    resources: Resources,
    collection: str,
    per_chunk: int = 2,
    max_chunks: int = 100,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> tuple[Path, list[dict[str, str]]]:
    """Question/answer pairs written by the model from collection `collection`'s chunks, saved
    as `questions/<collection>.jsonl` under KBOT_HOME (to read, edit, train on or evaluate
    with). Returns the file and the pairs."""
    from langchain_core.messages import convert_to_messages

    chunks = resources.knowledge.chunks(collection)
    if not chunks:
        raise DataError(f"collection {collection!r} holds no documents")
    llm = resources.chat_model(max_new_tokens=64, temperature=0.0, repetition_penalty=1.0)

    def ask(messages: list[dict[str, str]]) -> str:
        return llm.invoke(convert_to_messages(messages)).text

    pairs = generate_pairs(chunks, ask, per_chunk, max_chunks, progress, cancel)
    if not pairs:
        raise DataError(f"no usable question could be written from collection {collection!r}")
    path = resources.settings.questions_dir / f"{validate_name(collection)}.jsonl"
    return write_questions(path, pairs), pairs


def question_sets(resources: Resources) -> list[str]:
    """Names of the question/answer files generated so far (under KBOT_HOME/questions)."""
    folder = resources.settings.questions_dir
    return sorted(p.name for p in folder.glob("*.jsonl")) if folder.is_dir() else []


def run_training(
    resources: Resources,
    config: TrainConfig,
    data: TrainingData,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    history: list[dict[str, float]] | None = None,
) -> TrainResult:
    settings = resources.settings
    return train(
        config,
        data,
        base_location=model_location(settings),
        base_name=settings.model,
        system_prompt=settings.system_prompt,
        registry=resources.artifacts,
        runs_dir=settings.runs_dir,
        progress=progress,
        cancel=cancel,
        history=history,
    )
