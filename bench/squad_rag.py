"""Retrieval and answer quality of the RAG backend on SQuAD v1.1 dev.

Measures, side by side in one run:
  * all 2,067 dev paragraphs (one .txt file each, named by paragraph id, text only) ingested
    into a knowledge collection, once per chunk size (500 / 1000 / 1500 characters, overlap
    75 / 150 / 150), each in its own temporary KBOT_HOME, built as the app builds it;
  * gold-paragraph recall@1 and recall@5 (the gold paragraph is among the distinct source files
    of the top 1 / 5 chunks) for a fixed random sample (seed 0) of questions, at each size;
  * answers of `ChatService.reply` with the rag backend (default settings: chunk 1000, top_k 4)
    and with the base backend (no retrieval) on the first M of those questions: SQuAD exact
    match and F1 (official normalization, max over the gold answers), the share of answers
    that contain a gold answer, median latency and tokens/s. Generation is capped at 64 new
    tokens (max_new_tokens=64); SQuAD answers are short. Torch runs 1 thread unless
    --threads says otherwise (two threads on a shared 2-core machine can be far slower).

Usage: python bench/squad_rag.py [--questions 300] [--answer-questions 100] [--quick]
                                 [--threads 1]
Writes bench/results/squad_rag.json (squad_rag_quick.json with --quick) and prints tables.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import elapsed, log, timed_ingest  # noqa: E402
from bot.evaluation.scoring import answer_scores  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad-v1.1-dev"

COLLECTION = "squad"
CHUNKINGS = [(500, 75), (1000, 150), (1500, 150)]  # (chunk_size, chunk_overlap)
DEFAULT_CHUNK = 1000
MAX_NEW_TOKENS = 64
K = 5


# Data and metrics ------------------------------------------------------------------------


def load_squad() -> tuple[list[dict], list[dict]]:
    def read(name: str) -> list[dict]:
        with (SQUAD / name).open() as lines:
            return [json.loads(line) for line in lines if line.strip()]

    return read("paragraphs.jsonl"), read("questions.jsonl")


# Retrieval -------------------------------------------------------------------------------


def build(home: Path, chunk_size: int, chunk_overlap: int):
    """Resources as the app builds them, with this chunking and the generation cap."""
    from bot.resources import Resources
    from bot.settings import load_settings

    settings = load_settings(
        home=home,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        max_new_tokens=MAX_NEW_TOKENS,
    )
    return Resources(settings)


def recall(kb, questions: list[dict], k: int) -> dict[str, float]:
    """Gold-paragraph recall@1 and recall@k over the distinct sources of the top-k chunks;
    query embeddings are computed in one batch."""
    start = time.perf_counter()
    vectors = kb.embed_queries([q["question"] for q in questions])
    at1 = atk = 0
    distinct = []
    for question, vector in zip(questions, vectors, strict=True):
        sources = [Path(hit.source).stem for hit in kb.search_vector(COLLECTION, vector, k)]
        distinct.append(len(set(sources)))
        at1 += bool(sources) and sources[0] == question["paragraph_id"]
        atk += question["paragraph_id"] in sources
    return {
        "recall@1": round(at1 / len(questions), 4),
        f"recall@{k}": round(atk / len(questions), 4),
        f"mean_distinct_paragraphs_in_top{k}": round(statistics.fmean(distinct), 2),
        "seconds": round(time.perf_counter() - start, 2),
    }


# Answers ---------------------------------------------------------------------------------


def answer_all(service, questions: list[dict], backend: str, options: dict) -> list[dict]:
    records = []
    for number, question in enumerate(questions, start=1):
        # The last reply yielded is the final one.
        reply = collections.deque(
            service.reply(question["question"], backend=backend, options=options), maxlen=1
        )[0]
        assert reply.done
        sources = [Path(s["source"]).stem for s in reply.sources]
        records.append(
            {
                "id": question["id"],
                "answer": reply.answer,
                "latency_s": round(reply.latency_s, 3),
                "tokens": reply.tokens,
                **({"gold_in_context": question["paragraph_id"] in sources} if sources else {}),
                **answer_scores(reply.answer, question["answers"]),
            }
        )
        if number % 10 == 0 or number == len(questions):
            f1 = statistics.fmean(r["f1"] for r in records)
            log(f"  {backend}: {number} / {len(questions)} answered, F1 so far {f1:.3f}")
    return records


def summarize(records: list[dict]) -> dict:
    def mean(key: str) -> float:
        return round(statistics.fmean(r[key] for r in records), 4)

    summary = {
        "questions": len(records),
        "exact_match": mean("em"),
        "f1": mean("f1"),
        "contains_gold": mean("contains"),
        "latency_s_median": round(statistics.median(r["latency_s"] for r in records), 2),
        "tokens_median": statistics.median(r["tokens"] for r in records),
        "tokens_s_median": round(
            statistics.median(r["tokens"] / r["latency_s"] for r in records if r["latency_s"]), 1
        ),
        "hit_token_cap": mean("capped"),
    }
    with_context = [r for r in records if "gold_in_context" in r]
    if with_context:
        summary["gold_in_context"] = round(
            statistics.fmean(r["gold_in_context"] for r in with_context), 4
        )
        for flag, name in ((True, "gold_retrieved"), (False, "gold_missed")):
            part = [r for r in with_context if r["gold_in_context"] is flag]
            summary[f"f1_when_{name}"] = (
                round(statistics.fmean(r["f1"] for r in part), 4) if part else None
            )
            summary[f"questions_when_{name}"] = len(part)
    return summary


# Main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=300, help="for retrieval recall")
    parser.add_argument(
        "--answer-questions", type=int, default=100, help="first M of them get answers"
    )
    parser.add_argument("--quick", action="store_true", help="trial run: 50 / 20 questions")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (0: torch's own choice); 1 by default because two threads on a "
        "shared 2-core machine were up to 30x slower at embedding one file's chunks",
    )
    args = parser.parse_args()
    if args.quick:
        args.questions, args.answer_questions = 50, 20
    args.answer_questions = min(args.answer_questions, args.questions)

    import chromadb
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    paragraphs, questions = load_squad()
    sample = random.Random(0).sample(questions, args.questions)
    answer_sample = sample[: args.answer_questions]
    log(
        f"SQuAD v1.1 dev: {len(paragraphs):,} paragraphs, {len(questions):,} questions; "
        f"sample {len(sample)} for retrieval, {len(answer_sample)} for answers"
    )
    result: dict = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"chromadb {chromadb.__version__}",
        "dataset": "SQuAD v1.1 dev",
        "paragraphs": len(paragraphs),
        "sample_seed": 0,
        "retrieval_questions": len(sample),
        "answer_questions": len(answer_sample),
        "max_new_tokens": MAX_NEW_TOKENS,
        "threads_flag": args.threads,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "retrieval": [],
    }

    with tempfile.TemporaryDirectory(prefix="kbot-squad-") as tmp:
        folder = Path(tmp) / "squad"
        folder.mkdir()
        files = []
        for paragraph in paragraphs:
            path = folder / f"{paragraph['id']}.txt"
            path.write_text(paragraph["text"])
            files.append(path)

        default_resources = None
        for chunk_size, overlap in CHUNKINGS:
            resources = build(Path(tmp) / f"home-{chunk_size}", chunk_size, overlap)
            kb = resources.knowledge
            kb.embedder.embed_documents(["warm-up"])
            log(f"chunk {chunk_size} / overlap {overlap}: ingesting {len(files):,} files")
            ingest, ingest_s, _ = timed_ingest(kb, COLLECTION, files, f"ingest {chunk_size}")
            row = {
                "chunk_size": chunk_size,
                "chunk_overlap": overlap,
                "chunks": ingest.chunks_added,
                "ingest_s": round(ingest_s, 1),
                "chunks_s": round(ingest.chunks_added / ingest_s, 1),
                **recall(kb, sample, K),
            }
            result["retrieval"].append(row)
            log(f"  {row}")
            if chunk_size == DEFAULT_CHUNK:
                default_resources = resources
            else:
                del resources, kb

        from bot.service import ChatService

        assert default_resources is not None
        settings = default_resources.settings
        result["answer_settings"] = {
            "chunk_size": settings.chunk_size,
            "chunk_overlap": settings.chunk_overlap,
            "top_k": settings.top_k,
            "max_new_tokens": settings.max_new_tokens,
            "temperature": settings.temperature,
            "repetition_penalty_base": settings.repetition_penalty,
            "repetition_penalty_rag": 1.0,
        }
        service = ChatService(default_resources)
        start = time.perf_counter()
        default_resources.load()
        result["model_load_s"] = round(time.perf_counter() - start, 1)
        log(f"model loaded in {result['model_load_s']} s; warm-up answer")
        for _ in service.reply("What is the capital of France?", backend="base"):
            pass
        records = {}
        for backend, options in (("rag", {"collection": COLLECTION}), ("base", {})):
            log(f"answering {len(answer_sample)} questions with the {backend} backend")
            records[backend] = answer_all(service, answer_sample, backend, options)
            for record in records[backend]:
                record["capped"] = float(record["tokens"] >= MAX_NEW_TOKENS)
            result.setdefault("answers", {})[backend] = summarize(records[backend])
            log(f"  {backend}: {result['answers'][backend]}")

    result["total_s"] = round(elapsed(), 1)
    result["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    result["examples"] = [
        {
            "id": q["id"],
            "question": q["question"],
            "gold": sorted(set(q["answers"])),
            **{backend: records[backend][i]["answer"] for backend in records},
        }
        for i, q in enumerate(answer_sample[:10])
    ]
    result["records"] = records
    out = RESULTS / ("squad_rag_quick.json" if args.quick else "squad_rag.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print_tables(result)
    print(f"wrote {out.relative_to(ROOT)}")


def print_tables(r: dict) -> None:
    print(
        f"{r['machine']}; {r['dataset']}: {r['paragraphs']:,} paragraphs, "
        f"seed-{r['sample_seed']} sample of {r['retrieval_questions']} questions"
    )
    print(
        f"  {'chunk / overlap':<16} {'chunks':>7} {'ingest':>9} {'chunks/s':>9} "
        f"{'recall@1':>9} {'recall@5':>9}"
    )
    for row in r["retrieval"]:
        print(
            f"  {row['chunk_size']:>5} / {row['chunk_overlap']:<8} {row['chunks']:>7,} "
            f"{row['ingest_s']:>7.1f} s {row['chunks_s']:>9.1f} "
            f"{row['recall@1']:>9.3f} {row['recall@5']:>9.3f}"
        )
    print(
        f"answers on the first {r['answer_questions']} questions "
        f"(chunk {r['answer_settings']['chunk_size']}, top_k {r['answer_settings']['top_k']}, "
        f"max {r['max_new_tokens']} new tokens, greedy)"
    )
    print(
        f"  {'backend':<8} {'EM':>6} {'F1':>6} {'contains':>9} {'gold ctx':>9} "
        f"{'latency':>9} {'tok/s':>6} {'capped':>7}"
    )
    for backend, s in r["answers"].items():
        context = f"{s['gold_in_context']:.3f}" if "gold_in_context" in s else "-"
        print(
            f"  {backend:<8} {s['exact_match']:>6.3f} {s['f1']:>6.3f} {s['contains_gold']:>9.3f} "
            f"{context:>9} {s['latency_s_median']:>7.2f} s {s['tokens_s_median']:>6.1f} "
            f"{s['hit_token_cap']:>7.2f}"
        )
    print("  EM / F1: official SQuAD normalization, max over gold answers; contains: a normalized")
    print("  gold answer occurs as whole words in the normalized answer; gold ctx: gold paragraph")
    print("  among the chunks given to the model; latency and tok/s: medians per answer, end to")
    print("  end (retrieval and prompt included); capped: share that hit the new-token cap")
    start, end = r["load_average_at_start"], r["load_average_at_end"]
    print(f"  total {r['total_s'] / 60:.1f} min; load average at start {start}, at end {end}")


if __name__ == "__main__":
    main()
