"""Summaries that cover a whole collection, or chosen documents, where top-k retrieval cannot:
map-reduce over every document. The map step summarises each document and caches it by the
document's content hash, so adding, changing or deleting one document re-summarises only that
one; the reduce step writes a short overview of the document summaries.

Two methods (setting `summary_method`):
- `extract`: each document's key sentences, chosen by the embedder (central to the document,
  not repeating each other: maximal marginal relevance), and an overview of the sentences most
  central to the whole selection. Faithful by construction: every sentence is the document's.
- `model`: the language model writes each chunk's summary, joins a document's chunk summaries,
  and writes the overview from the document summaries (in groups where they are long).
docs/BENCHMARKS.md ("Summaries") measures both; the default follows from it.

LangChain's summarize chains (`load_summarize_chain`) now live in `langchain-classic`, build
one prompt per step and keep no per-document cache; the cache by content hash is the point
here, so the few steps are written out.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from common.files import write_atomically
from knowledge.reading import STOPWORDS, WORD, needs_previous, split_sentences, terms

if TYPE_CHECKING:
    from bot.resources import Resources

Method = Literal["extract", "model"]
# Bump when a method changes, so summaries cached by an older one are written again.
_VERSION = 1
# Maximal marginal relevance: weight of centrality against similarity to sentences chosen.
_MMR_LAMBDA = 0.7
# Key sentences favour those that state facts (names, numbers) over general ones: without
# it, a document's one specific fact was kept for 1 of 24 SQuAD train articles, with 0.4 for
# 13-15 of 24 (three sentences a document; three random draws of articles, none of those in
# the published figures).
_SPECIFICITY_WEIGHT = 0.4
_NAME_OR_NUMBER = re.compile(r"\b\d[\d,.]*\b|\b[A-Z][a-z]+")
# Sentences this short are headings or fragments, not statements worth a summary.
_MIN_WORDS = 4
# Overviews kept in a collection's cache (each selection of documents has its own).
_OVERVIEWS_KEPT = 100
# Document summaries the model reads at once when writing an overview (about 1,500 tokens).
_GROUP_SIZE = 8

MAP_PROMPT = (
    "Summarise this text in one or two sentences, keeping its main names, numbers and "
    "dates. Reply with the summary only."
)
# Asked of the default 135M model, "what topics" gives an overview; "write an overview"
# mostly gives the list back, edited.
OVERVIEW_PROMPT = "In one sentence, say what topics these documents cover."


@dataclass
class DocumentSummary:
    source: str
    text: str
    key: str  # of what it summarises: the document's content, the method and its settings
    seconds: float = 0.0  # the time it took to write (0 when it came from the cache)
    cached: bool = False

    def as_json(self) -> dict[str, Any]:
        return {"source": self.source, "summary": self.text, "cached": self.cached}


@dataclass
class Summary:
    collection: str
    documents: list[DocumentSummary]
    overview: str
    seconds: float

    @property
    def summarised(self) -> int:
        """Documents summarised by this run (the others came from the cache)."""
        return sum(not d.cached for d in self.documents)

    def as_json(self) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "overview": self.overview,
            "documents": [d.as_json() for d in self.documents],
            "summarised": self.summarised,
            "cached": len(self.documents) - self.summarised,
            "seconds": round(self.seconds, 2),
        }


class TooManyDocumentsError(ValueError):
    pass


def document_line(summary: DocumentSummary, label: str) -> str:
    return f"- **{label}**: {summary.text}"


class Summarizer:
    """Summaries of one knowledge base's collections with one method."""

    def __init__(
        self,
        knowledge: Any,  # knowledge.knowledge_base.KnowledgeBase
        embedder: Embeddings,
        *,
        method: Method = "extract",
        sentences: int = 3,
        max_documents: int = 500,
        model: Callable[[], BaseChatModel] | None = None,
        model_name: str = "",
    ) -> None:
        self.knowledge = knowledge
        self.embedder = embedder
        self.method = method
        self.sentences = sentences
        self.max_documents = max_documents
        self._model = model
        self._model_name = model_name

    # The map step -------------------------------------------------------------------------

    def documents(
        self,
        collection: str,
        sources: Sequence[str] | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> Iterator[DocumentSummary]:
        """The summary of each document of `collection` (or of `sources`), in name order,
        from the cache where the document has not changed since it was summarised."""
        chunks = self.knowledge.chunks_by_source(collection)
        chosen = sorted(chunks) if sources is None else [s for s in chunks if s in set(sources)]
        if len(chosen) > self.max_documents:
            raise TooManyDocumentsError(
                f"A summary covers at most {self.max_documents:,} documents (setting "
                f"KBOT_SUMMARY_MAX_DOCUMENTS); {collection!r} has {len(chosen):,}. Summarise "
                "chosen documents, or the documents about a topic."
            )
        cache = self._cache(collection)
        if sources is None:
            self._prune(cache, {self._key(file_hash) for file_hash, _ in chunks.values()})
        for done, source in enumerate(chosen):
            if progress:
                progress(done / max(len(chosen), 1), f"document {done + 1} of {len(chosen)}")
            file_hash, texts = chunks[source]
            yield self._document(cache / f"{self._key(file_hash)}.json", source, texts)
        if progress:
            progress(1.0, "documents summarised")

    def _key(self, file_hash: str) -> str:
        return _digest(f"{_VERSION}|{self.method}|{self.sentences}|{self._model_name}|{file_hash}")

    def _cache(self, collection: str) -> Path:
        folder = self.knowledge.folder(collection) / "summaries"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def _document(self, cached: Path, source: str, texts: list[str]) -> DocumentSummary:
        if cached.is_file():
            stored = json.loads(cached.read_text())
            return DocumentSummary(source, stored["text"], cached.stem, 0.0, True)
        started = time.perf_counter()
        if self.method == "extract":
            text = " ".join(self._key_sentences(_sentences(texts), self.sentences))
        else:
            text = self._written(texts)
        seconds = time.perf_counter() - started
        write_atomically(cached, json.dumps({"source": source, "text": text}))
        return DocumentSummary(source, text, cached.stem, seconds, False)

    def _key_sentences(self, sentences: list[str], count: int) -> list[str]:
        """Up to `count` sentences central to `sentences`, in reading order. Headings and
        sentences that lean on the one before them ("It was built in 1889.") are left out
        where there are others."""
        statements = [
            s for s in sentences if len(s.split()) >= _MIN_WORDS and not needs_previous(s)
        ]
        statements = statements or sentences
        if not statements:
            return []
        vectors = np.asarray(self.embedder.embed_documents(statements), dtype=np.float32)
        bonus = _SPECIFICITY_WEIGHT * np.array([_specificity(s) for s in statements])
        return [statements[i] for i in sorted(_most_central(vectors, count, bonus))]

    def _written(self, texts: list[str]) -> str:
        """The model's summary of a document: of each chunk, then of those together."""
        parts = [self._ask(MAP_PROMPT, text) for text in texts]
        return parts[0] if len(parts) == 1 else self._ask(MAP_PROMPT, "\n".join(parts))

    def _ask(self, instruction: str, text: str) -> str:
        assert self._model is not None, "the model method needs a model"
        reply = self._model().invoke([("system", instruction), ("human", text)])
        return " ".join(reply.text.split())

    @staticmethod
    def _prune(cache: Path, keep: set[str]) -> None:
        """Forget summaries of documents no longer in the collection (or of other methods),
        and all but the latest overviews."""
        for stale in cache.glob("*.json"):
            if stale.stem not in keep and not stale.stem.startswith("overview-"):
                stale.unlink(missing_ok=True)
        overviews = sorted(cache.glob("overview-*.json"), key=lambda p: p.stat().st_mtime)
        for stale in overviews[:-_OVERVIEWS_KEPT]:
            stale.unlink(missing_ok=True)

    def about(self, collection: str, topic: str) -> list[str]:
        """The documents of `collection` that mention `topic`: those holding all its words
        (by their first letters, as stems), else those holding the most of them."""
        wanted = terms(topic)
        held = {
            source: len(wanted & terms(" ".join(texts)))
            for source, (_, texts) in self.knowledge.chunks_by_source(collection).items()
        }
        most = max(held.values(), default=0)
        return [source for source, count in held.items() if count and count == most]

    # The reduce step ----------------------------------------------------------------------

    def overview(self, collection: str, documents: Sequence[DocumentSummary]) -> str:
        """One sentence on what the documents are about, written by the model from their
        summaries: in groups of `_GROUP_SIZE`, then from the groups' overviews, where they are
        many. Each overview is cached by what it read, so a change to one document writes
        only its group's overview and those above it again."""
        if len(documents) < 2:
            return documents[0].text if documents else ""
        cache = self._cache(collection)
        texts = [f"- {Path(d.source).name}: {d.text}" for d in documents]
        while len(texts) > 1:
            groups = [texts[i : i + _GROUP_SIZE] for i in range(0, len(texts), _GROUP_SIZE)]
            texts = [self._overview_of(cache, "\n".join(group)) for group in groups]
        return texts[0]

    def _overview_of(self, cache: Path, text: str) -> str:
        cached = cache / f"overview-{_digest(f'{_VERSION}|{self._model_name}|{text}')}.json"
        if cached.is_file():
            cached.touch()  # recently used: kept by `_prune`
            return json.loads(cached.read_text())["text"]
        overview = self._ask(OVERVIEW_PROMPT, text)
        write_atomically(cached, json.dumps({"text": overview}))
        return overview

    def summarise(
        self,
        collection: str,
        sources: Sequence[str] | None = None,
        progress: Callable[[float, str], None] | None = None,
    ) -> Summary:
        started = time.perf_counter()
        documents = list(self.documents(collection, sources, progress))
        overview = self.overview(collection, documents)
        return Summary(collection, documents, overview, time.perf_counter() - started)


def _sentences(texts: Sequence[str]) -> list[str]:
    """The sentences of a document's chunks once each: chunks overlap, so a sentence (or the
    tail of one) may appear twice."""
    found: list[str] = []
    for text in texts:
        for sentence in split_sentences(text):
            if not any(sentence in earlier for earlier in found[-20:]):
                found.append(sentence)
    return found


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _specificity(sentence: str) -> float:
    """How much a sentence states facts rather than generalities: the share of its words that
    are numbers or names (capitalised, past the first word), tripled and capped at 1."""
    words = sentence.split()
    named = _NAME_OR_NUMBER.findall(" ".join(words[1:]))
    return min(1.0, 3 * len(named) / max(len(words), 1))


def _most_central(vectors: np.ndarray, count: int, bonus: np.ndarray | float = 0.0) -> list[int]:
    """Indices of up to `count` rows nearest the rows' mean direction (plus `bonus`), each next
    one chosen by maximal marginal relevance (so they do not repeat each other)."""
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    centrality = vectors @ centre + bonus
    chosen: list[int] = []
    while len(chosen) < min(count, len(vectors)):
        redundancy = (vectors @ vectors[chosen].T).max(axis=1) if chosen else 0.0
        score = _MMR_LAMBDA * centrality - (1 - _MMR_LAMBDA) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


def summarizer(resources: Resources) -> Summarizer:
    """A summarizer over `resources`' knowledge (as the caller sees it) and settings."""
    settings = resources.settings
    return Summarizer(
        resources.knowledge,
        resources.embedder,
        method=settings.summary_method,
        sentences=settings.summary_sentences,
        max_documents=settings.summary_max_documents,
        model=lambda: resources.chat_model(repetition_penalty=1.0, max_new_tokens=120),
        model_name=settings.model,
    )


# Words of a request for a summary that name no topic ("What is this collection about?").
_REQUEST_WORDS = frozenset(
    ["summarise", "summarize", "summary", "summaries", "overview", "outline", "gist"]
    + ["collection", "collections", "documents", "document", "docs", "files", "file", "texts"]
    + ["give", "me", "please", "tell", "short", "brief", "main", "points", "key", "topics"]
    + ["topic", "cover", "covers", "say", "says", "whole", "everything", "all", "contain"]
    + ["contains", "list", "describe", "my", "our", "your", "you", "we", "i", "us", "up"]
)


def topic_of(request: str) -> str:
    """The topic a request for a summary names ("summarise the documents about tides" ->
    "tides"), or "" when it asks about everything."""
    words = WORD.findall(request)
    return " ".join(w for w in words if w.lower() not in STOPWORDS | _REQUEST_WORDS)
