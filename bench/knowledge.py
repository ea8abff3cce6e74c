"""The headline comparison: base, RAG, LoRA, full fine-tuning and RAG+LoRA on the same
knowledge and the same held-out questions, with what each cost to build.

Data: a slice of SQuAD v1.1 dev, the first --articles articles in the file (default 2:
1973_oil_crisis and Amazon_rainforest). The knowledge is their paragraphs. Each paragraph's
questions are split by position: even ones are training data, odd ones are the test set.
  * RAG: every paragraph ingested (one .txt file each) into a collection, default settings.
  * LoRA and full fine-tuning: trained with the product defaults (`kbot train`: 3 epochs,
    batch 4, LoRA r16 all-linear lr 1e-3, full lr 5e-5) on the paragraphs plus the training
    questions, in one run each.
  * RAG+LoRA: the collection's passages answered with that LoRA adapter.
All five answer the same --questions test questions (spread evenly over the test set), via
`bot.evaluation.runner.compare`, the code behind `kbot eval`; generation is greedy and capped
at 64 new tokens (SQuAD answers are short).

Usage: python bench/knowledge.py [--articles 2] [--questions 60] [--threads 0] [--max-steps N]
                                 [--quick] [--export-training FILE] [--trained DIR]
Larger slices train faster on a GPU: --export-training writes the training data, which
bench/gpu_train.py trains on (both methods, the same recipe), and --trained uses the result.
Writes bench/results/knowledge.json and knowledge.html (the report `kbot eval --report` writes;
knowledge_<A>a_<Q>q.* for other slices) and prints the table.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import elapsed, log  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SQUAD = ROOT.parent / "shared" / "data" / "squad-v1.1-dev"
MAX_NEW_TOKENS = 64


def squad_slice(articles: int) -> tuple[list[dict], list[dict], list[dict]]:
    """Paragraphs of the first `articles` articles, their training and test questions."""
    with (SQUAD / "paragraphs.jsonl").open() as lines:
        paragraphs = [json.loads(line) for line in lines if line.strip()]
    titles = list(dict.fromkeys(p["title"] for p in paragraphs))[:articles]
    paragraphs = [p for p in paragraphs if p["title"] in titles]
    kept = {p["id"] for p in paragraphs}
    by_paragraph: dict[str, list[dict]] = {}
    with (SQUAD / "questions.jsonl").open() as lines:
        for line in lines:
            question = json.loads(line)
            if question["paragraph_id"] in kept:
                by_paragraph.setdefault(question["paragraph_id"], []).append(question)
    train = [q for qs in by_paragraph.values() for q in qs[0::2]]
    test = [q for qs in by_paragraph.values() for q in qs[1::2]]
    return paragraphs, train, test


def spread(items: list, count: int) -> list:
    return items if count >= len(items) else [items[i * len(items) // count] for i in range(count)]


def results_name(args: argparse.Namespace) -> str:
    """knowledge.json for the default slice; larger slices keep files of their own."""
    if args.quick:
        return "knowledge_quick"
    if (args.articles, args.questions) == (2, 60):
        return "knowledge"
    return f"knowledge_{args.articles}a_{args.questions}q"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=2)
    parser.add_argument("--questions", type=int, default=60, help="test questions to answer")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: all)")
    parser.add_argument("--max-steps", type=int, help="cap training steps (trial runs)")
    parser.add_argument(
        "--quick", action="store_true", help="trial: 1 article, 10 questions, 5 training steps"
    )
    parser.add_argument(
        "--export-training",
        type=Path,
        help="write the LoRA/full training data to this JSON file (for bench/gpu_train.py) "
        "and stop",
    )
    parser.add_argument(
        "--trained",
        type=Path,
        help="a folder holding lora/ and full/ trained elsewhere on the exported data "
        "(bench/gpu_train.py): used instead of training here",
    )
    args = parser.parse_args()
    if args.quick:
        args.articles, args.questions, args.max_steps = 1, 10, 5

    import torch

    from adapters.meta import META_FILE
    from adapters.train import TrainConfig
    from bot.evaluation.questions import parse_questions
    from bot.evaluation.report import write_report
    from bot.evaluation.runner import compare
    from bot.evaluation.table import text_table
    from bot.resources import Resources
    from bot.service import ChatService
    from bot.settings import load_settings
    from bot.training import run_training, training_data

    paragraphs, train_questions, test_questions = squad_slice(args.articles)
    test = spread(test_questions, args.questions)
    log(
        f"{args.articles} articles: {len(paragraphs)} paragraphs, {len(train_questions)} training "
        f"questions, {len(test_questions)} test questions, {len(test)} answered"
    )
    with tempfile.TemporaryDirectory(prefix="kbot-knowledge-") as tmp:
        folder = Path(tmp) / "paragraphs"
        folder.mkdir()
        for paragraph in paragraphs:
            (folder / f"{paragraph['id']}.txt").write_text(paragraph["text"])
        train_file = Path(tmp) / "train.jsonl"
        train_file.write_text(
            "".join(
                json.dumps({"question": q["question"], "answer": q["answers"][0]}) + "\n"
                for q in train_questions
            )
        )
        settings = load_settings(
            home=Path(tmp) / "home", max_new_tokens=MAX_NEW_TOKENS, torch_threads=args.threads
        )
        resources = Resources(settings).load()

        log("ingesting paragraphs for RAG")
        ingest = resources.knowledge.ingest("squad", sorted(folder.iterdir()))
        assert not ingest.errors, ingest.errors
        data = training_data(resources, [train_file, folder])
        log(f"training data: {len(data.texts)} documents + {len(data.conversations)} Q/A pairs")
        if args.export_training:
            args.export_training.write_text(json.dumps(dataclasses.asdict(data)))
            log(f"wrote {args.export_training} (fingerprint {data.fingerprint})")
            return
        if args.trained:
            for method in ("lora", "full"):
                trained_on = json.loads((args.trained / method / META_FILE).read_text())
                assert trained_on["data"]["fingerprint"] == data.fingerprint, method
                shutil.copytree(args.trained / method, resources.artifacts.path(method))
        for method in () if args.trained else ("lora", "full"):
            log(f"training {method}")
            config = TrainConfig(method=method, name=method, max_steps=args.max_steps)
            result = run_training(resources, config, data)
            meta = result.meta
            log(f"  {method}: {meta.steps} steps in {meta.train_seconds} s")

        questions = parse_questions(
            "".join(
                json.dumps(
                    {
                        "id": q["id"],
                        "question": q["question"],
                        "answers": q["answers"],
                        "source": f"{q['paragraph_id']}.txt",
                    }
                )
                + "\n"
                for q in test
            )
        )
        specs = ["base", "rag:squad", "lora:lora", "full:full", "rag+lora:squad:lora"]
        last = [0.0]

        def progress(fraction: float, label: str) -> None:
            if fraction - last[0] >= 0.05 or fraction == 1.0:
                last[0] = fraction
                log(f"  {fraction:4.0%} {label}")

        comparison = compare(ChatService(resources), questions, specs, progress)
        steps = {m: resources.artifacts.meta(m).steps for m in ("lora", "full")}

    RESULTS.mkdir(parents=True, exist_ok=True)
    name = results_name(args)
    write_report(comparison, RESULTS / f"{name}.html")
    output = {
        "command": "python bench/knowledge.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "articles": sorted({p["title"] for p in paragraphs}),
        "paragraphs": len(paragraphs),
        "train_questions": len(train_questions),
        "test_questions_answered": len(test),
        "training_steps": steps,
        "trained": f"elsewhere: {args.trained}" if args.trained else "here",
        "max_new_tokens": MAX_NEW_TOKENS,
        "seconds": round(elapsed(), 1),
        **comparison.as_json(),
    }
    (RESULTS / f"{name}.json").write_text(json.dumps(output, indent=1) + "\n")
    print(text_table(comparison))
    print(f"wrote {RESULTS / name}.json and .html in {elapsed():.0f} s")


if __name__ == "__main__":
    main()
