"""What the reader sees: the statements of the retrieved chunks that answer the question
(sentences, list items and table rows with what gives them meaning: `statements.py`), and the
one prompt that puts them beside it. The RAG backend answers with this prompt, and the
reader adapter is trained on it, so both see exactly the same text."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.embeddings import Embeddings

from knowledge.results import Hit
from knowledge.statements import Statement, row_statement, statements
from knowledge.text import terms

NOT_IN_DOCUMENTS = "The documents do not say."
READER_SYSTEM = (
    "Answer the question with a short phrase taken from the passages. If the passages do "
    f"not answer it, reply exactly: {NOT_IN_DOCUMENTS}"
)

REWRITE_SYSTEM = (
    "Rewrite the user's last question so that it can be understood without the conversation. "
    "Reply with the rewritten question only."
)

# How much sharing the question's words adds to embedding similarity when choosing sentences.
# Chosen on SQuAD train articles (gold answer among the top 2 sentences: 0.66 with
# similarity alone, 0.74 with 0.3); the dev articles were not looked at for it.
LEXICAL_WEIGHT = 0.3
# How much a match of the question with a sentence's section (its headings) adds.
SECTION_WEIGHT = 0.5

# A question after several things ("which days", "who ... and in which year", "all the
# fees") is often answered by several list items, rows or sentences: it reads one more.
_SEVERAL = re.compile(
    r"\b(?:and|both|all|each|every)\b"
    r"|\b(?:which|what)\s+(?!(?:is|was|does|has|makes|causes)\b)\w+[^\Ws]s\b",
    re.I,
)


def statements_wanted(question: str, count: int) -> int:
    """How many statements the reader reads for `question`: `count`, one more for a question
    after several things (0, whole chunks, stays 0)."""
    return count + 1 if count > 0 and _SEVERAL.search(question) else count


@dataclass(frozen=True)
class Evidence:
    """A passage the answer rests on: a statement of a chunk (`statements.py`), the chunk it
    came from (`passage`, numbered like the sources), its section and its similarity."""

    text: str
    source: str
    passage: int
    score: float
    location: str = ""

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "source": self.source,
            "passage": self.passage,
            "score": self.score,
        }
        if self.location:
            data["location"] = self.location
        return data


@dataclass(frozen=True)
class Candidate:
    """A statement of a retrieved chunk that may be evidence: its text, the chunk's passage
    number (as the sources are numbered), the chunk, and the section it stands in."""

    passage: int
    hit: Hit
    text: str
    location: str


def evidence_candidates(hits: Sequence[Hit]) -> list[Candidate]:
    """Every statement of `hits` (`knowledge/statements.py`), in order."""
    candidates: list[Candidate] = []
    for number, hit in enumerate(hits, start=1):
        if hit.location.startswith("row "):  # a table's row, stored as "column: value" lines
            found = [Statement(row_statement(hit.text), hit.location)]
        else:
            found = statements(hit.text, hit.location)
        candidates += [Candidate(number, hit, s.text, s.section) for s in found]
    return candidates


def embed_by_length(embedder: Embeddings, texts: list[str], group: int = 8) -> list[list[float]]:
    """`embedder.embed_documents(texts)` in small groups of similar length: a batch is padded
    to its longest text, and sentences vary a lot (a third less time on 20 sentences)."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors: list[list[float]] = [[] for _ in texts]
    for start in range(0, len(order), group):
        chosen = order[start : start + group]
        for index, vector in zip(
            chosen, embedder.embed_documents([texts[i] for i in chosen]), strict=True
        ):
            vectors[index] = vector
    return vectors


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


def _names_a_section(candidate: Candidate) -> bool:
    return bool(candidate.location) and not candidate.location.startswith("row ")


def _share_held(wanted: set[str], sentence: str) -> float:
    """The share of the question's content words (`wanted`) that the sentence holds too."""
    return len(wanted & terms(sentence)) / len(wanted) if wanted else 0.0


def select_evidence(
    embedder: Embeddings,
    question: str,
    hits: Sequence[Hit],
    count: int = 2,
    section_weight: float = SECTION_WEIGHT,
    leave_out: Callable[[str], bool] | None = None,
) -> list[Evidence]:
    """The `count` sentences of `hits` that best match `question`, best first: embedding
    similarity (the same model as the chunks), plus a share for the question's words they
    hold. Each keeps its similarity as `score`. `count` 0 gives the whole chunks; a question
    after several things gets one more (`statements_wanted`). Statements for which
    `leave_out` is true are never chosen."""
    count = statements_wanted(question, count)
    if count <= 0:
        return [
            Evidence(hit.text, hit.source, number, hit.score, hit.location)
            for number, hit in enumerate(hits, start=1)
        ]
    candidates = [c for c in evidence_candidates(hits) if not (leave_out and leave_out(c.text))]
    if not candidates:
        return []
    texts = [c.text for c in candidates]
    named = {c.location for c in candidates if _names_a_section(c)}
    sections = sorted(named) if section_weight else []
    question_vector, *vectors = embed_by_length(embedder, [question, *texts, *sections])
    similarity = [_dot(question_vector, v) for v in vectors[: len(texts)]]
    section_similarity = {
        section: _dot(question_vector, v)
        for section, v in zip(sections, vectors[len(texts) :], strict=True)
    }
    # Questions are worded unlike their answers, but they usually share their rare words:
    # those break ties that similarity alone gets wrong.
    wanted = terms(question)
    # A section whose headings match the question lifts its sentences above those of other
    # sections; within a section, the sentence's own match decides.
    rank = [
        score
        + LEXICAL_WEIGHT * _share_held(wanted, candidate.text)
        + section_weight * section_similarity.get(candidate.location, 0.0)
        for score, candidate in zip(similarity, candidates, strict=True)
    ]
    chosen: list[Evidence] = []
    for order in sorted(range(len(candidates)), key=lambda i: (-rank[i], i)):
        candidate = candidates[order]
        text = candidate.text
        if any(text in e.text for e in chosen):
            continue  # already given, with its context
        found = Evidence(
            text,
            candidate.hit.source,
            candidate.passage,
            round(similarity[order], 4),
            candidate.location,
        )
        held = [i for i, e in enumerate(chosen) if e.text in text]
        if held:
            # A heading ("The Tallow ferry") or sentence chosen before, now with what follows
            # it: the longer one stands in its place, so the answer is not left out.
            chosen[held[0]] = found
            chosen = [e for i, e in enumerate(chosen) if i not in held[1:]]
            continue
        chosen.append(found)
        if len(chosen) == count:
            break
    return chosen


def rewrite_messages(conversation: str, question: str) -> list[dict[str, str]]:
    """The prompt that rewrites a follow-up so that it stands alone (`conversation`: the last
    turns as "User: ..." / "Assistant: ..." lines). The reader adapter is trained on it too."""
    return [
        {"role": "system", "content": REWRITE_SYSTEM},
        {
            "role": "user",
            "content": f"Conversation:\n{conversation}\n\nLast question: {question.strip()}",
        },
    ]


def reader_messages(question: str, evidence: Sequence[Evidence]) -> list[dict[str, str]]:
    """The reader's prompt: numbered passages, the question, a request for a short answer."""
    passages = "\n".join(f"[{e.passage}] {' '.join(e.text.split())}" for e in evidence)
    return [
        {"role": "system", "content": READER_SYSTEM},
        {"role": "user", "content": f"Passages:\n{passages}\n\nQuestion: {question.strip()}"},
    ]
