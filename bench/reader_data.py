"""The reader's training data: a mix of the kinds of documents people bring, each question put
to the model exactly as RAG puts it (retrieval over a collection of its set's documents, the
chosen statements, the reader's prompt) with its exact answer as the target.

Sets (training splits only; what the reader bench evaluates on is never here):
  squad      SQuAD v1.1 train (the full set; --squad-articles articles spread over it)
  tat-qa     TAT-QA dev split (financial tables with text; the bench uses the test split)
  tables     WikiTableQuestions train split (tables as .csv; the bench uses unseen test tables)
  policies   PolicyQA dev split (20 privacy policies; the bench uses the 20 test policies)
  rewrites   follow-ups and their human standalone rewrites (CANARD dev, the half of its
             dialogues the follow-ups suite does not ask), put as RAG's rewrite prompt
  templates  documents generated from templates (adapters/reader_templates.py): opening
             hours, timetables, price lists, rules, FAQs, manuals, tables, code, contacts,
             with exact (multi-part) answers and questions they do not answer
A share of answerable questions (--unanswerable) is asked over distractors only, its own
documents taken away, and another (--withheld; not for SQuAD) over its own documents without
the statements that hold its answer; both are taught to decline.

Usage: python bench/reader_data.py --out FOLDER [--sets templates,tat-qa,tables,policies,squad]
           [--squad-articles 20] [--tat-qa 900] [--tables 900] [--policies 900]
           [--templates 600] [--unanswerable 0.2] [--withheld 0.1] [--calibration 300]
           [--seed 42]
Writes FOLDER/<set>.jsonl and .json (records and counts) for the sets named (none with
--sets ""), then FOLDER/mix.jsonl: the records of every set in FOLDER, shuffled, less
--calibration reader records held out to FOLDER/calibration.jsonl (for bench/decline_bias.py),
and FOLDER/mix.json: each set's counts and the mix's fingerprint. Then train (on a GPU:
bench/gpu_train.py; docs/BENCHMARKS.md):
  kbot train --method lora --name reader --data FOLDER/mix.jsonl ...
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.reader import ReadingQuestion, reader_records, squad_question  # noqa: E402
from bench.suites import DATA, Suite, jsonl, policyqa, spread, tat_qa, wikitablequestions  # noqa: E402
from knowledge.reading import READER_SYSTEM  # noqa: E402

# Documents generated from templates share a collection in folders of this many, as a user's
# folder of notices would: the reader learns to pick the right one of similar facts.
TEMPLATE_FOLDER = 12


@dataclass
class ReadingSet:
    """Documents to ingest (file name, text) by collection, and the questions asked of each."""

    name: str
    split: str
    collections: dict[str, list[tuple[str, str]]]
    questions: dict[str, list[ReadingQuestion]]
    unanswerable_share: float = 0.2
    withheld_share: float = 0.0


def squad_set(articles: int, unanswerable_share: float) -> ReadingSet:
    folder = DATA / "squad-v1.1-train"
    paragraphs = jsonl(folder / "paragraphs.jsonl")
    titles = spread(sorted({p["title"] for p in paragraphs}), articles)
    chosen = {p["id"]: p for p in paragraphs if p["title"] in titles}
    questions = [
        squad_question(q) for q in jsonl(folder / "questions.jsonl") if q["paragraph_id"] in chosen
    ]
    return ReadingSet(
        "squad",
        f"SQuAD v1.1 train: every paragraph of {len(titles)} articles spread over the set",
        {"squad": [(f"{i}.txt", p["text"] + "\n") for i, p in chosen.items()]},
        {"squad": questions},
        unanswerable_share,
    )


def from_suite(name: str, suite: Suite, unanswerable_share: float) -> ReadingSet:
    """A bench loader's suite of a training split, as a reading set (a collection per group)."""
    collections: dict[str, list[tuple[str, str]]] = {}
    for file, text in suite.documents:
        collections.setdefault(f"{name}-{suite.groups.get(file, '')}", []).append((file, text))
    questions: dict[str, list[ReadingQuestion]] = {}
    for q in suite.questions:
        questions.setdefault(f"{name}-{q.group}", []).append(
            ReadingQuestion(
                q.question,
                tuple(q.answers),
                q.source,
                parts=tuple(q.parts),
                unanswerable=q.unanswerable,
            )
        )
    return ReadingSet(name, suite.split, collections, questions, unanswerable_share)


