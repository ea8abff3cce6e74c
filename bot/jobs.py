"""The server's rules for training and for writing Q/A pairs, in one place for every entry
point that serves callers (the Train and Compare tabs; an HTTP API would call the same):
the right to do it, the caller's own data and names, the server's limits on a recipe and on
the chunks a question set is written from, each caller's training time per day, and one run
at a time in a process of its own (`run_training_in_child`).

The operator's `kbot train` on their own machine trains with none of these
(`bot.training.run_training`)."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from adapters.data import TrainingData
from adapters.train import Progress, TrainConfig, TrainResult
from bot.access import Access, scope_of
from bot.scoped import scoped
from bot.training import (
    TrainingQuota,
    generate_questions,
    question_set_path,
    reader_training_data,
    run_training_in_child,
    training_data,
    within_limits,
)
from bot.uploads import own_uploads
from bot.views import ResourcesView
from common.errors import BadInput, OverLimit


@dataclass(frozen=True)
class TrainingJob:
    """A training that passed every check, ready to run for its caller."""

    view: ResourcesView  # the caller's view: the artifact is stored under the caller's name
    config: TrainConfig
    data: TrainingData
    quota_key: str | None  # whose daily training time it uses; None: not limited


@dataclass(frozen=True)
class TrainingOutcome:
    result: TrainResult
    stopped: str | None = None  # why the server stopped the run early, if it did


class Jobs:
    def __init__(self, resources: ResourcesView, access: Access) -> None:
        self.resources = resources
        self.access = access
        settings = resources.settings
        self.quota = TrainingQuota(settings.runs_dir / "usage.json", settings.train_minutes_per_day)

    def caller_view(self, request: Any, action: str) -> ResourcesView:
        """The resources as the caller may see them, once they may do `action` at all."""
        self.access.require(request, action)
        return scoped(self.resources, scope_of(self.access, request))

    def check_may_train(self, request: Any) -> None:
        """Refuse a caller who may not train here, before anything of the request is read."""
        self.access.require(request, "train models")

    def _quota_key(self, view: ResourcesView) -> str | None:
        # A signed-in user's time is their own; on a public server without users everyone's
        # is shared. The machine's own local server is not limited.
        return None if self.access.mode == "local" else (view.scope.user or "everyone")

    def prepare_training(
        self,
        request: Any,
        config: TrainConfig,
        uploads: list[str] | None = None,
        question_set: str | None = None,
        collection: str | None = None,
    ) -> TrainingJob:
        """Check a training before it starts: rights, the server's limits, the name, the
        caller's own uploads and question set, today's time left; gather its data."""
        view = self.caller_view(request, "train models")
        within_limits(config, self.resources.settings)
        view.artifacts.check_free(config.name, config.overwrite)
        paths = own_uploads(self.resources.uploads, self.access, request, uploads)
        if question_set:
            paths.append(question_set_path(view, question_set))
        gather = reader_training_data if config.as_reader else training_data
        data = gather(view, paths or None, collection or None)
        # Artifacts' metadata is shown to everyone who may use them: file names only, not
        # the server's upload paths.
        for path in paths:
            data = replace(data, origin=data.origin.replace(str(path), path.name))
        key = self._quota_key(view)
        if key is not None and self.quota.left(key) <= 0:
            raise OverLimit(self.quota.refusal())
        return TrainingJob(view, config, data, key)

    def run_training(
        self,
        job: TrainingJob,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        history: list[dict[str, float]] | None = None,
    ) -> TrainingOutcome:
        """Train `job` in a process of its own (one at a time per data folder), stopped when
        `cancel` is set or the caller's training time for today runs out; the time it took
        is counted against that."""
        cancel = cancel or threading.Event()
        allowed = self.quota.left(job.quota_key) if job.quota_key else math.inf
        stopped: list[str] = []

        def out_of_time() -> None:
            stopped.append(self.quota.refusal())
            cancel.set()

        timer = threading.Timer(allowed, out_of_time) if math.isfinite(allowed) else None
        started = time.monotonic()
        if timer:
            timer.daemon = True
            timer.start()
        try:
            result = run_training_in_child(
                job.view, job.config, job.data, progress, cancel, history
            )
        finally:
            if timer:
                timer.cancel()
            if job.quota_key:
                self.quota.use(job.quota_key, time.monotonic() - started)
        return TrainingOutcome(result, stopped[0] if stopped else None)

    def write_questions(
        self,
        request: Any,
        collection: str | None,
        max_chunks: int = 100,
        progress: Progress | None = None,
    ) -> tuple[str, Path, list[dict[str, str]]]:
        """Q/A pairs written by the model from the caller's `collection`, from at most the
        server's `qa_max_chunks` chunks: the set's name as the caller knows it, its file and
        the pairs."""
        view = self.caller_view(request, "write question sets")
        if not collection:
            raise BadInput("Choose the knowledge collection to write Q/A pairs from.")
        limit = self.resources.settings.qa_max_chunks
        if not 1 <= max_chunks <= limit:
            raise OverLimit(
                f"Q/A pairs are written from 1 to {limit:,} chunks at a time (setting "
                "KBOT_QA_MAX_CHUNKS)."
            )
        path, pairs = generate_questions(view, collection, max_chunks=max_chunks, progress=progress)
        return f"{collection}.jsonl", path, pairs
