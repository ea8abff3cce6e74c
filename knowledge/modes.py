"""How a collection can be searched: the retrieval modes, each described by what it combines.
A new mode is one entry in `RETRIEVAL_MODES` (and its name in the `Mode` type, which settings,
the RAG backend's options and the CLI validate against); `KnowledgeBase.search_many` reads
the entry, never the name. Figures for each: docs/BENCHMARKS.md."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

from common.errors import BadInput

Mode = Literal["dense", "bm25", "hybrid", "hyde", "questions"]


@dataclass(frozen=True)
class RetrievalMode:
    name: Mode
    description: str
    dense: bool = True  # the chunks nearest the query's embedding
    keywords: bool = False  # BM25 over the chunks' words: fused with dense, or alone
    hypothetical: bool = False  # the query embedded with an answer the model wrote without docs
    questions: bool = False  # BM25 also over questions the model wrote for each chunk


RETRIEVAL_MODES: dict[str, RetrievalMode] = {
    mode.name: mode
    for mode in (
        RetrievalMode("dense", "nearest embeddings"),
        RetrievalMode("bm25", "keywords (BM25)", dense=False, keywords=True),
        RetrievalMode("hybrid", "nearest embeddings and keywords, scores fused", keywords=True),
        RetrievalMode("hyde", "nearest to an answer the model writes first", hypothetical=True),
        RetrievalMode(
            "questions",
            "hybrid, with keywords of questions the model wrote for each chunk at ingestion",
            keywords=True,
            questions=True,
        ),
    )
}
MODES: tuple[Mode, ...] = tuple(mode.name for mode in RETRIEVAL_MODES.values())
assert set(MODES) == set(get_args(Mode)), "every mode has an entry, every entry a name in Mode"


def retrieval_mode(name: str) -> RetrievalMode:
    """The mode called `name`; a clear error naming the modes if there is none."""
    if name not in RETRIEVAL_MODES:
        raise BadInput(f"Unknown retrieval mode {name!r}: use one of {', '.join(MODES)}.")
    return RETRIEVAL_MODES[name]


def modes_help() -> str:
    """Each mode with what it does, for settings' and commands' help."""
    return "; ".join(f"{mode.name}: {mode.description}" for mode in RETRIEVAL_MODES.values())