def template_set(count: int, seed: int) -> ReadingSet:
    from adapters.reader_templates import template_documents

    documents = template_documents(count, seed=seed)
    random.Random(seed).shuffle(documents)
    collections: dict[str, list[tuple[str, str]]] = {}
    questions: dict[str, list[ReadingQuestion]] = {}
    for number, document in enumerate(documents):
        collection = f"templates-{number // TEMPLATE_FOLDER}"
        collections.setdefault(collection, []).append((document.name, document.text))
        questions.setdefault(collection, []).extend(
            ReadingQuestion(
                q.question,
                (q.reply,),
                document.name,
                parts=q.parts,
                reply=q.reply,
                unanswerable=q.unanswerable,
            )
            for q in document.questions
        )
    return ReadingSet(
        "templates",
        f"{count} documents generated from templates (seed {seed}), {TEMPLATE_FOLDER} to a "
        "collection",
        collections,
        questions,
        # A folder of look-alike documents (twelve bakeries' hours) without the one asked
        # about still seems to answer: its own questions the documents do not answer teach
        # declining instead.
        unanswerable_share=0.0,
    )


def rewrite_records(count: int) -> list[dict]:
    """Follow-ups (turn 2 on) with their dialogue, as RAG asks the model to rewrite them, the
    human rewrite the target (the same question where it already stands alone)."""
    from langchain_core.messages import convert_to_messages

    from bench.suites import canard_rows
    from bot.backends.rag import history_text
    from knowledge.reading import rewrite_messages

    records = []
    for r in spread([r for r in canard_rows("train") if r["turn"] >= 2], count):
        # CANARD's history opens with the article and section titles.
        history = [("user", f"{r['title']}: {r['section']}")] + [
            (t["role"], t["text"]) for t in r["history"]
        ]
        conversation = history_text(convert_to_messages(history))
        messages = rewrite_messages(conversation, r["question"])
        records.append({"messages": [*messages, {"role": "assistant", "content": r["rewrite"]}]})
    return records


def build(sets: Iterable[ReadingSet], seed: int) -> Iterator[tuple[ReadingSet, list[dict], dict]]:
    """Each set's records and counts, as soon as it is read."""
    from bot.resources import Resources
    from bot.settings import load_settings
    from knowledge.knowledge_base import KnowledgeBase

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        resources = Resources(settings)
        knowledge = KnowledgeBase(
            Path(tmp) / "knowledge",
            resources.embedder,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
        )
        for reading_set in sets:
            started = time.perf_counter()
            records: list[dict] = []
            tally: dict[str, int] = {}
            for number, (collection, documents) in enumerate(reading_set.collections.items()):
                asked = reading_set.questions.get(collection, [])
                if not asked:
                    continue
                folder = Path(tmp) / "docs" / f"{reading_set.name}-{number}"
                folder.mkdir(parents=True)
                files = []
                for file, text in documents:
                    (folder / file).write_text(text, encoding="utf-8")
                    files.append((folder / file, file))
                stored = f"{reading_set.name}-{number}"
                ingest = knowledge.ingest(stored, files)
                assert not ingest.errors, ingest.errors[:1]
                found, kinds = reader_records(
                    knowledge,
                    stored,
                    asked,
                    k=settings.top_k,
                    sentences=settings.evidence_sentences,
                    unanswerable_share=reading_set.unanswerable_share,
                    withheld_share=reading_set.withheld_share,
                    seed=seed + number,
                )
                records += found
                for kind, value in kinds.items():
                    tally[kind] = tally.get(kind, 0) + value
            counts = {
                "split": reading_set.split,
                "records": len(records),
                **tally,
                "seconds": round(time.perf_counter() - started),
            }
            print(f"{reading_set.name}: {counts}", flush=True)
            yield reading_set, records, counts


