"""Can hybrid retrieval on SciFact go further with the packaged embedder? Variants side by side.

Each variant changes one thing against hybrid as the app runs it (chunks of 1,000 characters
with 150 overlap; BM25 from bm25s with k1 1.5, b 0.75, stop words and stemming; reciprocal-rank
fusion of 50 candidates each side; a document scores its best chunk among the 30 fused):
  * BM25 parameters: Lucene's k1 1.2 / b 0.75, and Anserini's (BEIR's baseline) 0.9 / 0.4;
  * 100 candidates each side instead of 50;
  * the document's title (its first line) put before every later chunk, embedded and indexed;
  * chunks of 600 characters (100 overlap): the embedder was trained on inputs of 128 tokens;
  * dense pseudo-relevance feedback: the query vector moved towards its 3 best fused chunks
    (Rocchio, weight 0.5), searched and fused again;
  * whole documents as two more rankings: the mean of a document's chunk vectors, and BM25
    over its whole text, each document standing for its best chunk.

Vectors are computed here once per chunking and kept in --cache (about 25 minutes on 2 CPUs).

Usage: python bench/hybrid_variants.py [--cache DIR]
Writes bench/results/hybrid_variants.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bm25s  # noqa: E402
from langchain_core.documents import Document  # noqa: E402

from bench.common import log  # noqa: E402
from bench.retrieval import evaluate, load_scifact  # noqa: E402
from knowledge.chunking import chunk_documents  # noqa: E402
from knowledge.embeddings import load_embedder  # noqa: E402
from knowledge.lexical import RRF_CONSTANT, _tokens  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "hybrid_variants.json"
DEPTH, K_CHUNKS = 50, 30


class Chunks:
    """SciFact's abstracts chunked one way, with their vectors and a BM25 index."""

    def __init__(self, corpus: dict, size: int, overlap: int, titled: bool, cache: Path) -> None:
        self.docs: list[str] = []
        self.texts: list[str] = []
        for doc_id, (title, text) in corpus.items():
            document = Document(page_content=f"{title}\n\n{text}")
            for chunk in chunk_documents([document], ".txt", size, overlap):
                body = chunk.page_content
                self.docs.append(doc_id)
                later = chunk.metadata["chunk_index"] > 0 and not body.startswith(title)
                self.texts.append(f"{title}\n{body}" if titled and later else body)
        name = f"vectors-{size}-{overlap}{'-titled' if titled else ''}.npy"
        self.vectors = embedded(self.texts, cache / name)
        self.bm25_by_params: dict[tuple[float, float], bm25s.BM25] = {}

    def bm25(self, k1: float = 1.5, b: float = 0.75) -> bm25s.BM25:
        if (k1, b) not in self.bm25_by_params:
            self.bm25_by_params[(k1, b)] = bm25_index(self.texts, k1, b)
        return self.bm25_by_params[(k1, b)]


def embedded(texts: list[str], cache: Path) -> np.ndarray:
    if cache.is_file() and len(cached := np.load(cache)) == len(texts):
        return cached
    embedder = load_embedder()
    vectors = []
    for start in range(0, len(texts), 256):
        vectors += embedder.embed_documents(texts[start : start + 256])
        log(f"  embedded {min(start + 256, len(texts)):,} of {len(texts):,}")
    array = np.asarray(vectors, dtype=np.float32)
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, array)
    return array


def bm25_index(texts: Sequence[str], k1: float, b: float) -> bm25s.BM25:
    index = bm25s.BM25(k1=k1, b=b)
    index.index(_tokens(texts), show_progress=False)
    return index


def lexical(index: bm25s.BM25, query: str, depth: int) -> list[int]:
    ids = index.get_tokens_ids(_tokens([query])[0])
    if not ids:
        return []
    scores = index.get_scores(ids)
    top = np.argsort(-scores, kind="stable")[:depth]
    return [int(i) for i in top if scores[i] > 0]


def fused(rankings: Sequence[list[int]], k: int) -> list[int]:
    scores: dict[int, float] = defaultdict(float)
    for ranking in rankings:
        for rank, i in enumerate(ranking, start=1):
            scores[i] += 1.0 / (RRF_CONSTANT + rank)
    return sorted(scores, key=lambda i: -scores[i])[:k]


