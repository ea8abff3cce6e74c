"""BM25 over a collection's committed chunks, and its fusion with the dense hits.

The index (bm25s: sparse matrices, a few milliseconds per query at 100k chunks) is built from
the chunks stored in Chroma, never from the files, and saved beside the collection's manifest
under the version of what the manifest commits. Ingestion, replacement and deletion change that
version, so the next search builds the index again from the store; a restarted app loads the
saved one. Fusion is a few lines here rather than LangChain's `EnsembleRetriever`: that one
works on retrievers and Documents and fuses by rank only, and fusing our hits keeps the
committed-version filter and the chunk identities (source, chunk index) as they are.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from pathlib import Path

import bm25s
import numpy as np

from knowledge.manifest import CollectionFolder, Manifest, store_key
from knowledge.results import Hit
from knowledge.search import hit_of
from knowledge.store import ChromaStore
from knowledge.text import STEMMER

# Text indexed with a chunk besides its own, by (source, chunk index).
Expansions = Mapping[tuple[str, int], list[str]]


def version_of(manifest: Manifest) -> str:
    """A short hash of what `manifest` commits: each source and its content hash."""
    listing = json.dumps(sorted((s, e.hash) for s, e in manifest.sources.items()))
    return hashlib.sha256(listing.encode()).hexdigest()[:16]


def _tokens(texts: Sequence[str]) -> list[list[str]]:
    tokens = bm25s.tokenize(
        list(texts), stopwords="en", stemmer=STEMMER, return_ids=False, show_progress=False
    )
    assert isinstance(tokens, list)  # return_ids=False: the tokens themselves
    return tokens


class LexicalIndex:
    """BM25 over one collection version's chunks."""

    def __init__(self, retriever: bm25s.BM25, chunks: list[Hit]) -> None:
        self.retriever = retriever
        self.chunks = chunks

    @classmethod
    def build(cls, chunks: list[Hit], extra: Expansions | None = None) -> LexicalIndex:
        """BM25 over `chunks`, each with its `extra` text appended (its questions, in the
        questions mode); hits give the chunk's own text."""
        extra = extra or {}
        texts = ["\n".join([c.text, *extra.get(_key(c), [])]) for c in chunks]
        retriever = bm25s.BM25()
        if chunks:
            retriever.index(
                bm25s.tokenize(texts, stopwords="en", stemmer=STEMMER, show_progress=False),
                show_progress=False,
            )
        return cls(retriever, chunks)

    def save(self, folder: Path) -> None:
        """Write the index to `folder`, in a folder that exists, whole or not at all (a temp
        folder, then a rename)."""
        staging = Path(tempfile.mkdtemp(prefix=".bm25-", dir=folder.parent))
        if self.chunks:
            self.retriever.save(staging, show_progress=False)
        (staging / "chunks.json").write_text(json.dumps([asdict(c) for c in self.chunks]))
        try:
            staging.rename(folder)
        except OSError:  # another process saved the same version first: theirs is as good
            shutil.rmtree(staging, ignore_errors=True)

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        chunks = [Hit(**c) for c in json.loads((folder / "chunks.json").read_text())]
        if not chunks:
            return cls(bm25s.BM25(), [])
        return cls(bm25s.BM25.load(folder, show_progress=False), chunks)

    def search(self, query: str, k: int) -> list[Hit]:
        """The `k` best chunks for `query`, best first (ties in reading order). Scores come
        from bm25s' `get_scores`, the top from numpy: its `retrieve` adds a thread pool and
        progress bars per call, 15 ms of a query's 16 at 100k chunks."""
        ids = self.retriever.get_tokens_ids(_tokens([query])[0]) if self.chunks else []
        if not ids or k < 1:
            return []
        scores = self.retriever.get_scores_from_ids(ids)
        k = min(k, len(scores))
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.lexsort((top, -scores[top]))]
        return [
            replace(self.chunks[i], score=round(float(scores[i]), 4)) for i in top if scores[i] > 0
        ]


