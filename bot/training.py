"""Training from the app's settings: the glue the CLI and the Train tab share."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

from adapters.data import (
    DataError,
    TrainingData,
    collection_texts,
    combine,
    load_training_data,
)
from adapters.qa import RoundTrip, Span, generate_pairs, span_in
from adapters.registry import ArtifactRegistry
from adapters.train import Progress, TrainConfig, TrainResult, train
from bot.evaluation.questions import write_questions
from bot.model import model_location
from bot.resources import Resources
from bot.settings import Settings
from bot.views import ResourcesView
from common import compute
from common.errors import BadInput, KbotError, NotFound
from common.files import file_lock, write_atomically
from common.processes import mark_gone, process_mark


def training_data(
    resources: ResourcesView, paths: list[Path] | None = None, collection: str | None = None
) -> TrainingData:
    """Data files (Q/A records and/or documents) and a knowledge collection's documents, any
    or both."""
    if not paths and not collection:
        raise BadInput("Give data files or a knowledge collection to train on.")
    parts = []
    if paths:
        parts.append(load_training_data(list(paths), resources.settings.file_limits))
    if collection:
        parts.append(collection_texts(resources.knowledge, collection))
    return combine(parts)


def reader_training_data(
    resources: ResourcesView, paths: list[Path] | None, collection: str | None
) -> TrainingData:
    """The user's question/answer pairs as reader training records: each question asked as
    RAG asks it, over the sentences retrieved from `collection`, its answer the target. A
    pair whose answer is not in those sentences is left out (it would teach guessing)."""
    from adapters.reader import ReadingQuestion, reader_records  # loads Chroma

    if not paths or not collection:
        raise BadInput(
            "Training the reader needs question/answer data and the collection its answers "
            "are in (--data and --collection)."
        )
    settings = resources.settings
    pairs = load_training_data(list(paths), settings.file_limits)
    questions = [
        ReadingQuestion(c[-2]["content"], (c[-1]["content"],), source="")
        for c in pairs.conversations
        if len(c) >= 2 and c[-2]["role"] == "user"
    ]
    if not questions:
        raise DataError("Training the reader needs question/answer records, not documents.")
    records, counts = reader_records(
        resources.knowledge,
        collection,
        questions,
        k=settings.top_k,
        sentences=settings.evidence_sentences,
        unanswerable_share=0.0,
    )
    if not records:
        raise DataError(
            f"None of the {len(questions)} answers is in the sentences retrieved from "
            f"collection {collection!r}: check that the answers are quoted from its documents."
        )
    return TrainingData(
        kind="sft",
        conversations=tuple(tuple(r["messages"]) for r in records),
        origin=f"{pairs.origin} read over collection {collection} "
        f"({counts['answer']} used, {counts['not_found']} not in the retrieved sentences)",
    )


def generate_questions(
    resources: ResourcesView,
    collection: str,
    per_chunk: int = 2,
    max_chunks: int = 100,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    round_trip: bool = True,
    counts: dict[str, int] | None = None,
) -> tuple[Path, list[dict[str, str]]]:
    """Question/answer pairs written by the model from collection `collection`'s chunks, saved
    as `questions/<collection>.jsonl` under KBOT_HOME (to read, edit, train on or evaluate
    with). Returns the file and the pairs. With a reader, answers are short spans, and
    `round_trip` keeps only pairs that retrieval and the reader answer back; `counts`
    receives how many were written, made short and dropped."""
    from langchain_core.messages import convert_to_messages

    chunks = resources.knowledge.chunks(collection)
    if not chunks:
        raise DataError(f"collection {collection!r} holds no documents")
    llm = resources.chat_model(max_new_tokens=64, temperature=0.0, repetition_penalty=1.0)

    def ask(messages: list[dict[str, str]]) -> str:
        return llm.invoke(convert_to_messages(messages)).text

    span, recovered = _reading_checks(resources, collection) if resources.reader else (None, None)
    pairs = generate_pairs(
        chunks,
        ask,
        per_chunk,
        max_chunks,
        progress,
        cancel,
        span=span,
        round_trip=recovered if round_trip else None,
        counts=counts,
    )
    if not pairs:
        raise DataError(f"no usable question could be written from collection {collection!r}")
    stored = resources.scope.stored(collection, "question set")
    path = write_questions(resources.settings.questions_dir / f"{stored}.jsonl", pairs)
    return path, pairs


def _reading_checks(resources: ResourcesView, collection: str) -> tuple[Span, RoundTrip]:
    """The reader's short answer inside a sentence, and the round trip through RAG."""
    from langchain_core.messages import convert_to_messages

    from bot.evaluation.scoring import answer_scores
    from bot.service import ChatService
    from knowledge.reading import Evidence, reader_messages

    reader = resources.reader_model(max_new_tokens=32, temperature=0.0)
    service = ChatService(resources)

    def span(question: str, sentence: str) -> str | None:
        messages = reader_messages(question, [Evidence(sentence, "", 1, 1.0)])
        return span_in(reader.invoke(convert_to_messages(messages)).text, sentence)

    def round_trip(question: str, answer: str) -> bool:
        *_, reply = service.reply(question, (), "rag", {"collection": collection})
        scores = answer_scores(reply.answer, [answer])
        return bool(scores["contains"]) or scores["f1"] >= 0.5

    return span, round_trip


