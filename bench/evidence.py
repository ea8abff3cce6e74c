"""Which sentences the reader reads: how each way of choosing them does on the out-of-domain
suites (bench/suites.py), without generating (seconds per suite, not minutes).

For every suite and way of ranking a chunk's statements ("sentence": by the statement alone,
as before; "section-W": plus W times the question's similarity to the headings it stands
under, `SECTION_WEIGHT` in knowledge/reading.py), over the same retrieved chunks (the default
mode and top_k):
  * in_evidence: the share of answerable questions whose gold answer (every part) is in the
    sentences read (`evidence_sentences` of them, as RAG reads);
  * answerable_read: the share of answerable questions whose best sentence clears the gate
    (`min_evidence`), so that the reader is asked at all;
  * unanswerable_gated: the share of unanswerable questions the gate turns away.
Follow-ups are asked as the human rewrote them (the rewrite is measured by bench/rewrites.py).

Usage: python bench/evidence.py [--suite all] [--per-suite 100]
Writes bench/results/evidence.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import elapsed, log  # noqa: E402
from bench.reader import command_line, ingest_suites  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WAYS = {"sentence": 0.0, "section-0.25": 0.25, "section-0.5": 0.5}  # `section_weight`


def main() -> None:
    import torch

    from bench.suites import SUITES, held
    from bot.resources import Resources
    from bot.settings import load_settings
    from knowledge.reading import select_evidence

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--suite", default="all")
    parser.add_argument("--per-suite", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = list(SUITES) if args.suite == "all" else args.suite.split(",")
    suites = [SUITES[name](args.per_suite) for name in names]

    rows: dict[str, dict[str, dict[str, float]]] = {}
    info: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(home=Path(tmp) / "home")
        resources = Resources(settings).load()
        collections = ingest_suites(resources, suites, Path(tmp), info)
        for suite in suites:
            asked = [q.rewrite or q.question for q in suite.questions]
            hits = []
            for question, q in zip(asked, suite.questions, strict=True):
                collection = collections[suite.name][q.group]
                hits += resources.knowledge.search_many(
                    collection, [question], settings.top_k, settings.retrieval_mode or None
                )
            for way, weight in WAYS.items():
                read_in, read_out, found = [], [], []
                for question, q, chunks in zip(asked, suite.questions, hits, strict=True):
                    evidence = select_evidence(
                        resources.embedder,
                        question,
                        chunks,
                        settings.evidence_sentences,
                        section_weight=weight,
                    )
                    passes = bool(evidence) and evidence[0].score >= settings.min_evidence
                    if q.unanswerable:
                        read_out.append(passes)
                        continue
                    read_in.append(passes)
                    found.append(held([e.text for e in evidence], q))
                rows.setdefault(suite.name, {})[way] = {
                    "in_evidence": round(statistics.fmean(found), 3) if found else None,
                    "answerable_read": round(statistics.fmean(read_in), 3) if read_in else None,
                    "unanswerable_gated": round(1 - statistics.fmean(read_out), 3)
                    if read_out
                    else None,
                    "n": len(suite.questions),
                }
                log(f"{suite.name} {way}: {rows[suite.name][way]}")

    result = {
        "command": command_line(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "settings": {
            "top_k": settings.top_k,
            "retrieval_mode": settings.retrieval_mode,
            "evidence_sentences": settings.evidence_sentences,
            "min_evidence": settings.min_evidence,
        },
        "suites": info,
        "rows": rows,
        "seconds": round(elapsed()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "evidence.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'suite':<22}{'way':<14}{'in_evidence':>12}{'ans. read':>11}{'unans. gated':>14}")
    for suite_name, ways in rows.items():
        for way, row in ways.items():
            cells = [row["in_evidence"], row["answerable_read"], row["unanswerable_gated"]]
            shown = ["-" if c is None else f"{c:.3f}" for c in cells]
            print(f"{suite_name:<22}{way:<14}{shown[0]:>12}{shown[1]:>11}{shown[2]:>14}")


if __name__ == "__main__":
    main()
