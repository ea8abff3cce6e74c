"""Whole-collection summaries: do they cover every document, and what does a change cost?

The collection: --documents SQuAD v1.1 *train-sample* articles (real Wikipedia text, the
first paragraphs of each up to --chars characters, so most documents span several chunks).
Into each, one key fact is planted at a random sentence position, in one of two forms:
  * subject: "<Subject> was surveyed in <year> by the <Name> Society, which recorded <number>
    sites." (names the article's subject, as the document's file name does);
  * plain: "In <year> a survey by the <Name> Society recorded <number> sites." (does not).
A document counts as covered when its fact's number appears in the collection's summary (the
document summaries and the overview, as the chat shows them).

For each method (`extract`, `model`), each draw of articles (--seeds) and each form of fact:
  * coverage: the share of documents whose planted fact is in the summary;
  * answers: the share of the articles' own SQuAD questions (on the paragraphs included) whose
    answer is in the summary, a measure of how much of the documents' content it keeps, and
    the summary's length as a share of the documents' words;
  * the first summary's time; then one document is changed (a new fact planted) and the
    collection summarised again: its time, the documents summarised again, the ratio, and
    whether the new fact is covered.

Usage: python bench/summaries.py [--documents 24] [--chars 2500] [--methods extract]
       [--seeds 7,8,9,10] [--forms subject,plain] [--results bench/results/summaries.json]
Prints a table and writes the results file.
"""

from __future__ import annotations

import argparse
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

from bench.common import log  # noqa: E402
from bot.resources import Resources  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from knowledge.summaries import Summarizer  # noqa: E402
from knowledge.text import split_sentences  # noqa: E402

SQUAD = ROOT.parent / "shared" / "data" / "squad-v1.1-train-sample"
PARAGRAPHS = SQUAD / "paragraphs.jsonl"
NAMES = ["Harrow", "Quillon", "Destry", "Marlowe", "Ancel", "Brisk", "Corvane", "Ellery"]


def articles(count: int, chars: int, seed: int) -> list[tuple[str, str]]:
    """(title, text): the first paragraphs of `count` articles chosen at random."""
    by_title: dict[str, list[str]] = {}
    for line in PARAGRAPHS.read_text().splitlines():
        row = json.loads(line)
        by_title.setdefault(row["title"], []).append(row["text"])
    titles = random.Random(seed).sample(sorted(by_title), count)
    chosen = []
    for title in titles:
        text = ""
        for paragraph in by_title[title]:
            if len(text) + len(paragraph) > chars and text:
                break
            text += paragraph + "\n\n"
        chosen.append((title, text.strip()))
    return chosen


def plant(title: str, text: str, rng: random.Random, form: str = "subject") -> tuple[str, str, str]:
    """`text` with one fact at a random sentence; (text, marker, where)."""
    number = str(rng.randrange(10_000, 99_999))
    year, society = rng.randrange(1900, 2000), rng.choice(NAMES)
    if form == "subject":
        subject = title.replace("_", " ")
        fact = (
            f"{subject} was surveyed in {year} by the {society} Society, which recorded "
            f"{number} sites."
        )
    else:
        fact = f"In {year} a survey by the {society} Society recorded {number} sites."
    sentences = split_sentences(text)
    at = rng.randrange(len(sentences) + 1)
    where = "first" if at == 0 else "last" if at == len(sentences) else "between"
    return " ".join([*sentences[:at], fact, *sentences[at:]]), number, where


