"""Retrieval modes side by side: dense, BM25, hybrid, HyDE and questions, on the same
collections in one run.

Measures for each mode (`KnowledgeBase.search_many` / `search`, as `kbot retrieve --mode` runs):
  * nDCG@10 and recall@10 on the 300 SciFact test claims (BEIR test split; one .txt file per
    abstract, default chunking; a document scores its best chunk among the 30 retrieved);
  * SQuAD v1.1 dev gold-paragraph recall@1 and @5 (the first --squad-articles articles, one
    .txt file per paragraph, every question of theirs);
  * query latency p50/p95 (one query at a time, embedding included) on SciFact, and at
    --synthetic-chunks chunks (random unit vectors; texts of 60 words drawn from SciFact's
    vocabulary, so BM25 has real postings to walk);
  * the cost of each mode: the BM25 index's build time (from the stored chunks) and size;
    for questions, the model's time per chunk here and the expanded index.

HyDE's answers and the questions mode's questions are written by the model; for thousands of
queries and chunks that is faster on a GPU: `--export-queries` / `--export-sentences` write
what to generate, bench/gpu_hyde.py / bench/gpu_questions.py generate it there as the app does,
and `--hypotheses` / `--questions` read it back here (anything missing is written here).

Usage: python bench/modes.py [--limit-docs N] [--squad-articles 6] [--synthetic-chunks 100000]
                             [--hypotheses PATH] [--questions PATH] [--modes dense,bm25,...]
Writes bench/results/modes.json (or --results PATH) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import elapsed, log, timed_ingest  # noqa: E402
from bench.retrieval import (  # noqa: E402
    SYNTHETIC,
    evaluate,
    fill_synthetic,
    latencies,
    load_scifact,
)
from knowledge.modes import MODES  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "modes.json"
SQUAD = ROOT.parent / "shared" / "data" / "squad-v1.1-dev"
# Chunks whose questions are written here one at a time, to measure what the mode adds to
# ingestion on this machine.
QUESTION_TIMING_CHUNKS = 10
K_CHUNKS = 30


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def doc_run(kb, name: str, queries: dict[str, str], mode: str) -> dict[str, dict[str, float]]:
    """{query id: {document: best chunk score}} over the top `K_CHUNKS` chunks."""
    run = {}
    hits_of = kb.search_many(name, list(queries.values()), K_CHUNKS, mode)
    for qid, hits in zip(queries, hits_of, strict=True):
        docs: dict[str, float] = {}
        for rank, hit in enumerate(hits):
            doc = Path(hit.source).stem
            docs.setdefault(doc, float(K_CHUNKS - rank))  # rank order; scores differ by mode
        run[qid] = docs
    return run


def lexical_cost(kb, name: str) -> dict[str, float]:
    """Build the BM25 index afresh from the stored chunks: seconds and bytes on disk."""
    manifest = kb._committed(name)
    kb.lexical.forget(name)
    for old in (kb.root / "collections" / name / "bm25").glob("*"):
        import shutil

        shutil.rmtree(old)
    start = time.perf_counter()
    kb.lexical.get(name, manifest)
    seconds = time.perf_counter() - start
    size = folder_bytes(kb.root / "collections" / name / "bm25")
    return {"build_seconds": round(seconds, 2), "bytes": size}


def asked_sentences(collections: dict[str, dict[str, str]], settings) -> list[str]:
    """The sentences the questions mode asks the model about, chunked as ingestion chunks
    each collection's files."""
    from adapters.qa import sentences, spread
    from knowledge.chunking import chunk_documents
    from knowledge.loaders import load_file

    found: dict[str, None] = {}
    for docs in collections.values():
        for doc_id, text in docs.items():
            path = Path(f"{doc_id}.txt")
            documents = load_file(path, text.encode())
            for chunk in chunk_documents(
                documents, ".txt", settings.chunk_size, settings.chunk_overlap
            ):
                chosen = spread(sentences(chunk.page_content), settings.questions_per_chunk)
                found.update(dict.fromkeys(chosen))
    return list(found)


def questions_cost(kb, resources, name: str) -> dict[str, float]:
    """Write the questions of collection `name` (from the file read in, where given) and
    measure: the model's time per chunk here, and the expanded BM25 index's build and size."""
    chunks = [text for _, text in kb.chunks(name)][:QUESTION_TIMING_CHUNKS]
    start = time.perf_counter()
    written = [resources.chunk_questions(text) for text in chunks]
    per_chunk = (time.perf_counter() - start) / max(len(chunks), 1)
    start = time.perf_counter()
    kb.add_questions(name)
    added = time.perf_counter() - start
    manifest = kb._committed(name)
    start = time.perf_counter()
    kb.searcher.lexical_index(name, manifest, questions=True)
    build = time.perf_counter() - start
    return {
        "cpu_seconds_per_chunk": round(per_chunk, 2),
        "questions_per_chunk_here": round(sum(map(len, written)) / max(len(written), 1), 2),
        "add_seconds": round(added, 1),
        "bm25_build_seconds": round(build, 2),
        "bm25_bytes": folder_bytes(kb.root / "collections" / name / "bm25-questions"),
        "stored_bytes": folder_bytes(kb.root / "collections" / name / "questions"),
    }


