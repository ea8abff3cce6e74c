"""Follow-ups that stand alone: what retrieval finds for a follow-up question, searched as the
app rewrites it against as a person rewrote it (TREC CAsT's manual rewrite) and as it was
asked (the raw question alone).

TREC CAsT 2021 and 2022 (shared/data/trec-cast-rewrites; never trained on) give each turn's
answer passage. The collection is every answer passage of those years, one file each; a turn
counts as found when its own passage is among the top_k chunks retrieved (hit@k, the app's
default mode and k). Follow-ups only: turns after the first whose manual rewrite differs from
the question. The app's rewrite is `RagBackend.searched_question` (the reader adapter, or the
plain model with --readers plain: the default rewriter, setting `rewriter`), with its fallback,
given the turn's conversation.

Usage: python bench/rewrites.py [--n 120] [--readers reader,plain,FOLDER] [--threads 2]
(--readers "": the raw and human rows only)
Writes bench/results/rewrites.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.reader import reader_setting  # noqa: E402
from bench.suites import DATA, jsonl, spread  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def turns() -> list[dict]:
    rows = jsonl(DATA / "trec-cast-rewrites" / "rewrites.jsonl")
    return [r for r in rows if r["source"] in ("cast2021", "cast2022") and r["answer"]]


def main() -> None:
    import torch
    from langchain_core.messages import convert_to_messages

    from bot.backends.rag import RagBackend
    from bot.resources import Resources
    from bot.settings import load_settings

    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--n", type=int, default=120)
    parser.add_argument("--readers", default="reader,plain")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = turns()
    follow = [r for r in rows if r["history"] and r["rewrite"].strip() != r["question"].strip()]
    chosen = spread(follow, args.n)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "passages"
        folder.mkdir()
        files = []
        for r in rows:
            path = folder / f"{r['id']}.txt"
            path.write_text(r["answer"] + "\n", encoding="utf-8")
            files.append(path)
        base = load_settings(home=Path(tmp) / "home", temperature=0.0, max_new_tokens=48)
        resources = Resources(base).load()
        ingest = resources.knowledge.ingest("cast", files)
        assert not ingest.errors, ingest.errors[:1]
        k = base.top_k

        def found(query: str, turn: dict) -> bool:
            hits = resources.knowledge.search("cast", query, k)
            return any(Path(h.source).name == f"{turn['id']}.txt" for h in hits)

        def share(values: list[bool]) -> float:
            return round(sum(values) / len(values), 3)

        table: dict[str, dict] = {
            "raw question": {"hit_at_k": share([found(r["question"], r) for r in chosen])},
            "human rewrite": {"hit_at_k": share([found(r["rewrite"], r) for r in chosen])},
        }
        examples: dict[str, list] = {}
        for reader in filter(None, args.readers.split(",")):
            resources.settings = base.model_copy(
                update={"reader": reader_setting(reader), "rewriter": "reader"}
            )
            resources.__dict__.pop("reader", None)  # re-read the setting
            rewrite = RagBackend().searched_question(resources)
            hits, seconds, searched = [], [], []
            for r in chosen:
                history = convert_to_messages([(t["role"], t["text"]) for t in r["history"]])
                asked = time.perf_counter()
                query = rewrite.invoke({"question": r["question"], "history": history}).search
                seconds.append(time.perf_counter() - asked)
                hits.append(found(query, r))
                searched.append(query)
            seconds.sort()
            table[f"app rewrite ({reader})"] = {
                "hit_at_k": share(hits),
                "rewrite_p50_s": round(seconds[len(seconds) // 2], 2),
            }
            examples[reader] = [
                {"question": r["question"], "human": r["rewrite"], "searched": s, "hit": h}
                for r, s, h in list(zip(chosen, searched, hits, strict=True))[:12]
            ]
            print(f"{reader}: {table[f'app rewrite ({reader})']}", flush=True)

    result = {
        "command": " ".join(["python bench/rewrites.py", *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "data": "TREC CAsT 2021+2022 turns with an answer passage (evaluation only): "
        f"{len(rows)} passages in the collection, {len(chosen)} follow-ups asked",
        "k": k,
        "retrieval_mode": base.retrieval_mode,
        "rows": table,
        "examples": examples,
        "seconds": round(time.perf_counter() - started),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "rewrites.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'searched as':<32} {'hit@' + str(k):>7} {'p50 s':>7}")
    for name, row in table.items():
        print(f"{name:<32} {row['hit_at_k']:>7.3f} {row.get('rewrite_p50_s', ''):>7}")


if __name__ == "__main__":
    main()
