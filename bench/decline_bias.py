"""Calibrate how much a reader leans towards "The documents do not say." on held-out training
records (never on the questions the reader bench evaluates).

For each record (a question put as RAG puts it, its target an answer found in the evidence or
the decline) one forward pass gives the margin by which greedy decoding prefers the decline;
a leaning `b` makes the reader decline exactly where `b` + margin > 0. The calibrated leaning
is the largest that declines at most --most-declined of the records whose evidence holds the
answer, in each set of documents (templates, tables, ...) with enough such records.

Usage: python bench/decline_bias.py --records CALIBRATION.jsonl [--reader FOLDER ...]
           [--most-declined 0.05] [--write]
CALIBRATION.jsonl: `bench/reader_data.py` writes it beside the mix (records held out of it).
Prints, per reader, the share declined of both kinds of record without leaning and at the
calibrated leaning; writes bench/results/decline_bias.json; --write also stores
`decline_bias` (and how it was found) in each reader's kbot_meta.json, which RAG then uses.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from adapters.meta import META_FILE  # noqa: E402
from adapters.reader import (  # noqa: E402
    PACKAGED_READER,
    calibrate_decline_bias,
    decline_margins,
    declined_share,
)
from bench.common import log  # noqa: E402
from common.files import write_atomically  # noqa: E402
from knowledge.reading import READER_SYSTEM  # noqa: E402

LEANINGS = (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0)


def reading_records(path: Path) -> list[dict]:
    """The records of `path` that ask the reader (not the rewrites of follow-ups)."""
    records = [json.loads(line) for line in path.open(encoding="utf-8")]
    return [r for r in records if r["messages"][0]["content"] == READER_SYSTEM]


def label(folder: Path) -> str:
    """A reader folder as results name it: within the project, else its last two parts."""
    folder = folder.resolve()
    kept = folder.relative_to(ROOT) if folder.is_relative_to(ROOT) else Path(*folder.parts[-2:])
    return str(kept)


def calibrate(folder: Path, records: list[dict], most_declined: float) -> dict:
    from bot.resources import Resources
    from bot.settings import load_settings

    resources = Resources(load_settings())
    loaded = resources.engine.model
    adapter = loaded.add_adapter(folder)
    margins = decline_margins(loaded, adapter, records)
    groups = [r.get("set", "") for r in records]
    bias = calibrate_decline_bias(margins, most_declined, groups)
    by_set: dict[str, list[tuple[bool, float]]] = {}
    for group, found in zip(groups, margins, strict=True):
        by_set.setdefault(group, []).append(found)
    alone = {
        group: {
            "answers": sum(not declines for declines, _ in found),
            "declines": sum(declines for declines, _ in found),
            "calibrated_alone": calibrate_decline_bias(found, most_declined)
            if not all(declines for declines, _ in found)
            else None,
        }
        for group, found in sorted(by_set.items())
    }
    shares = {
        f"{lean:+.2f}": {
            "declined_answer": round(declined_share(margins, lean, declines=False), 3),
            "declined_decline": round(declined_share(margins, lean, declines=True), 3),
        }
        for lean in sorted({*LEANINGS, bias})
    }
    return {
        "reader": label(folder),
        "records": len(margins),
        "answers": sum(not declines for declines, _ in margins),
        "declines": sum(declines for declines, _ in margins),
        "most_declined": most_declined,
        "decline_bias": bias,
        "by_set": alone,
        "shares": shares,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=Path, required=True)
    parser.add_argument("--reader", type=Path, action="append")
    parser.add_argument("--most-declined", type=float, default=0.05)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    records = reading_records(args.records)
    results = []
    for folder in args.reader or [PACKAGED_READER]:
        log(f"{folder}: {len(records)} records")
        found = calibrate(folder, records, args.most_declined)
        results.append(found)
        print(f"\n{folder} ({found['answers']} answers, {found['declines']} declines)")
        print("| leaning | declined, evidence holds the answer | declined, target declines |")
        print("|---|---|---|")
        for lean, share in found["shares"].items():
            mark = " (calibrated)" if float(lean) == found["decline_bias"] else ""
            print(
                f"| {lean}{mark} | {share['declined_answer']:.3f} | "
                f"{share['declined_decline']:.3f} |"
            )
        if args.write:
            meta_file = folder / META_FILE
            meta = json.loads(meta_file.read_text())
            meta["decline_bias"] = found["decline_bias"]
            meta["decline_calibration"] = {
                "command": " ".join(["python bench/decline_bias.py", *sys.argv[1:]]),
                **{k: v for k, v in found.items() if k != "reader"},
            }
            write_atomically(meta_file, json.dumps(meta, indent=1) + "\n")
    out = ROOT / "bench" / "results" / "decline_bias.json"
    command = " ".join(["python bench/decline_bias.py", *sys.argv[1:]])
    summary = {"command": command, "records": label(args.records), "readers": results}
    write_atomically(out, json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
