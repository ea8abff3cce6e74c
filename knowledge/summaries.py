"""Summaries that cover a whole collection, or chosen documents, where top-k retrieval cannot:
map-reduce over every document. The map step summarises each document and caches it by the
document's content hash, so adding, changing or deleting one document re-summarises only that
one; the reduce step writes a short overview of the document summaries.

Two methods (setting `summary_method`):
- `extract`: each document's key sentences, chosen by the embedder: half of them central to
  the document, the rest what those do not say (both by maximal marginal relevance, with
  less weight on centrality for the second half), favouring names and numbers and the words
  of the document's name; and an overview that names the
  collection's main topics: each document's key phrases, the most central of them where there
  are many. Faithful by construction: every word is the documents'.
- `model`: the language model writes each chunk's summary, joins a document's chunk summaries,
  and writes the overview from the document summaries (in groups where they are long). An
  overview that states a number its input does not, repeats itself or copies its input back
  is replaced by the topics overview: the default 135M model does all three.
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
from typing import Any, Literal, Protocol

import numpy as np
from langchain_core.embeddings import Embeddings
from langchain_core.language_models import BaseChatModel

from common.errors import BadInput
from common.files import write_atomically
from common.text import literal_markdown
from knowledge.chunking import PlacedChunk, join_chunks
from knowledge.statements import Statement, needs_previous, statements
from knowledge.text import STOPWORDS, WORD, terms

Method = Literal["extract", "model"]
# Bump when a method changes, so summaries cached by an older one are written again.
_VERSION = 5
# Maximal marginal relevance: weight of centrality against similarity to sentences chosen.
_MMR_LAMBDA = 0.7
# The same weight for a document's later key sentences, which are to state what the first
# ones do not: a fact a document mentions in passing is otherwise lost to its main theme.
# Chosen, with `_TITLE_WEIGHT`, on six random draws of 24 SQuAD train articles (seeds 11-16),
# not those in the published figures (docs/BENCHMARKS.md).
_NOVELTY_LAMBDA = 0.3
# Key sentences favour those that state facts (names, numbers) over general ones: without
# it, a document's one specific fact was kept for 1 of 24 SQuAD train articles, with 0.4 for
# 13-15 of 24 (three sentences a document; three random draws of articles, none of those in
# the published figures).
_SPECIFICITY_WEIGHT = 0.4
# Sentences that name what the document's name names are about its subject (the title
# method of Edmundson's extracts): the share of the name's words a sentence holds, this much.
_TITLE_WEIGHT = 0.2
_NAME_OR_NUMBER = re.compile(r"\b\d[\d,.]*\b|\b[A-Z][a-z]+")
# Sentences this short are headings or fragments, not statements worth a summary.
_MIN_WORDS = 4
# Overviews kept in a collection's cache (each selection of documents has its own).
_OVERVIEWS_KEPT = 100
# Document summaries the model reads at once when writing an overview (about 1,500 tokens).
_GROUP_SIZE = 8
# Key phrases kept per document, and named in an overview.
_TOPICS_PER_DOCUMENT = 2
_OVERVIEW_TOPICS = 8
# Words in a key phrase: "Kestrel Point lighthouse", not a clause.
_MAX_PHRASE_WORDS = 3
# A phrase less its last word stands for it when at most this much less near the text
# (cosine). Set by eye on a handful of invented documents ("Henmore bell hangs" -> "Henmore
# bell"; 0.74 against 0.62).
_SHORTER_BY = 0.15
# A one-sentence overview longer than this has copied its input back.
_MAX_OVERVIEW_WORDS = 60
_NUMBER_WORD_TEXT = """
zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety
hundred thousand million billion
"""
_NUMBER_WORDS = frozenset(_NUMBER_WORD_TEXT.split())

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
    topics: tuple[str, ...] = ()  # its key phrases, most central first

    def as_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "summary": self.text,
            "topics": list(self.topics),
            "cached": self.cached,
        }


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


class TooManyDocumentsError(BadInput):
    pass


def document_line(summary: DocumentSummary, label: str) -> str:
    """A document's summary as a Markdown list item; its words are shown literally."""
    return f"- **{literal_markdown(label)}**: {literal_markdown(summary.text)}"


class Collections(Protocol):
    """What a summary reads of a knowledge base (or of a caller's view of one)."""

    def placed_chunks_by_source(self, name: str) -> dict[str, tuple[str, list[PlacedChunk]]]: ...
    def summaries_folder(self, name: str) -> Path: ...


