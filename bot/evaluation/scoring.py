"""Answer scores as SQuAD defines them, and whether retrieval found the expected source."""

from __future__ import annotations

import collections
import re
import string
from collections.abc import Sequence
from pathlib import PurePath

_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """The official SQuAD v1.1 normalization: lowercase, no punctuation, no articles
    (a, an, the), whitespace collapsed."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def f1_score(prediction: str, gold: str) -> float:
    predicted, truth = normalize_answer(prediction).split(), normalize_answer(gold).split()
    same = sum((collections.Counter(predicted) & collections.Counter(truth)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(truth)
    return 2 * precision * recall / (precision + recall)


def answer_scores(prediction: str, answers: Sequence[str]) -> dict[str, float]:
    """Exact match and token F1 (each the best over the gold answers, as the official
    script), and whether the answer contains a gold answer: small models often answer right
    in a full sentence, which exact match scores 0."""
    norm = normalize_answer(prediction)
    golds = [normalize_answer(a) for a in answers]
    return {
        "em": float(any(norm == gold for gold in golds)),
        "f1": max(f1_score(prediction, a) for a in answers),
        "contains": float(any(gold and f" {gold} " in f" {norm} " for gold in golds)),
    }


def same_source(expected: str, stored: str) -> bool:
    """Whether a stored source (the path as ingested) is the one a question names: the same
    path, or a path ending in the named one ("guide/setup.md", "setup.md")."""
    want, have = PurePath(expected.strip()).parts, PurePath(stored).parts
    want = tuple(part for part in want if part not in (".", ""))
    return bool(want) and have[-len(want) :] == want


def source_hit(expected: str, retrieved: Sequence[str]) -> bool:
    return any(same_source(expected, source) for source in retrieved)