def squad_answers(titles: set[str]) -> dict[str, list[str]]:
    """Each article's SQuAD answers (the first given per question)."""
    found: dict[str, list[str]] = {}
    for line in (SQUAD / "questions.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row["title"] in titles:
            found.setdefault(row["title"], []).append(row["answers"][0])
    return found


def write(folder: Path, name: str, text: str) -> tuple[Path, str]:
    path = folder / name
    path.write_text(text)
    return path, name


def shown(summary) -> str:
    return " ".join([summary.overview, *(d.text for d in summary.documents)])


def coverage(summary, markers: dict[str, str]) -> dict[str, bool]:
    text = shown(summary)
    return {source: marker in text for source, marker in markers.items()}


def run(method: str, resources: Resources, name: str, draw: dict, folder: Path, seed: int) -> dict:
    written = Summarizer(
        resources.knowledge,
        resources.embedder,
        method=method,
        sentences=resources.settings.summary_sentences,
        model=lambda: resources.chat_model(repetition_penalty=1.0, max_new_tokens=120),
        model_name=resources.settings.model,
    )
    docs = draw["docs"]
    markers = {source: marker for source, marker, _ in docs}
    started = time.perf_counter()
    first = written.summarise(name)
    first_s = time.perf_counter() - started
    covered = coverage(first, markers)
    text = shown(first)
    answers = [a for answers in draw["answers"].values() for a in answers]
    log(f"{method}: first summary {first_s:.1f} s, coverage {sum(covered.values())}/{len(docs)}")

    # Change one document (a new fact planted into its original text) and summarise again.
    rng = random.Random(seed + 1)
    source = docs[len(docs) // 2][0]
    original = (folder / "originals" / source).read_text()
    changed, marker, _ = plant(source.removesuffix(".txt"), original, rng, draw["form"])
    resources.knowledge.ingest(name, [write(folder, source, changed)])
    started = time.perf_counter()
    second = written.summarise(name)
    second_s = time.perf_counter() - started
    markers[source] = marker
    log(f"{method}: after one change {second_s:.2f} s, {second.summarised} summarised again")
    return {
        "method": method,
        "seed": seed,
        "form": draw["form"],
        "documents": len(docs),
        "coverage": round(sum(covered.values()) / len(docs), 3),
        "answers": round(sum(a in text for a in answers) / max(len(answers), 1), 3),
        "questions": len(answers),
        "length_share": round(len(text.split()) / draw["words"], 3),
        "first_s": round(first_s, 2),
        "after_change_s": round(second_s, 2),
        "change_cost_ratio": round(second_s / first_s, 3),
        # The map step alone (writing document summaries; the overview is the rest).
        "map_s": round(sum(d.seconds for d in first.documents), 2),
        "map_after_change_s": round(sum(d.seconds for d in second.documents), 2),
        "summarised_again": second.summarised,
        "changed_fact_covered": coverage(second, markers)[source],
        "overview": first.overview,
    }


def draw_collection(args, seed: int, form: str, folder: Path) -> dict:
    """One draw of articles with a fact planted in each, written under `folder`."""
    rng = random.Random(seed)
    (folder / "originals").mkdir(parents=True)
    docs, planted, answers = [], {}, {}
    chosen = articles(args.documents, args.chars, seed)
    every = squad_answers({title for title, _ in chosen})
    for title, text in chosen:
        source = f"{title}.txt"
        (folder / "originals" / source).write_text(text)
        planted[source], marker, where = plant(title, text, rng, form)
        docs.append((source, marker, where))
        answers[source] = [a for a in every.get(title, []) if a in text]
    words = sum(len(text.split()) for text in planted.values())
    return {"form": form, "docs": docs, "planted": planted, "answers": answers, "words": words}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--chars", type=int, default=2500)
    parser.add_argument("--methods", default="extract")
    parser.add_argument("--seeds", default="7,8,9,10")
    parser.add_argument("--forms", default="subject,plain")
    parser.add_argument("--results", type=Path, default=ROOT / "bench/results/summaries.json")
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="kbot-bench-summaries-"))
    resources = Resources(load_settings(home=home)).load()
    rows = []
    for seed in [int(s) for s in args.seeds.split(",")]:
        for form in args.forms.split(","):
            folder = home / f"docs-{seed}-{form}"
            draw = draw_collection(args, seed, form, folder)
            for method in args.methods.split(","):
                name = f"summaries-{seed}-{form}-{method}"
                # The same collection for each method (the previous one changed a document).
                files = [write(folder, source, text) for source, text in draw["planted"].items()]
                chunks = resources.knowledge.ingest(name, files).chunks_added
                row = run(method, resources, name, draw, folder, seed)
                rows.append({**row, "chunks": chunks})

    print(f"\n{args.documents} documents a draw, one key fact planted in each\n")
    print(
        f"{'method':8} {'seed':>4} {'form':8} {'chunks':>6} {'coverage':>9} {'answers':>8} "
        f"{'length':>7} {'first s':>8} {'after change s':>15} {'ratio':>6}  again  new fact"
    )
    for r in rows:
        print(
            f"{r['method']:8} {r['seed']:>4} {r['form']:8} {r['chunks']:>6} "
            f"{r['coverage']:>9.3f} {r['answers']:>8.3f} {r['length_share']:>7.3f} "
            f"{r['first_s']:>8.1f} {r['after_change_s']:>15.2f} {r['change_cost_ratio']:>6.3f}  "
            f"{r['summarised_again']:>5}  {r['changed_fact_covered']}"
        )
    print()
    for method in args.methods.split(","):
        for form in args.forms.split(","):
            mine = [r for r in rows if r["method"] == method and r["form"] == form]
            mean = statistics.mean(r["coverage"] for r in mine)
            print(
                f"{method} {form}: coverage mean {mean:.3f} "
                f"(min {min(r['coverage'] for r in mine):.3f}), answers mean "
                f"{statistics.mean(r['answers'] for r in mine):.3f}, length mean "
                f"{statistics.mean(r['length_share'] for r in mine):.3f}, ratio median "
                f"{statistics.median(r['change_cost_ratio'] for r in mine):.3f}"
            )
    args.results.write_text(
        json.dumps(
            {
                "command": "python bench/summaries.py " + " ".join(sys.argv[1:]),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "model": resources.settings.model,
                "summary_sentences": resources.settings.summary_sentences,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {args.results}")


if __name__ == "__main__":
    main()
