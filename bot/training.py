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
from adapters.qa import RoundTrip, Span, generate_pairs, span_in
from adapters.train import Progress, TrainConfig, TrainResult, train
from bot.evaluation.questions import write_questions
from bot.model import model_location
from bot.resources import Resources
from common import compute
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


def reader_training_data(
    resources: Resources, paths: list[Path] | None, collection: str | None
) -> TrainingData:
    """The user's question/answer pairs as reader training records: each question asked as
    RAG asks it, over the sentences retrieved from `collection`, its answer the target. A
    pair whose answer is not in those sentences is left out (it would teach guessing)."""
    from adapters.reader import ReadingQuestion, reader_records  # loads Chroma

    if not paths or not collection:
        raise ValueError(
            "Training the reader needs question/answer data and the collection its answers "
            "are in (--data and --collection)."
        )
    settings = resources.settings
    pairs = load_training_data(list(paths), int(settings.max_file_mb * 1_000_000))
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
    resources: Resources,
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
    path = resources.settings.questions_dir / f"{validate_name(collection)}.jsonl"
    return write_questions(path, pairs), pairs


def _reading_checks(resources: Resources, collection: str) -> tuple[Span, RoundTrip]:
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
    # On the compute thread like all torch work (`common/compute.py`): on a thread of its own
    # it trained half as fast once the model or embedder had run. Chat waits meanwhile.
    return compute.run(
        train,
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
        # Reader training refines the reader RAG uses now (setting `reader`), if any.
        start_from=resources.reader if config.as_reader else None,
    )
