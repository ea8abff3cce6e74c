"""Whole-collection summaries: do they cover every document, and what does a change cost?

The collection: --documents SQuAD v1.1 *train-sample* articles (real Wikipedia text, the
first paragraphs of each up to --chars characters, so most documents span several chunks).
Into each, one key fact about the article's subject is planted at a random sentence position:
"<Subject> was surveyed in <year> by the <Name> Society, which recorded <number> sites." A
document counts as covered when its fact's number appears in the collection's summary (the
document summaries and the overview, as the chat shows them).

For each method (`extract`, `model`), side by side on the same collection in one run:
  * coverage: the share of documents whose planted fact is in the summary (also by where the
    fact sits: the first sentence, the last, or between);
  * the first summary's time; then one document is changed (a new fact planted) and the
    collection summarised again: its time, the documents summarised again, the ratio, and
    whether the new fact is covered.

Usage: python bench/summaries.py [--documents 24] [--chars 2500] [--methods extract,model]
Writes bench/results/summaries.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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
from bot.summaries import Summarizer  # noqa: E402
from knowledge.reading import split_sentences  # noqa: E402

PARAGRAPHS = ROOT.parent / "shared" / "data" / "squad-v1.1-train-sample" / "paragraphs.jsonl"
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


def plant(title: str, text: str, rng: random.Random) -> tuple[str, str, str]:
    """`text` with one fact about its subject at a random sentence; (text, marker, where)."""
    subject = title.replace("_", " ")
    number = str(rng.randrange(10_000, 99_999))
    fact = (
        f"{subject} was surveyed in {rng.randrange(1900, 2000)} by the "
        f"{rng.choice(NAMES)} Society, which recorded {number} sites."
    )
    sentences = split_sentences(text)
    at = rng.randrange(len(sentences) + 1)
    where = "first" if at == 0 else "last" if at == len(sentences) else "between"
    return " ".join([*sentences[:at], fact, *sentences[at:]]), number, where


def write(folder: Path, name: str, text: str) -> tuple[Path, str]:
    path = folder / name
    path.write_text(text)
    return path, name


def coverage(summary, markers: dict[str, str]) -> dict[str, bool]:
    shown = " ".join([summary.overview, *(d.text for d in summary.documents)])
    return {source: marker in shown for source, marker in markers.items()}


def run(method: str, resources: Resources, name: str, docs: list, folder: Path, seed: int) -> dict:
    written = Summarizer(
        resources.knowledge,
        resources.embedder,
        method=method,
        model=lambda: resources.chat_model(repetition_penalty=1.0, max_new_tokens=120),
        model_name=resources.settings.model,
    )
    markers = {source: marker for source, marker, _ in docs}
    started = time.perf_counter()
    first = written.summarise(name)
    first_s = time.perf_counter() - started
    covered = coverage(first, markers)
    by_place: dict[str, list[bool]] = {}
    for source, _, where in docs:
        by_place.setdefault(where, []).append(covered[source])
    log(f"{method}: first summary {first_s:.1f} s, coverage {sum(covered.values())}/{len(docs)}")

    # Change one document (a new fact planted into its original text) and summarise again.
    rng = random.Random(seed + 1)
    source = docs[len(docs) // 2][0]
    original = (folder / "originals" / source).read_text()
    changed, marker, _ = plant(source.removesuffix(".txt"), original, rng)
    resources.knowledge.ingest(name, [write(folder, source, changed)])
    started = time.perf_counter()
    second = written.summarise(name)
    second_s = time.perf_counter() - started
    markers[source] = marker
    log(f"{method}: after one change {second_s:.2f} s, {second.summarised} summarised again")
    return {
        "method": method,
        "documents": len(docs),
        "coverage": round(sum(covered.values()) / len(docs), 3),
        "coverage_by_place": {k: f"{sum(v)}/{len(v)}" for k, v in sorted(by_place.items())},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=24)
    parser.add_argument("--chars", type=int, default=2500)
    parser.add_argument("--methods", default="extract,model")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="kbot-bench-summaries-"))
    resources = Resources(load_settings(home=home)).load()
    folder = home / "docs"
    (folder / "originals").mkdir(parents=True)
    rng = random.Random(args.seed)
    docs, planted_texts = [], {}
    for title, text in articles(args.documents, args.chars, args.seed):
        source = f"{title}.txt"
        (folder / "originals" / source).write_text(text)
        planted_texts[source], marker, where = plant(title, text, rng)
        docs.append((source, marker, where))
    chunks = 0
    rows = []
    for method in args.methods.split(","):
        name = f"summaries-{method}"
        # The same collection for each method (the previous one changed a document).
        files = [write(folder, source, text) for source, text in planted_texts.items()]
        chunks = resources.knowledge.ingest(name, files).chunks_added
        rows.append(run(method, resources, name, docs, folder, args.seed))

    print(f"\n{args.documents} documents ({chunks} chunks), one key fact planted in each\n")
    head = f"{'method':8} {'coverage':>9} {'first s':>8} {'after change s':>15} {'ratio':>6}"
    print(head + f"  {'map s':>7} {'map after':>9}  again  new fact")
    for r in rows:
        print(
            f"{r['method']:8} {r['coverage']:>9.3f} {r['first_s']:>8.1f} "
            f"{r['after_change_s']:>15.2f} {r['change_cost_ratio']:>6.3f}  "
            f"{r['map_s']:>7.2f} {r['map_after_change_s']:>9.2f}  "
            f"{r['summarised_again']:>5}  {r['changed_fact_covered']}"
        )
    out = ROOT / "bench" / "results" / "summaries.json"
    out.write_text(
        json.dumps(
            {
                "command": "python bench/summaries.py " + " ".join(sys.argv[1:]),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                "model": resources.settings.model,
                "chunks": chunks,
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