def _question_files(resources: ResourcesView) -> dict[str, Path]:
    """The question/answer files generated so far (under KBOT_HOME/questions) that the caller
    may read, by the name they know each by: their own first, then the shared ones."""
    folder = resources.settings.questions_dir
    stems = {p.stem: p for p in folder.glob("*.jsonl")} if folder.is_dir() else {}
    scope = resources.scope
    return {
        f"{name}.jsonl": stems[stored]
        for name in scope.visible(stems)
        if (stored := scope.resolve(name, stems))
    }


def question_sets(resources: ResourcesView) -> list[str]:
    """Names of the question sets the caller may read (`<collection>.jsonl`)."""
    return sorted(_question_files(resources))


def question_set_path(resources: ResourcesView, name: str) -> Path:
    """The file of question set `name`, one of `question_sets`: the name comes from a client,
    so it picks a file from the list and never becomes a path itself."""
    known = _question_files(resources)
    if name not in known:
        raise NotFound(f"Unknown question set {name!r}: write one from a collection first.")
    return known[name]


def stored_as(resources: ResourcesView, config: TrainConfig) -> TrainConfig:
    """`config` with the artifact's name as it is stored: a user's adapters are their own."""
    return config.model_copy(update={"name": resources.scope.stored(config.name, "adapter")})


def run_training(
    resources: Resources,
    config: TrainConfig,
    data: TrainingData,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    history: list[dict[str, float]] | None = None,
) -> TrainResult:
    """Train in this process, on the shared resources: `config.name` is the stored name
    (`stored_as`). The operator's CLI and the server's training process call it."""
    # On the compute thread like all torch work (`common/compute.py`): on a thread of its own
    # it trained half as fast once the model or embedder had run. Chat waits meanwhile.
    return compute.run(
        _train_with,
        resources.settings,
        resources.artifacts,
        config,
        data,
        # Reader training refines the reader RAG uses now (setting `reader`), if any.
        start_from=resources.reader if config.as_reader else None,
        progress=progress,
        cancel=cancel,
        history=history,
    )


def _train_with(
    settings: Settings,
    registry: ArtifactRegistry,
    config: TrainConfig,
    data: TrainingData,
    *,
    start_from: Path | None,
    progress: Progress | None,
    cancel: Any,
    history: list[dict[str, float]] | None,
    step_limit: int | None = None,
) -> TrainResult:
    """`train` with what the settings say about the base model and where runs go: the one
    place both the in-process and the child-process training are wired."""
    return train(
        config,
        data,
        base_location=model_location(settings),
        base_name=settings.model,
        system_prompt=settings.system_prompt,
        registry=registry,
        runs_dir=settings.runs_dir,
        progress=progress,
        cancel=cancel,
        history=history,
        start_from=start_from,
        step_limit=step_limit,
    )


def within_limits(config: TrainConfig, settings: Settings) -> TrainConfig:
    """`config` if the server's training limits allow it, else a ValueError naming the limit
    and its setting. Steps that epochs imply are capped where training starts."""
    limits = {
        "max_steps": ("train_max_steps", "steps"),
        "batch_size": ("train_max_batch", "batch size"),
        "lora_r": ("train_max_rank", "LoRA rank"),
        "max_length": ("train_max_length", "tokens per example"),
    }
    for field, (setting, what) in limits.items():
        value, limit = getattr(config, field), getattr(settings, setting)
        if value is not None and value > limit:
            raise BadInput(
                f"{what[0].upper()}{what[1:]} {value:,} is over this server's limit of {limit:,} "
                f"(setting KBOT_{setting.upper()})."
            )
    return config


class TrainingQuota:
    """Training time used per caller per day (UTC), kept in a file of the data folder so
    that it holds across restarts and server processes."""

    def __init__(self, path: Path, minutes_per_day: float) -> None:
        self.path = path
        self.seconds_per_day = minutes_per_day * 60

    def _today(self) -> dict[str, float]:
        import json

        day = time.strftime("%Y-%m-%d", time.gmtime())
        try:
            stored = json.loads(self.path.read_text())
        except (OSError, ValueError):
            stored = {}
        return stored.get(day, {}) if isinstance(stored, dict) else {}

    def left(self, caller: str) -> float:
        """Seconds of training `caller` has left today."""
        return max(0.0, self.seconds_per_day - self._today().get(caller, 0.0))

    def use(self, caller: str, seconds: float) -> None:
        import json

        day = time.strftime("%Y-%m-%d", time.gmtime())
        with file_lock(self.path.with_name(self.path.name + ".lock")):
            used = self._today()
            used[caller] = used.get(caller, 0.0) + seconds
            write_atomically(self.path, json.dumps({day: used}))  # earlier days are dropped

    def refusal(self) -> str:
        return (
            f"You have used today's training time ({self.seconds_per_day / 60:g} minutes, "
            "setting KBOT_TRAIN_MINUTES_PER_DAY); training is possible again tomorrow (UTC)."
        )