class Summarizer:
    """Summaries of one knowledge base's collections with one method; `model` makes the
    chat model of the `model` method when it is first needed."""

    def __init__(
        self,
        knowledge: Collections,
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
        chunks = self.knowledge.placed_chunks_by_source(collection)
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
            file_hash, placed = chunks[source]
            yield self._document(cache / f"{self._key(file_hash)}.json", source, placed)
        if progress:
            progress(1.0, "documents summarised")

    def _key(self, file_hash: str) -> str:
        return _digest(f"{_VERSION}|{self.method}|{self.sentences}|{self._model_name}|{file_hash}")

    def _cache(self, collection: str) -> Path:
        return self.knowledge.summaries_folder(collection)

    def _document(self, cached: Path, source: str, chunks: list[PlacedChunk]) -> DocumentSummary:
        if cached.is_file():
            stored = json.loads(cached.read_text())
            topics = tuple(stored.get("topics", ()))
            return DocumentSummary(source, stored["text"], cached.stem, 0.0, True, topics)
        started = time.perf_counter()
        if self.method == "extract":
            # Statements, as the reader reads them: a heading is never one on its own (it was
            # run into the next sentence), and a table row comes with its column names.
            sentences = [_sentence(s) for s in statements(join_chunks(chunks))]
            text = self._key_sentences(sentences, self.sentences, _title_terms(source))
        else:
            text = self._written([chunk.text for chunk in chunks])
        topics = tuple(self._key_phrases(text, _TOPICS_PER_DOCUMENT))
        seconds = time.perf_counter() - started
        write_atomically(
            cached, json.dumps({"source": source, "text": text, "topics": list(topics)})
        )
        return DocumentSummary(source, text, cached.stem, seconds, False, topics)

    def _key_sentences(self, sentences: list[str], count: int, title: set[str]) -> str:
        """Up to `count` statements of `sentences`, in reading order: the first half central
        to them, the rest what those do not say. Statements of facts (names, numbers) and of
        the `title`'s words are favoured. A sentence that leans on the one before it ("It
        weighs 410 kilograms.") comes with that one, since such sentences often hold a
        document's facts; headings and fragments are left out where there are others."""
        units = [
            [i - 1, i] if i and needs_previous(s) else [i]
            for i, s in enumerate(sentences)
            if len(s.split()) >= _MIN_WORDS
        ] or [[i] for i in range(len(sentences))]
        if not units:
            return ""
        texts = [" ".join(sentences[i] for i in unit) for unit in units]
        vectors = np.asarray(self.embedder.embed_documents(texts), dtype=np.float32)
        bonus = np.array(
            [
                _SPECIFICITY_WEIGHT * _specificity(t)
                + _TITLE_WEIGHT * len(title & terms(t)) / max(len(title), 1)
                for t in texts
            ]
        )
        central = (count + 1) // 2
        picked = _most_central(vectors, count, bonus, novel_after=central)
        chosen = {i for unit in picked for i in units[unit]}
        return " ".join(sentences[i] for i in sorted(chosen))

    def _key_phrases(self, text: str, count: int) -> list[str]:
        """Up to `count` phrases of `text` nearest its meaning (as KeyBERT chooses keywords:
        short runs of content words, embedded and ranked against the whole text, not
        repeating each other). KeyBERT itself would add scikit-learn for these few lines."""
        candidates = _phrases(text)
        if not candidates:
            return []
        vectors = np.asarray(self.embedder.embed_documents([text, *candidates]), dtype=np.float32)
        row = {phrase: i for i, phrase in enumerate(candidates)}
        nearness = vectors[1:] @ vectors[0]
        kept = list(dict.fromkeys(_shortest(p, row, nearness) for p in candidates))
        rows = [row[p] for p in kept]
        return [kept[i] for i in _most_relevant(vectors[1:][rows], nearness[rows], count)]

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
            source: len(wanted & terms(" ".join(chunk.text for chunk in chunks)))
            for source, (_, chunks) in self.knowledge.placed_chunks_by_source(collection).items()
        }
        most = max(held.values(), default=0)
        return [source for source, count in held.items() if count and count == most]

    # The reduce step ----------------------------------------------------------------------

    def overview(self, collection: str, documents: Sequence[DocumentSummary]) -> str:
        """One line on what the documents are about: the topics they name, or with the model
        method, the model's sentence where it is faithful to the summaries."""
        if len(documents) < 2:
            return documents[0].text if documents else ""
        if self.method == "model":
            return self._written_overview(collection, documents) or self._topics_overview(documents)
        return self._topics_overview(documents)

    def _topics_overview(self, documents: Sequence[DocumentSummary]) -> str:
        """The documents' main topics: each one's first key phrase, and of many, the most
        central and least alike."""
        phrases = list(dict.fromkeys(d.topics[0] for d in documents if d.topics))
        more = len(phrases) > _OVERVIEW_TOPICS
        if more:
            vectors = np.asarray(self.embedder.embed_documents(phrases), dtype=np.float32)
            phrases = [phrases[i] for i in sorted(_most_central(vectors, _OVERVIEW_TOPICS))]
        among = "among their topics" if more else "on"
        return f"{len(documents)} documents, {among}: {'; '.join(phrases)}."

    def _written_overview(self, collection: str, documents: Sequence[DocumentSummary]) -> str:
        """The model's sentence on what the documents cover, from their summaries: in groups
        of `_GROUP_SIZE`, then from the groups' overviews, where they are many; "" where a
        step was not faithful to what it read. Each step is cached by what it read, so a
        change to one document writes only its group's overview and those above it again."""
        cache = self._cache(collection)
        texts = [f"- {Path(d.source).name}: {d.text}" for d in documents]
        while len(texts) > 1:
            groups = [texts[i : i + _GROUP_SIZE] for i in range(0, len(texts), _GROUP_SIZE)]
            texts = [self._overview_of(cache, "\n".join(group)) for group in groups]
            if "" in texts:
                return ""
        return texts[0]

    def _overview_of(self, cache: Path, text: str) -> str:
        cached = cache / f"overview-{_digest(f'{_VERSION}|{self._model_name}|{text}')}.json"
        if cached.is_file():
            cached.touch()  # recently used: kept by `_prune`
            return json.loads(cached.read_text())["text"]
        overview = self._ask(OVERVIEW_PROMPT, text)
        overview = overview if faithful(overview, text) else ""
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


