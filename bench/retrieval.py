"""Retrieval quality (SciFact, BEIR test split) and ingestion speed of the knowledge base.

Measures, side by side in one run:
  * nDCG@10 and recall@10 on the 300 SciFact test claims: the knowledge base (bf16 embedder,
    default chunking, one .txt file per abstract), the same with a float32 embedder, and
    BM25 (rank_bm25) over the same abstracts;
  * ingestion: end-to-end chunks/s of `KnowledgeBase.ingest` over the whole corpus, raw
    SentenceTransformer encode chunks/s in fp32 and bf16 on a sample of the same chunk texts
    (and the smallest fp32-vs-bf16 cosine similarity), and re-ingest time of the unchanged
    corpus;
  * query latency (query embedding included) at SciFact's size and at 100k chunks; the 100k
    collection holds synthetic random unit vectors, the query embedding is real.

Usage: python bench/retrieval.py [--limit-docs N] [--skip-fp32-quality] [--threads N]
Writes bench/results/retrieval.json and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import math
import os
import platform
import random
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import elapsed, log, timed_ingest  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "retrieval.json"
SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"

# Published nDCG@10 on BEIR SciFact (BEIR paper; sentence-transformers model card / MTEB).
PUBLISHED = {"BM25": 0.665, "all-MiniLM-L6-v2": 0.645}
COLLECTION = "scifact"
SYNTHETIC = "synthetic100k"


# Data and metrics ------------------------------------------------------------------------


def load_scifact(limit_docs: int | None, split: str = "test") -> tuple[dict, dict, dict]:
    """Corpus {id: (title, text)}, the `split`'s queries {id: text} and qrels {qid: {docid:
    grade}}; with `limit_docs`, only the first N abstracts and the queries with a relevant one
    left."""
    corpus = {}
    with (SCIFACT / "corpus.jsonl").open() as lines:
        for line in lines:
            doc = json.loads(line)
            corpus[doc["_id"]] = (doc["title"], doc["text"])
            if limit_docs and len(corpus) >= limit_docs:
                break
    qrels: dict[str, dict[str, int]] = {}
    with (SCIFACT / "qrels" / f"{split}.tsv").open() as rows:
        for row in csv.DictReader(rows, delimiter="\t"):
            if row["corpus-id"] in corpus and int(row["score"]) > 0:
                qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    queries = {}
    with (SCIFACT / "queries.jsonl").open() as lines:
        for line in lines:
            query = json.loads(line)
            if query["_id"] in qrels:
                queries[query["_id"]] = query["text"]
    return corpus, queries, qrels


def evaluate(run: dict[str, dict[str, float]], qrels: dict, k: int = 10) -> dict[str, float]:
    """Mean nDCG@k and recall@k over the queries in qrels, as BEIR computes them with
    pytrec_eval (gain = qrels grade, log2 discount; a query with no results scores 0)."""
    ndcgs, recalls = [], []
    for qid, relevant in qrels.items():
        ranked = sorted(run.get(qid, {}).items(), key=lambda item: (-item[1], item[0]))[:k]
        dcg = sum(
            relevant.get(doc, 0) / math.log2(rank + 2) for rank, (doc, _) in enumerate(ranked)
        )
        ideal = sorted(relevant.values(), reverse=True)[:k]
        idcg = sum(grade / math.log2(rank + 2) for rank, grade in enumerate(ideal))
        ndcgs.append(dcg / idcg)
        recalls.append(sum(1 for doc, _ in ranked if doc in relevant) / len(relevant))
    return {
        f"ndcg@{k}": round(statistics.fmean(ndcgs), 4),
        f"recall@{k}": round(statistics.fmean(recalls), 4),
    }


def bm25_run(corpus: dict, queries: dict, k1: float, b: float) -> tuple[dict, float]:
    from rank_bm25 import BM25Okapi

    def tokens(text: str) -> list[str]:
        return re.findall(r"\w+", text.lower())

    start = time.perf_counter()
    ids = list(corpus)
    index = BM25Okapi([tokens(f"{title} {text}") for title, text in corpus.values()], k1=k1, b=b)
    run = {}
    for qid, query in queries.items():
        scores = index.get_scores(tokens(query))
        top = sorted(range(len(ids)), key=lambda i: -scores[i])[:100]
        run[qid] = {ids[i]: float(scores[i]) for i in top}
    return run, time.perf_counter() - start


# Knowledge base --------------------------------------------------------------------------


def knowledge_base(home: Path, dtype: str):
    from bot.resources import Resources
    from bot.settings import load_settings

    return Resources(load_settings(home=home, embed_dtype=dtype)).knowledge


def dense_run(kb, queries: dict, k_chunks: int) -> tuple[dict, float, int]:
    """`kbot retrieve --queries` semantics: embed all queries in batches, then search each
    vector; a doc's score is its best chunk. Returns the run, seconds, and the fewest
    distinct docs any query got."""
    start = time.perf_counter()
    vectors = kb.embed_queries(list(queries.values()))
    run, fewest = {}, k_chunks
    for qid, vector in zip(queries, vectors, strict=True):
        docs: dict[str, float] = {}
        for hit in kb.search_vector(COLLECTION, vector, k_chunks):
            doc = Path(hit.source).stem
            docs[doc] = max(hit.score, docs.get(doc, -1.0))
        run[qid] = docs
        fewest = min(fewest, len(docs))
    return run, time.perf_counter() - start, fewest


def chunk_texts(kb, files: list[Path]) -> list[str]:
    """The chunk texts ingest makes of these files (same loader and chunker)."""
    from knowledge.chunking import chunk_documents
    from knowledge.loaders import file_kind, load_file

    texts = []
    for path in files:
        documents = load_file(path, path.read_bytes())
        chunks = chunk_documents(
            documents, file_kind(path), kb.writer.chunk_size, kb.writer.chunk_overlap
        )
        texts += [c.page_content for c in chunks]
    return texts


def raw_encode(texts: list[str], rounds: int) -> dict:
    """Plain SentenceTransformer encode, fp32 vs bf16, alternating, `rounds` each."""
    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from knowledge.embeddings import packaged_embedder_dir

    models = {
        name: SentenceTransformer(
            str(packaged_embedder_dir()), device="cpu", model_kwargs={"dtype": dtype}
        )
        for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    seconds: dict[str, list[float]] = {name: [] for name in models}
    vectors = {}
    for model in models.values():  # warm-up
        model.encode(texts[:32], batch_size=32, normalize_embeddings=True)
    for round_ in range(rounds):
        for name in models if round_ % 2 == 0 else reversed(models):
            start = time.perf_counter()
            out = models[name].encode(texts, batch_size=32, normalize_embeddings=True)
            seconds[name].append(time.perf_counter() - start)
            vectors[name] = np.asarray(out, dtype=np.float32)
            log(f"  raw {name} encode of {len(texts)}: {seconds[name][-1]:.1f} s")
    cosine = (vectors["fp32"] * vectors["bf16"]).sum(axis=1) / (
        np.linalg.norm(vectors["fp32"], axis=1) * np.linalg.norm(vectors["bf16"], axis=1)
    )
    return {
        "texts": len(texts),
        "rounds": rounds,
        "fp32_chunks_s": round(len(texts) / statistics.median(seconds["fp32"]), 1),
        "bf16_chunks_s": round(len(texts) / statistics.median(seconds["bf16"]), 1),
        "fp32_s_all": [round(s, 2) for s in seconds["fp32"]],
        "bf16_s_all": [round(s, 2) for s in seconds["bf16"]],
        "min_cosine_fp32_bf16": round(float(cosine.min()), 4),
        "mean_cosine_fp32_bf16": round(float(cosine.mean()), 5),
    }


def fill_synthetic(
    kb, n: int, per_source: int, dim: int = 384, words: Sequence[str] | None = None
) -> float:
    """Collection `SYNTHETIC`: n random unit vectors (seed 0) with short texts (or `words`),
    written straight to the store, `per_source` chunks per committed manifest source."""
    import numpy as np

    from knowledge.manifest import CollectionFolder, Manifest, ManifestRecord, SourceEntry

    vectors = np.random.default_rng(0).standard_normal((n, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    now = "2000-01-01T00:00:00+00:00"
    sources = {}
    start = time.perf_counter()
    for first in range(0, n, 10_000):
        ids, texts, metadatas = [], [], []
        for i in range(first, min(first + 10_000, n)):
            source = f"synthetic/doc{i // per_source:05d}.txt"
            file_hash = hashlib.sha256(source.encode()).hexdigest()
            text = words[i] if words else f"Synthetic chunk {i} of {source}."
            ids.append(f"syn{i:06d}")
            texts.append(text)
            metadatas.append(
                {
                    "source": source,
                    "file_hash": file_hash,
                    "chunk_index": i % per_source,
                    "chunk_hash": hashlib.sha256(text.encode()).hexdigest(),
                    "ingested_at": now,
                }
            )
            sources[source] = SourceEntry(file_hash, i % per_source + 1, 0, now)
        kb.store.upsert(
            SYNTHETIC, ids, vectors[first : first + len(ids)].tolist(), texts, metadatas
        )
        log(f"  synthetic: {first + len(ids):,} / {n:,} vectors stored")
    folder = CollectionFolder(kb.root / "collections" / SYNTHETIC, kb.records.of(SYNTHETIC))
    ManifestRecord(folder).write(Manifest(sources=sources))
    return time.perf_counter() - start


def latencies(fn: Callable[[str], object], queries: Sequence[str]) -> dict[str, float]:
    for query in queries[:5]:  # warm-up
        fn(query)
    seconds = []
    for query in queries:
        start = time.perf_counter()
        fn(query)
        seconds.append(time.perf_counter() - start)
    ordered = sorted(seconds)
    return {
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p95_ms": round(1000 * ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)], 1),
        "queries": len(ordered),
    }


def latency_block(kb, name: str, queries: list[str]) -> dict:
    vectors = dict(zip(queries, kb.embed_queries(queries), strict=True))
    return {
        "search_with_embedding": latencies(lambda q: kb.search(name, q, 10), queries),
        "embed_query_only": latencies(lambda q: kb.embedder.embed_query(q), queries),
        "search_vector_only": latencies(lambda q: kb.search_vector(name, vectors[q], 10), queries),
    }


# Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-docs", type=int, default=None, help="first N abstracts only")
    parser.add_argument("--skip-fp32-quality", action="store_true")
    parser.add_argument("--k-chunks", type=int, default=30, help="chunks fetched per query")
    parser.add_argument("--raw-sample", type=int, default=600)
    parser.add_argument("--raw-rounds", type=int, default=3)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--synthetic-chunks", type=int, default=100_000)
    parser.add_argument("--synthetic-per-source", type=int, default=100)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's own choice)"
    )
    args = parser.parse_args()

    import chromadb
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    corpus, queries, qrels = load_scifact(args.limit_docs)
    log(f"SciFact: {len(corpus):,} abstracts, {len(queries)} test queries with qrels")
    result: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"chromadb {chromadb.__version__}",
        "dataset": "BEIR SciFact test",
        "docs": len(corpus),
        "queries": len(queries),
        "limit_docs": args.limit_docs,
        "k_chunks": args.k_chunks,
        "threads_flag": args.threads,
        "published_ndcg@10": PUBLISHED,
    }

    with tempfile.TemporaryDirectory(prefix="kbot-bench-") as tmp:
        folder = Path(tmp) / "scifact"
        folder.mkdir()
        files = []
        for doc_id, (title, text) in corpus.items():
            path = folder / f"{doc_id}.txt"
            path.write_text(f"{title}\n\n{text}")
            files.append(path)

        bm25, bm25_s = bm25_run(corpus, queries, k1=0.9, b=0.4)
        result["bm25"] = {**evaluate(bm25, qrels), "k1": 0.9, "b": 0.4, "seconds": round(bm25_s, 2)}
        log(f"BM25: {result['bm25']}")

        # bf16 (the default) knowledge base ------------------------------------------------
        start = time.perf_counter()
        kb = knowledge_base(Path(tmp) / "home-bf16", "bfloat16")
        kb.embedder.embed_documents(["warm-up"])
        log(f"bf16 knowledge base ready in {time.perf_counter() - start:.1f} s; ingesting")
        ingest, ingest_s, per_file = timed_ingest(kb, COLLECTION, files, "bf16 ingest")
        chunks = ingest.chunks_added
        result["ingest_bf16"] = {
            "files": ingest.files,
            "chunks": chunks,
            "seconds": round(ingest_s, 1),
            "chunks_s": round(chunks / ingest_s, 1),
            "ms_per_file_by_fifth": per_file,
        }
        log(f"bf16 ingest: {result['ingest_bf16']}")
        again, again_s, _ = timed_ingest(kb, COLLECTION, files, "re-ingest")
        result["reingest_unchanged"] = {
            "seconds": round(again_s, 2),
            "chunks_unchanged": again.chunks_unchanged,
            "chunks_added": again.chunks_added,
            "files_s": round(again.files / again_s, 1),
        }
        log(f"re-ingest: {result['reingest_unchanged']}")

        run, run_s, fewest = dense_run(kb, queries, args.k_chunks)
        result["kb_bf16"] = {
            **evaluate(run, qrels),
            "seconds": round(run_s, 2),
            "fewest_docs_per_query": fewest,
        }
        log(f"knowledge base bf16: {result['kb_bf16']}")

        texts = chunk_texts(kb, files)
        if len(texts) != chunks:
            log(f"warning: re-chunking made {len(texts)} chunks, ingest stored {chunks}")
        sample = random.Random(0).sample(texts, min(args.raw_sample, len(texts)))
        log(f"raw encode of {len(sample)} chunk texts, fp32 vs bf16")
        result["raw_encode"] = raw_encode(sample, args.raw_rounds)
        log(f"raw encode: {result['raw_encode']}")

        # Query latency -------------------------------------------------------------------
        texts_q = list(queries.values())
        latency_queries = (texts_q * (args.latency_queries // len(texts_q) + 1))[
            : args.latency_queries
        ]
        result["latency_scifact"] = {
            "chunks": chunks,
            **latency_block(kb, COLLECTION, latency_queries),
        }
        log(f"latency at {chunks:,} chunks: {result['latency_scifact']}")
        log(f"filling {args.synthetic_chunks:,} synthetic vectors")
        fill_s = fill_synthetic(kb, args.synthetic_chunks, args.synthetic_per_source)
        result["latency_synthetic"] = {
            "chunks": kb.store.count(SYNTHETIC),
            "sources": -(-args.synthetic_chunks // args.synthetic_per_source),
            "fill_s": round(fill_s, 1),
            "note": "synthetic random unit vectors (seed 0); the query embedding is real",
            **latency_block(kb, SYNTHETIC, latency_queries),
        }
        log(f"latency at {args.synthetic_chunks:,} synthetic: {result['latency_synthetic']}")
        del kb

        # float32 knowledge base ----------------------------------------------------------
        if not args.skip_fp32_quality:
            kb32 = knowledge_base(Path(tmp) / "home-fp32", "float32")
            kb32.embedder.embed_documents(["warm-up"])
            log("fp32 knowledge base ready; ingesting")
            ingest32, ingest32_s, per_file32 = timed_ingest(kb32, COLLECTION, files, "fp32 ingest")
            result["ingest_fp32"] = {
                "chunks": ingest32.chunks_added,
                "seconds": round(ingest32_s, 1),
                "chunks_s": round(ingest32.chunks_added / ingest32_s, 1),
                "ms_per_file_by_fifth": per_file32,
            }
            run32, run32_s, fewest32 = dense_run(kb32, queries, args.k_chunks)
            result["kb_fp32"] = {
                **evaluate(run32, qrels),
                "seconds": round(run32_s, 2),
                "fewest_docs_per_query": fewest32,
            }
            log(f"knowledge base fp32: {result['kb_fp32']}, ingest {result['ingest_fp32']}")

    raw = result["raw_encode"]
    result["ratios"] = {
        "raw_bf16_over_fp32_speed": round(raw["bf16_chunks_s"] / raw["fp32_chunks_s"], 2),
        "ingest_bf16_over_raw_bf16": round(
            result["ingest_bf16"]["chunks_s"] / raw["bf16_chunks_s"], 2
        ),
        "ingest_over_reingest_time": round(
            result["ingest_bf16"]["seconds"] / result["reingest_unchanged"]["seconds"], 1
        ),
    }
    if "ingest_fp32" in result:
        result["ratios"]["ingest_bf16_over_fp32_speed"] = round(
            result["ingest_bf16"]["chunks_s"] / result["ingest_fp32"]["chunks_s"], 2
        )
    result["total_s"] = round(elapsed(), 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print_table(result)


def print_table(r: dict) -> None:
    def ms(block: dict) -> str:
        return f"{block['p50_ms']:.0f} / {block['p95_ms']:.0f} ms"

    raw, syn, again = r["raw_encode"], r["latency_synthetic"], r["reingest_unchanged"]
    quality = [
        ("BM25 (rank_bm25, k1 0.9, b 0.4)", r["bm25"], f"{PUBLISHED['BM25']:.3f}"),
        ("knowledge base, bf16 embedder", r["kb_bf16"], f"{PUBLISHED['all-MiniLM-L6-v2']:.3f}"),
    ]
    if "kb_fp32" in r:
        quality.append(("knowledge base, fp32 embedder", r["kb_fp32"], ""))
    rows = [(name, f"{m['ndcg@10']:.3f} / {m['recall@10']:.3f}", ref) for name, m, ref in quality]
    rows.append(("ingest end to end, bf16", f"{r['ingest_bf16']['chunks_s']} chunks/s", ""))
    if "ingest_fp32" in r:
        rows.append(("ingest end to end, fp32", f"{r['ingest_fp32']['chunks_s']} chunks/s", ""))
    rows += [
        (f"raw encode, fp32 ({raw['texts']} chunks)", f"{raw['fp32_chunks_s']} chunks/s", ""),
        (f"raw encode, bf16 ({raw['texts']} chunks)", f"{raw['bf16_chunks_s']} chunks/s", ""),
        ("min cosine, fp32 vs bf16 vectors", f"{raw['min_cosine_fp32_bf16']}", ""),
        ("re-ingest, unchanged", f"{again['seconds']} s", f"{again['chunks_unchanged']} unch."),
        (
            f"query p50 / p95, {r['latency_scifact']['chunks']:,} chunks",
            ms(r["latency_scifact"]["search_with_embedding"]),
            "",
        ),
        (f"query p50 / p95, {syn['chunks']:,} synthetic", ms(syn["search_with_embedding"]), ""),
    ]
    rows += [(f"ratio {name}", f"{value}x", "") for name, value in r["ratios"].items()]
    print(f"{r['machine']}; {r['dataset']}: {r['docs']:,} docs, {r['queries']} queries")
    print(f"  {'measure':<44} {'value':>20} {'reference':>12}")
    for name, value, ref in rows:
        print(f"  {name:<44} {value:>20} {ref:>12}")
    print("  quality: nDCG@10 / recall@10; reference: published nDCG@10")
    print("  query latency includes the query embedding; the 100k collection holds synthetic")
    print("  random unit vectors (the query embedding is real)")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