class TrainingFailed(KbotError, RuntimeError):
    """A training process stopped with an error; the message is its one-line reason."""


def run_training_in_child(
    resources: ResourcesView,
    config: TrainConfig,
    data: TrainingData,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    history: list[dict[str, float]] | None = None,
) -> TrainResult:
    """`run_training` in a process of its own, for the server: chat keeps answering from the
    compute thread meanwhile (in-process, training holds that thread for minutes), and the
    training's memory goes back to the system when it ends. Setting `cancel` stops it after
    the current step; nothing is saved then. One runs at a time per data folder, across
    server processes: a run waits here until the one before it, cancelled or not, has ended.
    The lock is a file lock, which the system frees when its holder dies, and the child dies
    with its server (`_die_with_parent`), so a crashed server leaves no training behind."""
    with file_lock(resources.settings.runs_dir / ".training.lock"):
        return _watch_child(
            resources.settings,
            stored_as(resources, config),
            data,
            resources.reader if config.as_reader else None,
            progress,
            cancel,
            history,
        )


# Written into a run's folder by the process that trains there: a folder whose process is
# gone is what a run that died halfway left (its checkpoints; `kbot train --resume` goes on
# from them, a new run of that name starts over).
_RUN_OWNER = "kbot-run.pid"


def stale_runs(runs_dir: Path) -> list[str]:
    """The runs whose training process died halfway (a crashed server, a killed CLI)."""
    stale = []
    for folder in sorted(runs_dir.iterdir()) if runs_dir.is_dir() else ():
        owner = folder / _RUN_OWNER
        if owner.is_file() and mark_gone(owner.read_text()):
            stale.append(folder.name)
    return stale


def _die_with_parent(parent: int) -> None:
    """End this process as soon as `parent` (the server) ends, even by `kill -9`: Linux kills
    it at once (PR_SET_PDEATHSIG), and a watcher thread checks every second elsewhere (and
    covers a parent that died before the first line ran)."""
    if sys.platform == "linux":
        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _watch_child(
    settings: Settings,
    config: TrainConfig,
    data: TrainingData,
    start_from: Path | None,
    progress: Progress | None,
    cancel: threading.Event | None,
    history: list[dict[str, float]] | None,
) -> TrainResult:
    context = multiprocessing.get_context("spawn")  # fork would copy the server's threads
    events = context.Queue()
    stop = context.Event()
    child = context.Process(
        target=_train_child,
        args=(settings, config, data, start_from, events, stop, os.getpid()),
        name=f"kbot-train-{config.name}",
        daemon=True,
    )
    child.start()
    try:
        while True:
            if cancel is not None and cancel.is_set():
                stop.set()
            try:
                kind, payload = events.get(timeout=0.5)
            except queue.Empty:
                if not child.is_alive():
                    raise TrainingFailed(
                        f"the training process ended unexpectedly (exit code {child.exitcode})"
                    ) from None
                continue
            if kind == "progress" and progress:
                progress(*payload)
            elif kind == "loss" and history is not None:
                history.append(payload)
            elif kind == "error":
                raise TrainingFailed(payload)
            elif kind == "result":
                return payload
    finally:
        stop.set()
        child.join(timeout=60)
        if child.is_alive():
            child.kill()  # a run killed halfway leaves what was saved before intact


class _Forwarded(list):
    """A loss history that also sends each entry to the parent process."""

    def __init__(self, events: Any) -> None:
        super().__init__()
        self.events = events

    def append(self, item: dict[str, float]) -> None:
        super().append(item)
        self.events.put(("loss", item))


def _train_child(
    settings: Settings,
    config: TrainConfig,
    data: TrainingData,
    start_from: Path | None,
    events: Any,
    stop: Any,
    parent: int,
) -> None:
    _die_with_parent(parent)
    run_dir = settings.runs_dir / config.name
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / _RUN_OWNER).write_text(process_mark())

    if settings.torch_threads:
        import torch

        torch.set_num_threads(settings.torch_threads)
    try:
        result = _train_with(
            settings,
            ArtifactRegistry(settings.adapters_dir),
            config,
            data,
            start_from=start_from,
            progress=lambda fraction, label: events.put(("progress", (fraction, label))),
            cancel=stop,
            history=_Forwarded(events),
            step_limit=settings.train_max_steps,
        )
    except Exception as error:  # the parent shows it; the trace stays in the server's log
        import traceback

        traceback.print_exc()
        events.put(("error", " ".join(str(error).split()) or type(error).__name__))
        return
    events.put(("result", result))
