"""Run one question set through several backends and score every answer."""

from __future__ import annotations

import itertools
import statistics
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np

from bot.backends import Backend, BackendError, BackendRegistry
from bot.evaluation.questions import Question
from bot.evaluation.scoring import answer_scores, source_hit
from bot.service import ChatService, Reply

Progress = Callable[[float, str], None]

COST_FIELDS = (
    "train_seconds",
    "trainable_params",
    "artifact_bytes",
    "peak_memory_mb",
    "index_bytes",
    "ingest_seconds",
)


@dataclass(frozen=True)
class Contender:
    """One backend with its options, named by its spec ("rag:manuals")."""

    spec: str
    backend: Backend
    options: dict[str, str]
    costs: dict[str, Any]


@dataclass
class Scored:
    question_id: str
    answer: str
    em: float
    f1: float
    contains: float
    hit: bool | None  # None: no expected source, or a backend that does not retrieve
    latency_s: float
    tokens: int
    sources: list[str] = field(default_factory=list)
    evidence: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BackendResult:
    contender: Contender
    answers: list[Scored] = field(default_factory=list)

    def scores(self) -> dict[str, Any]:
        answers = self.answers
        latencies = sorted(a.latency_s for a in answers)
        seconds = sum(latencies)
        hits = [a.hit for a in answers if a.hit is not None]
        return {
            "questions": len(answers),
            "em": _mean([a.em for a in answers]),
            "f1": _mean([a.f1 for a in answers]),
            "contains": _mean([a.contains for a in answers]),
            "hit_at_k": _mean([float(h) for h in hits]) if hits else None,
            "k": max((len(a.sources) for a in answers), default=0) or None,
            "latency_p50_s": round(statistics.median(latencies), 3) if latencies else None,
            "latency_p95_s": round(float(np.percentile(latencies, 95)), 3) if latencies else None,
            "tokens_per_s": round(sum(a.tokens for a in answers) / seconds, 1) if seconds else None,
        }

    def as_json(self) -> dict[str, Any]:
        return {
            "backend": self.contender.spec,
            "name": self.contender.backend.name,
            "scores": self.scores(),
            "costs": self.contender.costs,
        }


@dataclass
class Comparison:
    questions: list[Question]
    results: list[BackendResult]
    model: str
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    cancelled: bool = False

    def rows(self) -> list[dict[str, Any]]:
        """One flat row per backend: its scores, then its costs (None where it has none)."""
        return [
            {
                "backend": r.contender.spec,
                **r.scores(),
                **{key: r.contender.costs.get(key) for key in COST_FIELDS},
            }
            for r in self.results
        ]

    def as_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "created_at": self.created_at,
            "questions": len(self.questions),
            "cancelled": self.cancelled,
            "backends": [r.as_json() for r in self.results],
            "answers": [
                {"backend": r.contender.spec, "question": q.question, **vars(a)}
                for r in self.results
                for q, a in zip(self.questions, r.answers, strict=False)
            ],
        }


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def available_specs(service: ChatService) -> list[str]:
    """Every spec that can run now: each backend with each combination of the existing
    choices (collections, adapters...) of its positional options."""
    specs = []
    for backend in service.registry:
        listed = [backend.option_choices(service.resources, f) for f in backend.positional]
        choices = [c for c in listed if c is not None]
        if len(choices) < len(listed):
            continue  # a free-text option: nothing to list
        specs += [":".join([backend.id, *values]) for values in itertools.product(*choices)]
    return specs


def contenders(service: ChatService, specs: Sequence[str]) -> list[Contender]:
    """Parse and check every spec before any question runs: an unknown backend, collection
    or adapter fails at once, naming it."""
    if not specs:
        raise BackendError("Choose at least one backend to compare.")
    chosen: list[Contender] = []
    for spec in specs:
        spec = spec.strip()
        if any(c.spec == spec for c in chosen):
            raise BackendError(f"Backend {spec!r} is listed twice.")
        backend, options = service.registry.parse_spec(spec)
        parsed = backend.parse_options(options)
        backend.build_chain(service.resources, parsed)  # checks collections and adapters
        costs = backend.costs(service.resources, parsed)
        chosen.append(Contender(spec, backend, options, costs))
    return chosen


