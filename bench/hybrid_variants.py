"""Can hybrid retrieval on SciFact go further with the packaged embedder? Variants side by side.

Each variant changes one thing against hybrid as the app runs it (chunks of 1,000 characters
with 150 overlap; BM25 from bm25s with k1 1.5, b 0.75, stop words and stemming; 50 candidates
each side, fused by the sum of their standard scores as `knowledge.lexical.fuse` does; a
document scores its best chunk among the 30 fused):
  * the fusion: reciprocal rank (1 / (60 + rank), as RRF everywhere), and min-max scaled scores;
  * BM25 parameters: Lucene's k1 1.2 / b 0.75, and Anserini's (BEIR's baseline) 0.9 / 0.4;
  * 100 candidates each side instead of 50;
  * the document's title (its first line) put before every later chunk, embedded and indexed;
  * chunks of 600 characters (100 overlap): the embedder was trained on inputs of 128 tokens;
  * dense pseudo-relevance feedback: the query vector moved towards its 3 best fused chunks
    (Rocchio, weight 0.5), searched and fused again;
  * whole documents as two more rankings: the mean of a document's chunk vectors, and BM25
    over its whole text, each document standing for its best chunk.

Every variant is scored on SciFact's 809 training claims and its 300 test claims: choices are
made on the first, and the second shows whether they hold.

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
from knowledge.lexical import _tokens, standard_scores  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "hybrid_variants.json"
DEPTH, K_CHUNKS = 50, 30
RRF_CONSTANT = 60
# A ranking: (chunk number, score) pairs, best first.
Ranking = list[tuple[int, float]]


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


def lexical(index: bm25s.BM25, query: str, depth: int) -> Ranking:
    ids = index.get_tokens_ids(_tokens([query])[0])
    if not ids:
        return []
    scores = index.get_scores(ids)
    top = np.argsort(-scores, kind="stable")[:depth]
    return [(int(i), float(scores[i])) for i in top if scores[i] > 0]


def nearest(similarity: np.ndarray, depth: int) -> Ranking:
    return [(int(i), float(similarity[i])) for i in np.argsort(-similarity)[:depth]]


def fused(rankings: Sequence[Ranking], k: int, fusion: str, zeros: Sequence[int]) -> list[int]:
    """The `k` best chunks of `rankings`; `zeros[n]` more candidates of ranking n scored 0.
    A chunk that a ranking did not bring counts that ranking's lowest."""
    sides = [scaled(ranking, fusion, zero) for ranking, zero in zip(rankings, zeros, strict=True)]
    chunks = {i for side, _ in sides for i in side}
    total = {i: sum(side.get(i, floor) for side, floor in sides) for i in chunks}
    return sorted(total, key=lambda i: -total[i])[:k]


def scaled(ranking: Ranking, fusion: str, zeros: int) -> tuple[dict[int, float], float]:
    """Each chunk's score on the fusion's scale, and what an unlisted chunk gets."""
    if fusion == "rank":
        ranks = enumerate(ranking, start=1)
        return {i: 1.0 / (RRF_CONSTANT + rank) for rank, (i, _) in ranks}, 0.0
    if fusion == "min-max":
        values = [score for _, score in ranking] + [0.0] * zeros
        low, high = min(values, default=0.0), max(values, default=0.0)
        return {i: (s - low) / (high - low) if high > low else 0.0 for i, s in ranking}, 0.0
    standard, floor = standard_scores([score for _, score in ranking], zeros)  # the app's own
    return {i: z for (i, _), z in zip(ranking, standard, strict=True)}, floor


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
    fusion: str = "standard",
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
        words = lexical(index, query, depth)
        rankings = [nearest(similarity, depth), words]
        zeros = [0, min(depth, len(chunks.texts)) - len(words)]
        if whole:
            by_doc, docs, means, doc_index = whole
            best = {
                d: members[int(np.argmax(similarity[members]))] for d, members in by_doc.items()
            }
            doc_words = lexical(doc_index, query, depth)
            rankings.append([(best[docs[j]], s) for j, s in nearest(means @ vector, depth)])
            rankings.append([(best[docs[j]], s) for j, s in doc_words])
            zeros += [0, min(depth, len(docs)) - len(doc_words)]
        ranking = fused(rankings, depth, fusion, zeros)
        if feedback:
            moved = vector + feedback * chunks.vectors[ranking[:3]].mean(axis=0)
            moved /= np.linalg.norm(moved)
            rankings[0] = nearest(chunks.vectors @ moved, depth)
            ranking = fused(rankings, depth, fusion, zeros)
        found: dict[str, float] = {}
        for rank, n in enumerate(ranking[:K_CHUNKS]):
            found.setdefault(chunks.docs[n], float(K_CHUNKS - rank))
        run_of[qid] = found
    return evaluate(run_of, qrels)["ndcg@10"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "kbot-bench")
    args = parser.parse_args()
    embedder = load_embedder()
    splits = {}
    for split in ("train", "test"):
        corpus, queries, qrels = load_scifact(None, split)
        vectors = np.asarray([embedder.embed_query(q) for q in queries.values()], np.float32)
        splits[split] = (queries, vectors, qrels)
    log("chunking and embedding")
    default = Chunks(corpus, 1000, 150, titled=False, cache=args.cache)
    titled = Chunks(corpus, 1000, 150, titled=True, cache=args.cache)
    small = Chunks(corpus, 600, 100, titled=False, cache=args.cache)
    variants = {
        "baseline: hybrid with the app's settings": (default, {}),
        "reciprocal-rank fusion": (default, {"fusion": "rank"}),
        "min-max scaled scores": (default, {"fusion": "min-max"}),
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
        row = {"variant": name, "chunks": len(chunks.texts)}
        for split, (queries, vectors, qrels) in splits.items():
            score = run(chunks, queries, vectors, qrels, **options)
            row[f"{split} ndcg@10"] = round(score, 4)
        rows.append(row)
        log(f"{name}: train {row['train ndcg@10']:.4f}, test {row['test ndcg@10']:.4f}")
    print(f"\n{'variant':42} {'chunks':>7} {'train nDCG@10':>14} {'test nDCG@10':>13}")
    for row in rows:
        print(
            f"{row['variant']:42} {row['chunks']:>7} {row['train ndcg@10']:>14.4f} "
            f"{row['test ndcg@10']:>13.4f}"
        )
    RESULTS.write_text(
        json.dumps(
            {
                "command": "python bench/hybrid_variants.py " + " ".join(sys.argv[1:]),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "queries": {split: len(queries) for split, (queries, _, _) in splits.items()},
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