def faithful(overview: str, source: str) -> bool:
    """Whether a one-sentence overview of `source` can be shown: it states no number that
    `source` does not ("every fourteen minutes" for "forty"), does not go round in circles
    (a phrase of three words twice) and is not `source` copied back (too long for one
    sentence)."""
    words = [w.lower() for w in WORD.findall(overview)]
    given = {w.lower() for w in WORD.findall(source)}
    numbers = {w for w in words if w.isdigit() or w in _NUMBER_WORDS}
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    return (
        0 < len(words) <= _MAX_OVERVIEW_WORDS
        and numbers <= given
        and len(set(trigrams)) == len(trigrams)
    )


# Where a key phrase cannot run on: punctuation that ends a clause or a name.
_PHRASE_BREAK = re.compile(r"[.,;:!?()\[\]\"“”]")


def _phrases(text: str) -> list[str]:
    """Candidate key phrases of `text`: runs of up to `_MAX_PHRASE_WORDS` content words (no
    stopwords, numbers or clause breaks inside), each once."""
    found: dict[str, str] = {}
    for part in _PHRASE_BREAK.split(text):
        runs: list[list[str]] = [[]]
        for word in WORD.findall(part):
            if word.lower() in STOPWORDS or word.isdigit() or len(word) < 3:
                runs.append([])
            else:
                runs[-1].append(word)
        for run in runs:
            for size in range(1, _MAX_PHRASE_WORDS + 1):
                for start in range(len(run) - size + 1):
                    phrase = " ".join(run[start : start + size])
                    found.setdefault(phrase.lower(), phrase)
    return list(found.values())


def _shortest(phrase: str, row: dict[str, int], nearness: np.ndarray) -> str:
    """`phrase` without its last word where that adds little to its nearness ("Orvel Bridge
    crosses" -> "Orvel Bridge"): embeddings favour longer phrases, which often run on from a
    name into a verb."""
    shorter = phrase.rsplit(" ", 1)[0]
    if shorter in row and nearness[row[shorter]] >= nearness[row[phrase]] - _SHORTER_BY:
        return shorter
    return phrase


def _sentence(statement: Statement) -> str:
    """A statement as a summary's sentence: without the headings the summary's label already
    gives, and closed, so that a table row does not run into the next sentence."""
    text = statement.text
    if statement.section:
        text = text.removeprefix(f"{statement.section} > ")
    return text if text[-1:] in ".!?" else f"{text}."


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _specificity(sentence: str) -> float:
    """How much a sentence states facts rather than generalities: the share of its words that
    are numbers or names (capitalised, past the first word), tripled and capped at 1."""
    words = sentence.split()
    named = _NAME_OR_NUMBER.findall(" ".join(words[1:]))
    return min(1.0, 3 * len(named) / max(len(words), 1))


def _title_terms(source: str) -> set[str]:
    """The words of a document's file name as `terms` stems them ("hard_rock-history.md":
    hard, rock, histo)."""
    return terms(re.sub(r"[_\-.]+", " ", Path(source).stem))


def _most_central(
    vectors: np.ndarray,
    count: int,
    bonus: np.ndarray | float = 0.0,
    novel_after: int | None = None,
) -> list[int]:
    """Indices of up to `count` rows nearest the rows' mean direction (plus `bonus`), each next
    one chosen by maximal marginal relevance (so they do not repeat each other)."""
    centre = vectors.mean(axis=0)
    centre /= np.linalg.norm(centre) or 1.0
    return _most_relevant(vectors, vectors @ centre + bonus, count, novel_after)


def _most_relevant(
    vectors: np.ndarray, relevance: np.ndarray, count: int, novel_after: int | None = None
) -> list[int]:
    """Indices of up to `count` rows by maximal marginal relevance: each next one the most
    relevant, less its likeness to those already chosen; past the first `novel_after`, mostly
    the least like them."""
    # Not langchain_core's `maximal_marginal_relevance`: that one scores relevance as the
    # likeness to one query vector, where a summary's relevance is centrality plus a bonus
    # (lead sentences, the user's topic), and it has no second, novelty-first phase.
    chosen: list[int] = []
    while len(chosen) < min(count, len(vectors)):
        redundancy = (vectors @ vectors[chosen].T).max(axis=1) if chosen else 0.0
        novel = novel_after is not None and len(chosen) >= novel_after
        weight = _NOVELTY_LAMBDA if novel else _MMR_LAMBDA
        score = weight * relevance - (1 - weight) * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    return chosen


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
