"""Training data that teaches the model to read: reading-comprehension questions (SQuAD's
format) put to the model exactly as RAG puts them, with the sentences retrieval chose from a
collection of the articles, and the short answer as the target.

A share of questions is asked with their own article's passages taken away (distractors
only), and another share over their own passages with every statement that holds the answer
left out (`withheld`: on the right topic, still without the answer, as the questions that only
look answerable are); both are taught to answer "The documents do not say.": the reader learns
to say so rather than guess. A question whose chosen sentences miss its answer although its
article is there is left out (counted as `not_found`).
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_core.embeddings import Embeddings

from knowledge.reading import (
    NOT_IN_DOCUMENTS,
    Evidence,
    evidence_candidates,
    reader_messages,
    select_evidence,
)

if TYPE_CHECKING:
    from knowledge.results import Hit

Progress = Callable[[float, str], None]


class Searchable(Protocol):
    """What the reader's data needs of a knowledge base (or a caller's view of one)."""

    @property
    def embedder(self) -> Embeddings: ...

    def search_many(
        self, name: str, queries: Sequence[str], k: int, mode: str | None = None
    ) -> Iterator[list[Hit]]: ...


class ScoresTokens(Protocol):
    """What calibrating a reader needs of a loaded model (the app's `bot.model.LoadedModel`)."""

    tokenizer: Any

    def encode_chat(self, messages: list[dict[str, str]], max_new_tokens: int) -> Any: ...

    def logits(self, input_ids: Any, adapter: str | None = None) -> Any: ...


# The reader shipped with the app: a LoRA adapter trained by `kbot reader-data` and
# `kbot train` on SQuAD train articles (how, and its scores: docs/BENCHMARKS.md).
PACKAGED_READER = Path(__file__).parent / "reader"


@dataclass(frozen=True)
class ReadingQuestion:
    question: str
    answers: tuple[str, ...]  # any one of them, found in the evidence, is the target
    source: str  # the file that answers it
    # Files whose names start with this may answer it too (a SQuAD article's paragraphs):
    # taken away with `source` when the question is asked over distractors only.
    family: str = ""
    # A question that asks for several things: every part must be in the evidence, and the
    # target names them all ("Monday and Tuesday").
    parts: tuple[str, ...] = ()
    reply: str = ""  # the target when it is not the found answer itself (parts, a unit added)
    unanswerable: bool = False  # its documents are there but do not say: the target declines


class CachedEmbeddings(Embeddings):
    """The same texts (a paragraph's sentences) come back for many questions: embed once."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner
        self._cache: dict[str, list[float]] = {}

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            self._cache.update(zip(missing, self.inner.embed_documents(missing), strict=True))
        return [self._cache[t] for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def write_squad_paragraphs(folder: Path, destination: Path) -> list[ReadingQuestion]:
    """A SQuAD folder (`paragraphs.jsonl`, `questions.jsonl`) as one text file per paragraph
    under `destination`, and its questions pointing at those files."""
    destination.mkdir(parents=True, exist_ok=True)
    with (folder / "paragraphs.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            paragraph = json.loads(line)
            (destination / f"{paragraph['id']}.txt").write_text(paragraph["text"] + "\n")
    with (folder / "questions.jsonl").open(encoding="utf-8") as lines:
        return [squad_question(q) for q in map(json.loads, lines)]


def squad_question(record: dict[str, Any]) -> ReadingQuestion:
    """A SQuAD question (a `questions.jsonl` record) about its paragraph's file, the other
    paragraphs of its article (`<article>_<n>.txt`) its family."""
    paragraph = record["paragraph_id"]
    return ReadingQuestion(
        record["question"],
        tuple(record["answers"]),
        f"{paragraph}.txt",
        family=paragraph.rsplit("_", 1)[0] + "_",
    )


def join_parts(parts: Sequence[str]) -> str:
    """Parts of an answer as a person lists them: "A", "A and B", "A, B and C"."""
    parts = [p.strip() for p in parts]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _normal(text: str) -> str:
    return " ".join(text.split()).lower()


def _holds_any_answer(text: str, question: ReadingQuestion) -> bool:
    """Whether `text` holds one of the question's answers or parts."""
    return any(_normal(span) in _normal(text) for span in (*question.answers, *question.parts))


def _holds_answer(texts: Sequence[str], question: ReadingQuestion) -> str | None:
    """The target if the texts hold what it needs (every part; else any answer, the shortest
    span first), or None."""
    joined = " ".join(map(_normal, texts))

    def held(span: str) -> bool:
        return _normal(span) in joined

    if question.parts:
        return (
            (question.reply or join_parts(question.parts))
            if all(map(held, question.parts))
            else None
        )
    for answer in sorted(question.answers, key=len):
        if held(answer):
            return question.reply or answer.strip()
    return None


def _not_its_own(found: Hit | Evidence, question: ReadingQuestion) -> bool:
    name = Path(found.source).name
    return name != question.source and not (question.family and name.startswith(question.family))


def reader_records(
    knowledge: Searchable,
    collection: str,
    questions: Sequence[ReadingQuestion],
    *,
    k: int = 4,
    sentences: int = 2,
    unanswerable_share: float = 0.2,
    withheld_share: float = 0.0,
    seed: int = 42,
    progress: Progress | None = None,
) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Chat records `{"messages": [system, user, assistant]}` for training, and counts of
    the questions by what they teach: an answer, "do not say" (`distractors_only`: asked
    without its own documents; `withheld`: asked of its own documents without the statements
    that hold the answer; `unanswerable`: its documents do not say), or nothing (`not_found`,
    left out). Both shares are of the questions that teach an answer."""
    embedder = CachedEmbeddings(knowledge.embedder)
    chooser = random.Random(seed)
    records: list[dict[str, Any]] = []
    counts = {"answer": 0, "not_found": 0, "distractors_only": 0, "withheld": 0}
    if any(q.unanswerable for q in questions):
        counts["unanswerable"] = 0
    texts = [q.question for q in questions]
    # k more than needed, so that k remain once a question's own article is taken away.
    results = list(knowledge.search_many(collection, texts, 2 * k))
    # Embed every question and candidate sentence in large batches first (much faster than
    # a few at a time); choosing the evidence then only reads the cache.
    wanted = texts + [c.text for hits in results for c in evidence_candidates(hits)]
    unique = list(dict.fromkeys(wanted))
    for start in range(0, len(unique), 1024):
        embedder.embed_documents(unique[start : start + 1024])
        if progress:
            progress(min(1.0, (start + 1024) / len(unique)), f"embedding {len(unique)} texts")
    for number, (question, hits) in enumerate(zip(questions, results, strict=True), start=1):
        evidence = select_evidence(embedder, question.question, hits[:k], sentences)
        # Only its own documents' statements count: a short answer ("closed", "2019") found
        # in another document's would teach the reader to answer from the wrong one.
        own = [e.text for e in evidence if not question.source or not _not_its_own(e, question)]
        answer = None if question.unanswerable else _holds_answer(own, question)
        # The share is of the questions that teach an answer, so that a set whose answers
        # retrieval often misses (tables) does not teach mostly declining.
        draw = chooser.random()
        distractors_only = bool(answer) and draw < unanswerable_share
        withheld = (
            bool(answer) and not distractors_only and draw < unanswerable_share + withheld_share
        )
        if distractors_only:
            others = [h for h in hits if _not_its_own(h, question)][:k]
            evidence = select_evidence(embedder, question.question, others, sentences)
            answer = None
        elif withheld:
            evidence = select_evidence(
                embedder,
                question.question,
                hits[:k],
                sentences,
                leave_out=partial(_holds_any_answer, question=question),
            )
            answer = None
        kind = (
            "distractors_only"
            if distractors_only
            else "withheld"
            if withheld
            else "unanswerable"
            if question.unanswerable
            else "answer"
            if answer
            else "not_found"
        )
        counts[kind] += 1
        if kind == "not_found":
            # Retrieval missed the answer though the article holds it: whether the reader
            # should then answer or decline is unclear, so it is not taught either way.
            continue
        messages = reader_messages(question.question, evidence)
        messages.append({"role": "assistant", "content": answer or NOT_IN_DOCUMENTS})
        records.append({"messages": messages})
        if progress and (number % 50 == 0 or number == len(questions)):
            progress(number / len(questions), f"question {number} of {len(questions)}")
    return records, counts


def decline_margins(
    loaded: ScoresTokens, adapter: str | None, records: Sequence[dict[str, Any]]
) -> list[tuple[bool, float]]:
    """For each reader record (`reader_records`' format): whether its target declines, and by
    how much greedy decoding prefers "The documents do not say." to anything else at its
    closest token (the least, over that reply's tokens, of its token's score minus the best
    other's). A leaning of `b` (`GenerationParams.lean`) makes the reader decline exactly
    where `b` + margin > 0; one forward pass a record, the reply given."""
    import torch

    reply = loaded.tokenizer.encode(NOT_IN_DOCUMENTS, add_special_tokens=False)
    steps = torch.arange(len(reply))
    found: list[tuple[bool, float]] = []
    for record in records:
        *asked, target = record["messages"]
        prompt = loaded.encode_chat(asked, max_new_tokens=len(reply))
        ids = torch.cat([prompt, torch.tensor([reply])], dim=1)
        scores = loaded.logits(ids, adapter)[prompt.shape[1] - 1 : -1]
        chosen = scores[steps, reply].clone()
        scores[steps, reply] = float("-inf")
        margin = float((chosen - scores.max(dim=1).values).min())
        found.append((target["content"] == NOT_IN_DOCUMENTS, margin))
    return found


# A kind of document with fewer held-out answers than this says too little to calibrate on.
FEWEST_TO_CALIBRATE = 10


def calibrate_decline_bias(
    margins: Sequence[tuple[bool, float]],
    most_declined: float,
    groups: Sequence[str] | None = None,
) -> float:
    """The largest leaning towards declining under which at most `most_declined` of the
    records whose target is an answer (their evidence holds it) are declined; with `groups`
    (each record's kind of document), in every group of at least `FEWEST_TO_CALIBRATE` such
    records, so that no kind of document is declined more."""
    if groups is None:
        return _calibrated(margins, most_declined)
    by_group: dict[str, list[tuple[bool, float]]] = {}
    for group, found in zip(groups, margins, strict=True):
        by_group.setdefault(group, []).append(found)
    enough = [
        found
        for found in by_group.values()
        if sum(not declines for declines, _ in found) >= FEWEST_TO_CALIBRATE
    ]
    return min(_calibrated(found, most_declined) for found in enough or [list(margins)])


def _calibrated(margins: Sequence[tuple[bool, float]], most_declined: float) -> float:
    needed = sorted(-margin for declines, margin in margins if not declines)
    if not needed:
        raise ValueError("no record with an answer to calibrate on")
    # Declined where lean > -margin: leaning just to the (k+1)-th smallest declines k.
    allowed = int(most_declined * len(needed))
    return round(needed[min(allowed, len(needed) - 1)] - 0.01, 2)


def declined_share(margins: Sequence[tuple[bool, float]], lean: float, declines: bool) -> float:
    """The share of records (with a declining target, or an answer) declined at `lean`."""
    chosen = [margin for target, margin in margins if target == declines]
    return sum(lean + margin > 0 for margin in chosen) / len(chosen) if chosen else 0.0