Whole = tuple[dict[str, list[int]], list[str], np.ndarray, bm25s.BM25]


def whole_documents(chunks: Chunks) -> Whole:
    """Each document's chunks, the documents, their mean vectors and BM25 over their text."""
    by_doc: dict[str, list[int]] = defaultdict(list)
    for n, doc in enumerate(chunks.docs):
        by_doc[doc].append(n)
    docs = list(by_doc)
    means = np.stack([chunks.vectors[by_doc[d]].mean(axis=0) for d in docs])
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    index = bm25_index(["\n".join(chunks.texts[n] for n in by_doc[d]) for d in docs], 1.5, 0.75)
    return by_doc, docs, means, index


def run(
    chunks: Chunks,
    queries: dict[str, str],
    query_vectors: np.ndarray,
    qrels: dict,
    *,
    k1: float = 1.5,
    b: float = 0.75,
    depth: int = DEPTH,
    feedback: float = 0.0,
    documents: bool = False,
) -> float:
    index = chunks.bm25(k1, b)
    whole = whole_documents(chunks) if documents else None
    run_of: dict[str, dict[str, float]] = {}
    for (qid, query), vector in zip(queries.items(), query_vectors, strict=True):
        similarity = chunks.vectors @ vector
        rankings = [list(np.argsort(-similarity)[:depth]), lexical(index, query, depth)]
        if whole:
            by_doc, docs, means, doc_index = whole
            best = {
                d: members[int(np.argmax(similarity[members]))] for d, members in by_doc.items()
            }
            rankings.append([best[docs[j]] for j in np.argsort(-(means @ vector))[:depth]])
            rankings.append([best[docs[j]] for j in lexical(doc_index, query, depth)])
        ranking = fused(rankings, depth)
        if feedback:
            moved = vector + feedback * chunks.vectors[ranking[:3]].mean(axis=0)
            moved /= np.linalg.norm(moved)
            rankings[0] = list(np.argsort(-(chunks.vectors @ moved))[:depth])
            ranking = fused(rankings, depth)
        found: dict[str, float] = {}
        for rank, n in enumerate(ranking[:K_CHUNKS]):
            found.setdefault(chunks.docs[n], float(K_CHUNKS - rank))
        run_of[qid] = found
    return evaluate(run_of, qrels)["ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "kbot-bench")
    args = parser.parse_args()
    corpus, queries, qrels = load_scifact(None)
    embedder = load_embedder()
    query_vectors = np.asarray([embedder.embed_query(q) for q in queries.values()], np.float32)
    log("chunking and embedding")
    default = Chunks(corpus, 1000, 150, titled=False, cache=args.cache)
    titled = Chunks(corpus, 1000, 150, titled=True, cache=args.cache)
    small = Chunks(corpus, 600, 100, titled=False, cache=args.cache)
    variants = {
        "baseline: hybrid with the app's settings": (default, {}),
        "BM25 k1 1.2 / b 0.75 (Lucene)": (default, {"k1": 1.2}),
        "BM25 k1 0.9 / b 0.4 (Anserini)": (default, {"k1": 0.9, "b": 0.4}),
        "100 candidates each side": (default, {"depth": 100}),
        "title before every chunk": (titled, {}),
        "chunks of 600 characters": (small, {}),
        "dense feedback (Rocchio 0.5, top 3)": (default, {"feedback": 0.5}),
        "whole documents fused too": (default, {"documents": True}),
    }
    rows = []
    for name, (chunks, options) in variants.items():
        score = run(chunks, queries, query_vectors, qrels, **options)
        rows.append({"variant": name, "chunks": len(chunks.texts), "ndcg@10": round(score, 4)})
        log(f"{name}: {score:.4f}")
    print(f"\n{'variant':40} {'chunks':>7} {'nDCG@10':>8}")
    for row in rows:
        print(f"{row['variant']:40} {row['chunks']:>7} {row['ndcg@10']:>8.4f}")
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python bench/hybrid_variants.py " + " ".join(sys.argv[1:]),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "queries": len(queries),
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