def squad_slice(articles: int) -> tuple[list[dict], list[dict]]:
    with (SQUAD / "paragraphs.jsonl").open() as lines:
        paragraphs = [json.loads(line) for line in lines if line.strip()]
    titles = list(dict.fromkeys(p["title"] for p in paragraphs))[:articles]
    paragraphs = [p for p in paragraphs if p["title"] in titles]
    kept = {p["id"] for p in paragraphs}
    with (SQUAD / "questions.jsonl").open() as lines:
        questions = [q for line in lines if (q := json.loads(line))["paragraph_id"] in kept]
    return paragraphs, questions


def squad_recall(kb, name: str, questions: list[dict], mode: str) -> dict[str, float]:
    hits_of = kb.search_many(name, [q["question"] for q in questions], 5, mode)
    at1 = at5 = 0
    for question, hits in zip(questions, hits_of, strict=True):
        found = [Path(h.source).stem for h in hits]
        at1 += found[:1] == [question["paragraph_id"]]
        at5 += question["paragraph_id"] in found
    return {"recall@1": round(at1 / len(questions), 4), "recall@5": round(at5 / len(questions), 4)}


def synthetic_texts(corpus: dict, n: int) -> list[str]:
    words = Counter(
        w for title, text in corpus.values() for w in re.findall(r"\w+", f"{title} {text}".lower())
    )
    vocabulary, weights = zip(*words.items(), strict=True)
    rng = random.Random(0)
    return [" ".join(rng.choices(vocabulary, weights, k=60)) for _ in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-docs", type=int, default=None, help="first N abstracts only")
    parser.add_argument("--squad-articles", type=int, default=6)
    parser.add_argument("--latency-queries", type=int, default=200)
    parser.add_argument("--synthetic-chunks", type=int, default=100_000)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--results", type=Path, default=RESULTS, help="where to write")
    parser.add_argument(
        "--export-queries", type=Path, metavar="PATH", help="write the queries for "
        "bench/gpu_hyde.py (hyde's answers written on a GPU) and stop",
    )  # fmt: skip
    parser.add_argument(
        "--hypotheses", type=Path, metavar="PATH", help="hyde's answers from bench/gpu_hyde.py "
        "(without it they are written here, one query at a time)",
    )  # fmt: skip
    parser.add_argument(
        "--export-sentences", type=Path, metavar="PATH", help="write the sentences the "
        "questions mode asks about, for bench/gpu_questions.py, and stop",
    )  # fmt: skip
    parser.add_argument(
        "--questions", type=Path, metavar="PATH", help="the questions mode's questions from "
        "bench/gpu_questions.py (without it they are written here: hours on a CPU)",
    )  # fmt: skip
    parser.add_argument(
        "--hyde-latency-queries", type=int, default=20,
        help="hyde's latency is measured on this many queries, writing each answer here",
    )  # fmt: skip
    args = parser.parse_args()
    modes = args.modes.split(",")

    import torch

    from adapters.qa import chunk_questions
    from bot.resources import HYDE_PROMPT, HYDE_TOKENS, QUESTION_GENERATION, Resources
    from bot.settings import load_settings

    corpus, queries, qrels = load_scifact(args.limit_docs)
    paragraphs, questions = squad_slice(args.squad_articles)
    collections = {
        "scifact": {i: f"{title}\n\n{text}" for i, (title, text) in corpus.items()},
        "squad": {p["id"]: p["text"] for p in paragraphs},
    }
    if args.export_sentences:
        every = asked_sentences(collections, load_settings())
        spec = {"generation": QUESTION_GENERATION, "sentences": every}
        args.export_sentences.write_text(json.dumps(spec))
        log(f"wrote {len(every)} sentences to {args.export_sentences}")
        return
    if args.export_queries:
        every = [*queries.values(), *(q["question"] for q in questions)]
        spec = {"system": HYDE_PROMPT, "max_new_tokens": HYDE_TOKENS, "queries": every,
                "repetition_penalty": load_settings().repetition_penalty}  # fmt: skip
        args.export_queries.write_text(json.dumps(spec))
        log(f"wrote {len(every)} queries to {args.export_queries}")
        return
    log(f"SciFact: {len(corpus):,} abstracts, {len(queries)} queries; SQuAD: "
        f"{len(paragraphs)} paragraphs, {len(questions)} questions")  # fmt: skip
    result: dict = {
        "command": "python bench/modes.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "scifact": {"docs": len(corpus), "queries": len(queries), "k_chunks": K_CHUNKS},
        "squad": {
            "articles": args.squad_articles,
            "paragraphs": len(paragraphs),
            "questions": len(questions),
        },  # fmt: skip
        "modes": {},
    }
    with tempfile.TemporaryDirectory(prefix="kbot-modes-") as tmp:
        # Questions for every SciFact chunk at once: far more than a server writes in one go.
        settings = load_settings(home=Path(tmp) / "home", questions_max_chunks=1_000_000)
        resources = Resources(settings)
        kb = resources.knowledge
        written = json.loads(args.hypotheses.read_text()) if args.hypotheses else {}
        result["hypotheses"] = "bench/gpu_hyde.py" if written else "written here"

        def hypothesize(query: str) -> str:
            return written[query] if query in written else resources.hypothetical_answer(query)

        kb.hypothesize = hypothesize
        asked = json.loads(args.questions.read_text()) if args.questions else {}
        result["questions"] = "bench/gpu_questions.py" if asked else "written here"
        misses = [0]

        def question(sentence: str) -> str | None:
            if sentence in asked:
                return asked[sentence]
            misses[0] += 1
            return resources.question_for(sentence)

        per_chunk = resources.settings.questions_per_chunk
        kb.write_questions = lambda text: chunk_questions(text, per_chunk, question)
        for name, docs in collections.items():
            folder = Path(tmp) / name
            folder.mkdir()
            files = []
            for doc_id, text in docs.items():
                (folder / f"{doc_id}.txt").write_text(text)
                files.append(folder / f"{doc_id}.txt")
            ingest, seconds, _ = timed_ingest(kb, name, files, f"{name} ingest")
            result[name]["chunks"] = ingest.chunks_added
            result[name]["dense_ingest_seconds"] = round(seconds, 1)
            result[name]["dense_index_bytes"] = kb.stats(name)["index_bytes"]
            result[name]["bm25_index"] = lexical_cost(kb, name)
            log(f"{name}: {ingest.chunks_added:,} chunks in {seconds:.0f} s; "
                f"BM25 {result[name]['bm25_index']}")  # fmt: skip
            if "questions" in modes:
                result[name]["questions"] = questions_cost(kb, resources, name)
                log(f"{name} questions: {result[name]['questions']}")
        result["questions_written_here"] = misses[0]

        sample = list(queries.values())[: args.latency_queries]
        for mode in modes:
            start = time.perf_counter()
            scores = evaluate(doc_run(kb, "scifact", queries, mode), qrels)
            batch_s = time.perf_counter() - start
            squad = squad_recall(kb, "squad", questions, mode)
            timed = sample
            if mode == "hyde":  # each query waits for the model's answer, as in the app
                kb.hypothesize = resources.hypothetical_answer
                timed = sample[: args.hyde_latency_queries]
            row = {
                "scifact": scores,
                "scifact_batch_seconds": round(batch_s, 2),
                "squad": squad,
                "latency": latencies(lambda q, m=mode: kb.search("scifact", q, 10, m), timed),
            }
            kb.hypothesize = hypothesize
            result["modes"][mode] = row
            log(f"{mode}: {row}")

        if args.synthetic_chunks:
            log(f"synthetic collection of {args.synthetic_chunks:,} chunks")
            texts = synthetic_texts(corpus, args.synthetic_chunks)
            fill_synthetic(kb, args.synthetic_chunks, per_source=100, words=texts)
            result["synthetic"] = {"chunks": args.synthetic_chunks,
                                   "bm25_index": lexical_cost(kb, SYNTHETIC)}  # fmt: skip
            # hyde: dense's latency plus the model's; questions: hybrid's over longer texts.
            for mode in [m for m in modes if m not in ("hyde", "questions")]:
                result["synthetic"][mode] = latencies(
                    lambda q, m=mode: kb.search(SYNTHETIC, q, 10, m), sample
                )
                log(f"synthetic {mode}: {result['synthetic'][mode]}")
    result["seconds"] = round(elapsed(), 1)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result)
    print(f"wrote {args.results}")


def print_table(r: dict) -> None:
    print(f"\n{'mode':8} {'SciFact nDCG@10':>16} {'recall@10':>10} {'SQuAD R@1':>10} "
          f"{'R@5':>6} {'p50 ms':>7} {'p95 ms':>7}", end="")  # fmt: skip
    synthetic = r.get("synthetic")
    print(f" {'100k p50':>9} {'p95':>6}" if synthetic else "")
    for mode, row in r["modes"].items():
        line = (
            f"{mode:8} {row['scifact']['ndcg@10']:16.3f} {row['scifact']['recall@10']:10.3f} "
            f"{row['squad']['recall@1']:10.3f} {row['squad']['recall@5']:6.3f} "
            f"{row['latency']['p50_ms']:7.1f} {row['latency']['p95_ms']:7.1f}"
        )
        if synthetic and mode in synthetic:
            line += f" {synthetic[mode]['p50_ms']:9.1f} {synthetic[mode]['p95_ms']:6.1f}"
        print(line)


if __name__ == "__main__":
    main()