def final_reply(service: ChatService, contender: Contender, question: str) -> Reply:
    # The last reply yielded is the complete one.
    replies = service.reply(question, backend=contender.backend.id, options=contender.options)
    return deque(replies, maxlen=1)[0]


def score(question: Question, reply: Reply) -> Scored:
    sources = [s["source"] for s in reply.sources]
    retrieves = bool(reply.sources)
    return Scored(
        question_id=question.id,
        answer=reply.answer,
        **answer_scores(reply.answer, question.answers),
        hit=source_hit(question.source, sources) if question.source and retrieves else None,
        latency_s=round(reply.latency_s, 3),
        tokens=reply.tokens,
        sources=sources,
        evidence=reply.evidence,
    )


def compare(
    service: ChatService,
    questions: Sequence[Question],
    specs: Sequence[str],
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
) -> Comparison:
    """Every question through every backend, scored. A cancel stops after the current answer
    and returns what is done, marked `cancelled`."""
    chosen = contenders(service, specs)
    comparison = Comparison(
        list(questions), [BackendResult(c) for c in chosen], service.resources.settings.model
    )
    total = len(chosen) * len(questions)
    done = 0
    for result in comparison.results:
        spec = result.contender.spec
        for number, question in enumerate(questions, start=1):
            if cancel is not None and cancel.is_set():
                comparison.cancelled = True
                return comparison
            if progress:
                progress(done / total, f"{spec}: question {number} of {len(questions)}")
            reply = final_reply(service, result.contender, question.question)
            result.answers.append(score(question, reply))
            done += 1
    if progress:
        progress(1.0, f"{total} answers scored")
    return comparison


def ask_all(service: ChatService, question: str, specs: Sequence[str]) -> Iterator[list[Reply]]:
    """One question to several backends, one after another (they share the model), streaming
    the growing list of replies so a UI can show them side by side."""
    chosen = contenders(service, specs)
    replies = [Reply(backend=c.spec) for c in chosen]
    for index, contender in enumerate(chosen):
        replies_now = service.reply(
            question, backend=contender.backend.id, options=contender.options
        )
        for reply in replies_now:
            replies[index] = replace(reply, backend=contender.spec)
            yield list(replies)


def in_modes(registry: BackendRegistry, specs: Sequence[str], modes: Sequence[str]) -> list[str]:
    """`specs` with each one that retrieves in a collection's mode (`rag:docs`) once per
    retrieval mode in `modes` (`rag:docs:dense`, `rag:docs:bm25`); all as given if none."""
    expanded: list[str] = []
    for spec in specs:
        backend, values = registry.parse_spec(spec)
        if modes and "mode" in backend.optional_positional and "mode" not in values:
            expanded += [f"{spec}:{mode}" for mode in modes]
        else:
            expanded.append(spec)
    return expanded


def best_modes(comparison: Comparison) -> dict[str, str]:
    """For each collection compared in two retrieval modes or more, the mode that answered
    best: by F1, then retrieval hit@k, then contains-the-answer; a tie goes to the faster."""
    tried: dict[str, list[tuple[tuple[float, ...], str]]] = {}
    for result in comparison.results:
        options = result.contender.options
        if "mode" in options and "collection" in options:
            s = result.scores()
            rank = [s["f1"], s["hit_at_k"], s["contains"], -(s["latency_p50_s"] or 0.0)]
            key = tuple(-1.0 if value is None else value for value in rank)
            tried.setdefault(options["collection"], []).append((key, options["mode"]))
    return {
        collection: max(ranked)[1]
        for collection, ranked in tried.items()
        if len({mode for _, mode in ranked}) > 1
    }
