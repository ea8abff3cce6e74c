"""Training from the app's settings: the glue the CLI and the Train tab share."""

from __future__ import annotations

import threading
from pathlib import Path

from adapters.data import TrainingData, collection_texts, load_training_data
from adapters.train import Progress, TrainConfig, TrainResult, train
from bot.model import model_location
from bot.resources import Resources


def training_data(
    resources: Resources, paths: list[Path] | None = None, collection: str | None = None
) -> TrainingData:
    if bool(paths) == bool(collection):
        raise ValueError("Give either data files or a knowledge collection to train on.")
    if collection:
        return collection_texts(resources.knowledge, collection)
    max_bytes = int(resources.settings.max_file_mb * 1_000_000)
    return load_training_data(list(paths or []), max_bytes)


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