def jsonl_lines(records: Iterable[dict]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


SETS = ("templates", "tat-qa", "tables", "policies", "squad", "rewrites")


def reading_sets(names: Sequence[str], args: argparse.Namespace) -> Iterator[ReadingSet]:
    for reading_set in _reading_sets(names, args):
        # Not SQuAD's: its paragraphs without the answer's sentence taught declining answers
        # in prose (F1 -0.07 on SQuAD dev; docs/BENCHMARKS.md), and it has the most records.
        reading_set.withheld_share = 0.0 if reading_set.name == "squad" else args.withheld
        yield reading_set


def _reading_sets(names: Sequence[str], args: argparse.Namespace) -> Iterator[ReadingSet]:
    share = args.unanswerable
    for name in names:
        if name == "templates":
            yield template_set(args.templates, args.seed)
        elif name == "tat-qa":
            yield from_suite(name, tat_qa(args.tat_qa, split="dev"), share)
        elif name == "tables":
            yield from_suite(name, wikitablequestions(args.tables, split="train"), share)
        elif name == "policies":
            # Each policy is its own collection (its questions never name the company): asked
            # without its own policy, nothing would be left to read.
            yield from_suite(name, policyqa(args.policies, split="dev"), 0.0)
        elif name == "squad":
            yield squad_set(args.squad_articles, share)
        else:
            raise SystemExit(f"unknown set {name!r}: one of {', '.join(SETS)}")


def main(argv: Sequence[str] | None = None) -> None:
    from adapters.data import load_records
    from common.files import write_atomically

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="the folder of the records")
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--squad-articles", type=int, default=20)
    parser.add_argument("--tat-qa", type=int, default=900)
    parser.add_argument("--tables", type=int, default=900)
    parser.add_argument("--policies", type=int, default=900)
    parser.add_argument("--templates", type=int, default=600)
    parser.add_argument("--rewrites", type=int, default=1200)
    parser.add_argument("--unanswerable", type=float, default=0.2)
    parser.add_argument("--withheld", type=float, default=0.1)
    parser.add_argument("--calibration", type=int, default=300)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    args.out.mkdir(parents=True, exist_ok=True)
    command = " ".join(["python bench/reader_data.py", *sys.argv[1:]])
    names = [name for name in args.sets.split(",") if name]
    if "rewrites" in names:
        names.remove("rewrites")
        records = rewrite_records(args.rewrites)
        write_atomically(args.out / "rewrites.jsonl", jsonl_lines(records))
        summary = {
            "command": command,
            "split": "CANARD dev, the dialogues of its train half (bench/suites.py canard_half)",
            "records": len(records),
        }
        write_atomically(args.out / "rewrites.json", json.dumps(summary, indent=1))
    for reading_set, records, counts in build(reading_sets(names, args), args.seed):
        write_atomically(args.out / f"{reading_set.name}.jsonl", jsonl_lines(records))
        summary = {"command": command, **counts}
        write_atomically(args.out / f"{reading_set.name}.json", json.dumps(summary, indent=1))

    present = [name for name in SETS if (args.out / f"{name}.jsonl").is_file()]
    mix = [r for name in present for r in map(json.loads, (args.out / f"{name}.jsonl").open())]
    sets = [name for name in present for _ in (args.out / f"{name}.jsonl").open()]
    order = list(range(len(mix)))
    random.Random(args.seed).shuffle(order)
    mix, sets = [mix[i] for i in order], [sets[i] for i in order]
    reading = [i for i, r in enumerate(mix) if r["messages"][0]["content"] == READER_SYSTEM]
    held_out = set(reading[: args.calibration])
    # Calibration records name their set: the leaning is calibrated on each kind of document.
    calibration = ({**mix[i], "set": sets[i]} for i in sorted(held_out))
    write_atomically(args.out / "calibration.jsonl", jsonl_lines(calibration))
    mix = [r for i, r in enumerate(mix) if i not in held_out]
    write_atomically(args.out / "mix.jsonl", jsonl_lines(mix))
    summary = {
        "records": len(mix),
        "calibration_records": len(held_out),
        "fingerprint": load_records(args.out / "mix.jsonl").fingerprint,
        "sets": {name: json.loads((args.out / f"{name}.json").read_text()) for name in present},
    }
    write_atomically(args.out / "mix.json", json.dumps(summary, indent=1) + "\n")
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