class LexicalIndexes:
    """The BM25 index of each collection, kept in step with its committed version: in memory
    while the version holds, on disk in the collection's folder (`folder_of` its name) under
    `bm25/<version>`. The questions mode's index (chunks with their questions) is kept the same
    way under `bm25-questions`, its version also naming which documents have questions
    written."""

    def __init__(self, folder_of: Callable[[str], CollectionFolder], store: ChromaStore) -> None:
        self.folder_of = folder_of
        self.store = store
        # (collection, expanded) -> (version, index)
        self._cache: dict[tuple[str, bool], tuple[str, LexicalIndex]] = {}
        self._lock = threading.Lock()

    def get(
        self,
        name: str,
        manifest: Manifest,
        expansions: tuple[str, Callable[[], Expansions]] | None = None,
    ) -> LexicalIndex:
        """Collection `name`'s index as `manifest` commits it; with `expansions` (a version
        tag, and how to read the text to add to each chunk), the expanded index."""
        expanded = expansions is not None
        version = version_of(manifest) + (f"-{expansions[0]}" if expansions else "")
        with self._lock:
            cached = self._cache.get((name, expanded))
            if cached and cached[0] == version:
                return cached[1]
            extra = expansions[1]() if expansions else None
            index = self._load_or_build(name, manifest, expanded, version, extra)
            self._cache[(name, expanded)] = (version, index)
            return index

    def forget(self, name: str) -> None:
        with self._lock:
            for key in [key for key in self._cache if key[0] == name]:
                del self._cache[key]

    def _load_or_build(
        self,
        name: str,
        manifest: Manifest,
        expanded: bool,
        version: str,
        extra: Expansions | None,
    ) -> LexicalIndex:
        collection = self.folder_of(name)
        folders = collection.lexical(expanded)
        folder = folders / version
        if (folder / "chunks.json").is_file():
            try:
                return LexicalIndex.load(folder)
            except (OSError, ValueError):  # damaged: build it again
                shutil.rmtree(folder, ignore_errors=True)
        index = LexicalIndex.build(self._committed_chunks(name, manifest), extra)
        for old in collection.made(folders).glob("*"):
            shutil.rmtree(old, ignore_errors=True)  # other versions, and leftovers of a crash
        index.save(folder)
        return index

    def _committed_chunks(self, name: str, manifest: Manifest) -> list[Hit]:
        chunks = [
            hit_of(text, meta, 0.0)
            for text, meta in self.store.chunks(store_key(name, manifest))
            if manifest.committed_hash(meta["source"]) == meta.get("file_hash")
        ]
        return sorted(chunks, key=_key)


def fuse(dense: list[Hit], lexical: list[Hit], k: int, lexical_zeros: int = 0) -> list[Hit]:
    """The `k` best chunks of a dense and a BM25 ranking, by the sum of their standard scores.

    Each side's scores (cosine similarities, BM25 scores) are put on one scale: how many
    standard deviations a candidate stands above its side's mean. A chunk one side did not
    bring counts that side's lowest. `lexical_zeros` are the candidates BM25 was asked for but
    found no word in: they score 0 there, and a lone keyword match stands out against them.
    Unlike reciprocal-rank fusion this keeps how far apart the candidates are, so a clear
    winner on one side is not levelled to its rank; chosen on SciFact's training claims over
    RRF and min-max scaling (docs/BENCHMARKS.md)."""
    hits = {_key(hit): hit for hit in [*dense, *lexical]}
    total = dict.fromkeys(hits, 0.0)
    for side, zeros in ((dense, 0), (lexical, lexical_zeros)):
        standard, floor = standard_scores([hit.score for hit in side], zeros)
        listed = {_key(hit): z for hit, z in zip(side, standard, strict=True)}
        for key in total:
            total[key] += listed.get(key, floor)
    best = sorted(total, key=lambda key: -total[key])[:k]
    return [replace(hits[key], score=round(total[key], 4)) for key in best]


def standard_scores(scores: Sequence[float], zeros: int = 0) -> tuple[list[float], float]:
    """Each score's standard score among `scores` and `zeros` more of 0, and the lowest standard
    score (what a chunk the ranking did not bring gets)."""
    values = np.array([*scores, *[0.0] * zeros], dtype=np.float64)
    spread = values.std() if len(values) > 1 else 0.0
    if spread == 0.0:  # no candidate, one, or all alike: no scale to put them on
        return [0.0] * len(scores), 0.0
    standard = (values - values.mean()) / spread
    return standard[: len(scores)].tolist(), float(standard.min())


def _key(hit: Hit) -> tuple[str, int]:
    return hit.source, hit.chunk_index
