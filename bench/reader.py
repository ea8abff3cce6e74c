"""Reading what was retrieved: sentence choice, the trained reader and "the documents do not
say", on SQuAD v1.1 dev articles that neither the reader nor anything else was trained on.

  * The collection: every paragraph (one .txt file each) of --articles dev articles, spread
    over the file (the first two, 1973_oil_crisis and Amazon_rainforest, are those of
    bench/knowledge.py's 60-question slice).
  * Answerable: --questions questions of those articles, spread evenly.
  * Unanswerable: --unanswerable questions of other dev articles, asked of the collection.
  * Look-alikes: --lookalike answerable questions with their most specific name swapped for
    a name from another article's questions ("When did OPEC raise ..." -> "When did Beyonce
    raise ..."): worded like a passage of the collection, which no longer answers them.
  * Sentence choice: the share of questions whose gold answer is in what the model reads,
    for 1, 2 and 3 sentences and whole chunks (same retrieval: top_k chunks).
  * Gate: the best evidence sentence's similarity to the question, answerable against
    unanswerable; the threshold keeping 95% of answerable questions.
  * Answers: the RAG backend through `ChatService` (as `kbot ask` and the chat), greedy, for
    each variant: EM, F1, contains gold, p50 latency, and how often it says the documents do
    not say, on both sets.

Usage: python bench/reader.py [--articles 6] [--questions 300] [--unanswerable 100]
                              [--lookalike 100] [--variants plain-2,reader-2] [--gate both]
A variant is <reader>-<sentences read>[@<leaning towards declining>]: plain (no reader),
reader (the packaged one) or a reader's folder; without @, the reader's calibrated leaning.
                              [--modes dense,hybrid] [--quick] [--record]
Writes bench/results/reader.json (reader_modes.json with --modes) and prints the tables;
--record also writes the packaged reader's figures into its metadata (`scores` in
adapters/reader/kbot_meta.json).

Out of domain: python bench/reader.py --suite all [--per-suite 100] [--variants ...]
asks the question sets of bench/suites.py (tables, privacy policies, tech docs, notices,
follow-ups, and the SQuAD dev reference; `--suite tat-qa,notices` for some), each from its
own collection of the documents its questions need plus distractors, with every variant in the
same run: EM, F1, contains, declines of answerable and of unanswerable questions, hit@k (the
answering document among the sources), p50 latency and n per suite and variant. Writes
bench/results/reader_suites.json and prints one table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections import deque
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import elapsed, log  # noqa: E402

RESULTS = ROOT / "bench" / "results"
SQUAD = ROOT.parent / "shared" / "data" / "squad-v1.1-dev"


def spread(items: list, count: int) -> list:
    return items if count >= len(items) else [items[i * len(items) // count] for i in range(count)]


def load_dev() -> tuple[list[dict], list[dict]]:
    with (SQUAD / "paragraphs.jsonl").open() as lines:
        paragraphs = [json.loads(line) for line in lines if line.strip()]
    with (SQUAD / "questions.jsonl").open() as lines:
        questions = [json.loads(line) for line in lines if line.strip()]
    return paragraphs, questions


def choose_articles(paragraphs: list[dict], count: int) -> tuple[list[str], list[str]]:
    """`count` articles (the first two, then spread over the rest) and the others."""
    titles = list(dict.fromkeys(p["title"] for p in paragraphs))
    chosen = titles[:2] + spread(titles[2:], max(0, count - 2))
    return chosen[:count], [t for t in titles if t not in chosen[:count]]


def gold_in(texts: list[str], answers: list[str]) -> bool:
    from bot.evaluation.scoring import normalize_answer

    joined = f" {normalize_answer(' '.join(texts))} "
    return any(f" {normalize_answer(a)} " in joined for a in answers if normalize_answer(a))


def record_scores(result: dict, command: str) -> None:
    """The packaged reader's own figures (variants with the reader) into its metadata."""
    from adapters.meta import META_FILE, ArtifactMeta
    from adapters.reader import PACKAGED_READER

    path = PACKAGED_READER / META_FILE
    meta = ArtifactMeta.model_validate_json(path.read_text())
    meta.scores = {
        "command": command,
        "data": "SQuAD v1.1 dev articles (never trained on)",
        "articles": len(result["articles"]),
        "answerable": result["answerable"],
        "unanswerable": result["unanswerable"],
        **{name: row for name, row in result["variants"].items() if name.startswith("reader")},
    }
    path.write_text(meta.model_dump_json(indent=1) + "\n")


def reader_setting(reader: str) -> str:
    """A variant's reader as the `reader` setting: plain, reader (packaged) or a folder."""
    return {"plain": "none", "reader": "packaged"}.get(reader, reader)


def variant_settings(variant: str) -> dict[str, Any]:
    """A variant, `<reader>-<sentences>[@<leaning>]`, as settings: the reader, how many
    sentences it reads, and how much it leans towards declining (`decline_bias`; without
    `@`, the reader's calibrated leaning, as the app uses it)."""
    reader_sentences, _, lean = variant.partition("@")
    reader, sentences = reader_sentences.rsplit("-", 1)
    return {
        "reader": reader_setting(reader),
        "evidence_sentences": int(sentences),
        "decline_bias": float(lean) if lean else None,
    }


def variant_label(variant: str) -> str:
    """A variant as results name it: a reader folder by its own name, not this machine's path."""
    reader, sentences = variant.rsplit("-", 1)
    return f"{Path(reader).name}-{sentences}"


def command_line() -> str:
    """The command as run, its variants named as results name them."""
    words = sys.argv[1:]
    return " ".join(
        ["python bench/reader.py"]
        + [
            ",".join(map(variant_label, word.split(","))) if earlier == "--variants" else word
            for earlier, word in zip(["", *words], words, strict=False)
        ]
    )


def names(question: str) -> list[str]:
    """Capitalised words after the first, the names a question is about."""
    words = [w.strip("?,.;:'\"()") for w in question.split()[1:]]
    return [w for w in words if len(w) > 2 and w[0].isupper()]


def lookalikes(answerable: list[dict], others: list[dict], count: int) -> list[dict]:
    """Answerable questions whose longest name is swapped for a name from `others`."""
    pool = sorted({name for q in others for name in names(q["question"])})
    chosen = []
    for number, q in enumerate(spread(answerable, len(answerable))):
        own = names(q["question"])
        if own and pool:
            target = max(own, key=len)
            swap = pool[(number * 7919) % len(pool)]
            chosen.append({**q, "question": q["question"].replace(target, swap, 1)})
    return spread(chosen, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=6)
    parser.add_argument("--questions", type=int, default=300)
    parser.add_argument("--unanswerable", type=int, default=100)
    parser.add_argument("--lookalike", type=int, default=100)
    parser.add_argument(
        "--variants",
        default="plain-2,reader-2",
        help="comma-separated READER-SENTENCES: reader is plain (no adapter), reader (the "
        "packaged one) or a reader adapter's folder; sentences 0-3 (0: whole chunks)",
    )
    parser.add_argument(
        "--gate", choices=["both", "off", "on"], default="both", help="variants with the gate"
    )
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--modes",
        default="",
        help="comma-separated retrieval modes to answer with, side by side (default: the "
        "setting's); writes reader_modes.json",
    )
    parser.add_argument("--quick", action="store_true", help="trial: 2 articles, 20 + 10")
    parser.add_argument(
        "--suite",
        default="",
        help="out-of-domain suites instead: 'all' or comma-separated names of bench/suites.py "
        "(writes reader_suites.json)",
    )
    parser.add_argument(
        "--per-suite", type=int, default=100, help="questions per suite, spread evenly"
    )
    parser.add_argument(
        "--record", action="store_true", help="write the reader's scores into its metadata"
    )
    parser.add_argument(
        "--model-url",
        help="answer through this model server (KBOT_MODEL_URL, e.g. `kbot model-server`) "
        "instead of the model in this process",
    )
    args = parser.parse_args()
    if args.suite:
        from bench.suites import SUITES

        wanted = list(SUITES) if args.suite == "all" else args.suite.split(",")
        unknown = [name for name in wanted if name not in SUITES]
        if unknown:
            parser.error(f"unknown suite {', '.join(unknown)}; known: all, {', '.join(SUITES)}")
        run_suites(wanted, args)
        return
    if args.quick:
        args.articles, args.questions, args.unanswerable, args.lookalike = 2, 20, 10, 10

    import torch

    from bot.evaluation.scoring import answer_scores
    from bot.resources import Resources
    from bot.service import ChatService
    from bot.settings import load_settings
    from knowledge.reading import NOT_IN_DOCUMENTS, select_evidence

    torch.set_num_threads(args.threads)
    paragraphs, questions = load_dev()
    inside, outside = choose_articles(paragraphs, args.articles)
    answerable = spread([q for q in questions if q["title"] in inside], args.questions)
    unanswerable = spread([q for q in questions if q["title"] in outside], args.unanswerable)
    lookalike = lookalikes(
        answerable, [q for q in questions if q["title"] in outside], args.lookalike
    )
    log(
        f"{len(inside)} articles, {len(answerable)} answerable, {len(unanswerable)} not, "
        f"{len(lookalike)} look-alikes"
    )

    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings(
            home=Path(tmp) / "home", max_new_tokens=32, temperature=0.0, model_url=args.model_url
        )
        resources = Resources(base).load()
        folder = Path(tmp) / "docs"
        folder.mkdir()
        for p in paragraphs:
            if p["title"] in inside:
                (folder / f"{p['id']}.txt").write_text(p["text"] + "\n")
        ingest = resources.knowledge.ingest("dev", sorted(folder.iterdir()))
        assert not ingest.errors, ingest.errors[:1]
        log(f"ingested {ingest.chunks_added} chunks")

        # Sentence choice and the gate's signal: embedding only, with the first mode.
        modes = args.modes.split(",") if args.modes else [base.retrieval_mode]
        hits = {
            q["id"]: h
            for q, h in zip(
                answerable + unanswerable,
                resources.knowledge.search_many(
                    "dev", [q["question"] for q in answerable + unanswerable], base.top_k, modes[0]
                ),
                strict=True,
            )
        }
        choice = {}
        for count in (1, 2, 3, 0):
            held = [
                gold_in(
                    [
                        e.text
                        for e in select_evidence(
                            resources.embedder, q["question"], hits[q["id"]], count
                        )
                    ],
                    q["answers"],
                )
                for q in answerable
            ]
            choice["whole chunks" if count == 0 else f"{count} sentences"] = round(
                statistics.fmean(held), 3
            )
        top = {
            q["id"]: (
                select_evidence(resources.embedder, q["question"], hits[q["id"]], 1) or [None]
            )[0]
            for q in answerable + unanswerable
        }
        scores_in = sorted(top[q["id"]].score for q in answerable if top[q["id"]])
        scores_out = sorted(top[q["id"]].score for q in unanswerable if top[q["id"]])
        threshold = scores_in[int(0.05 * len(scores_in))]
        gate = {
            "threshold_keeping_95pct_answerable": round(threshold, 4),
            "unanswerable_below": round(statistics.fmean(s < threshold for s in scores_out), 3),
            "answerable_median": round(statistics.median(scores_in), 4),
            "unanswerable_median": round(statistics.median(scores_out), 4),
        }
        log(f"sentence choice {choice}; gate {gate}")

        service = ChatService(resources)
        variants = {}
        runs = [
            (variant, gated, mode)
            for variant in args.variants.split(",")
            for gated in {"both": (False, True), "off": (False,), "on": (True,)}[args.gate]
            for mode in modes
        ]
        for variant, gated, mode in runs:
            label = variant_label(variant)
            name = f"{label}{' +gate' if gated else ''}{f' {mode}' if args.modes else ''}"
            resources.settings = base.model_copy(
                update={
                    **variant_settings(variant),
                    "min_evidence": threshold if gated else -1.0,
                }
            )
            for setting in ("reader", "decline_bias"):
                resources.__dict__.pop(setting, None)  # re-read the settings
            rows: dict[str, list] = {"answerable": [], "unanswerable": [], "lookalike": []}
            latencies = []
            for label, asked in (
                ("answerable", answerable),
                ("unanswerable", unanswerable),
                ("lookalike", lookalike),
            ):
                for q in asked:
                    started = time.perf_counter()
                    reply = deque(
                        service.reply(
                            q["question"],
                            backend="rag",
                            options={"collection": "dev", "mode": mode},
                        ),
                        maxlen=1,
                    )[0]
                    if label != "lookalike":  # the same questions, reworded
                        latencies.append(time.perf_counter() - started)
                    said_no = reply.answer.strip() == NOT_IN_DOCUMENTS
                    rows[label].append({**answer_scores(reply.answer, q["answers"]), "no": said_no})
            a, u = rows["answerable"], rows["unanswerable"]
            variants[name] = {
                "em": round(statistics.fmean(r["em"] for r in a), 3),
                "f1": round(statistics.fmean(r["f1"] for r in a), 3),
                "contains": round(statistics.fmean(r["contains"] for r in a), 3),
                "answerable_said_not": round(statistics.fmean(r["no"] for r in a), 3),
                "unanswerable_said_not": round(statistics.fmean(r["no"] for r in u), 3),
                "lookalike_said_not": round(
                    statistics.fmean(r["no"] for r in rows["lookalike"]), 3
                ),
                "latency_p50_s": round(statistics.median(latencies), 2),
            }
            log(f"{name}: {variants[name]}")

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "threads": args.threads,
        "retrieval_modes": modes,
        "articles": inside,
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "lookalike": len(lookalike),
        "lookalike_examples": [q["question"] for q in lookalike[:5]],
        "sentence_choice_gold_held": choice,
        "gate": gate,
        "variants": variants,
        "seconds": round(elapsed()),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    name = (
        "reader_quick.json" if args.quick else "reader_modes.json" if args.modes else "reader.json"
    )
    (RESULTS / name).write_text(json.dumps(result, indent=1) + "\n")
    if args.record:
        record_scores(result, command_line())
    print(json.dumps(result, indent=1))


def suite_row(rows: list[dict], latencies: list[float], seconds: float) -> dict:
    """One suite and variant: answer scores over the answerable questions, declines of both
    kinds, how often the answering document was retrieved, p50 latency."""

    def mean(values: list) -> float | None:
        return round(statistics.fmean(values), 3) if values else None

    answerable = [r for r in rows if not r["unanswerable"]]
    unanswerable = [r for r in rows if r["unanswerable"]]
    return {
        "n": len(answerable),
        "n_unanswerable": len(unanswerable),
        "em": mean([r["em"] for r in answerable]),
        "f1": mean([r["f1"] for r in answerable]),
        "contains": mean([r["contains"] for r in answerable]),
        "answerable_said_not": mean([r["no"] for r in answerable]),
        # Declining what it read no answer in is right; declining what it read is not.
        "read_said_not": mean([r["no"] for r in answerable if r["in_evidence"]]),
        "unanswerable_said_not": mean([r["no"] for r in unanswerable]),
        "hit_at_k": mean([r["hit"] for r in answerable if r["hit"] is not None]),
        "gold_in_chunks": mean([r["in_chunks"] for r in answerable]),
        "gold_in_evidence": mean([r["in_evidence"] for r in answerable]),
        "latency_p50_s": round(statistics.median(latencies), 2) if latencies else None,
        "seconds": round(seconds, 1),
        "misses": [
            {key: r[key] for key in ("question", "gold", "reply")}
            for r in answerable
            if r["f1"] < 0.5
        ][:5]
        + [{key: r[key] for key in ("question", "reply")} for r in unanswerable if not r["no"]][:3],
    }


def print_suite_table(result: dict) -> None:
    def cell(value: object) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    k = result["settings"]["top_k"]
    head = [
        "suite",
        "variant",
        "n",
        "n unans",
        "EM",
        "F1",
        "contains",
        "declined ans",
        "declined ans read",
        "declined unans",
        f"hit@{k}",
        "gold in chunks",
        "gold in evidence",
        "p50 s",
    ]
    keys = [
        "n",
        "n_unanswerable",
        "em",
        "f1",
        "contains",
        "answerable_said_not",
        "read_said_not",
        "unanswerable_said_not",
        "hit_at_k",
        "gold_in_chunks",
        "gold_in_evidence",
        "latency_p50_s",
    ]
    lines = [
        [row_name, variant, *(cell(figures[key]) for key in keys)]
        for row_name, by_variant in result["rows"].items()
        for variant, figures in by_variant.items()
    ]
    widths = [max(len(str(x)) for x in column) for column in zip(head, *lines, strict=True)]
    for line in [head, ["-" * w for w in widths], *lines]:
        print("  ".join(str(x).ljust(w) for x, w in zip(line, widths, strict=True)))


def ingest_suites(
    resources: Any, suites: list, tmp: Path, info: dict[str, dict], save: Any = None
) -> dict[str, dict[str, str]]:
    """Each suite's documents ingested into its collections (one per group): the collection
    of each suite's groups, by suite name; `info` gets each suite's figures."""
    collections: dict[str, dict[str, str]] = {}
    for suite in suites:
        started = time.perf_counter()
        groups = sorted(set(suite.groups.values())) or [""]
        collections[suite.name] = {
            group: f"{suite.name}-{number}" for number, group in enumerate(groups)
        }
        chunks = 0
        for group, collection in collections[suite.name].items():
            folder = tmp / "docs" / collection
            folder.mkdir(parents=True)
            files = []
            for name, text in suite.documents:
                if suite.groups.get(name, "") == group:
                    (folder / name).write_text(text, encoding="utf-8")
                    files.append((folder / name, name))
            ingest = resources.knowledge.ingest(collection, files)
            assert not ingest.errors, ingest.errors[:1]
            chunks += ingest.chunks_added
        unanswerable = sum(q.unanswerable for q in suite.questions)
        info[suite.name] = {
            "split": suite.split,
            "notes": suite.notes,
            "documents": len(suite.documents),
            "characters": suite.characters,
            "collections": len(collections[suite.name]),
            "chunks": chunks,
            "answerable": len(suite.questions) - unanswerable,
            "unanswerable": unanswerable,
            "ingest_s": round(time.perf_counter() - started, 1),
        }
        log(f"{suite.name}: {info[suite.name]}")
        if save:
            save()
    return collections


def run_suites(names: list[str], args: argparse.Namespace) -> None:
    """Every variant on every suite of `names`, `args.per_suite` questions each."""
    import torch

    from bench.suites import SUITES, held, score
    from bot.evaluation.scoring import same_source
    from bot.resources import Resources
    from bot.service import ChatService
    from bot.settings import load_settings
    from knowledge.reading import NOT_IN_DOCUMENTS

    torch.set_num_threads(args.threads)
    suites = [SUITES[name](args.per_suite) for name in names]
    for suite in suites:
        files = [name for name, _ in suite.documents]
        assert len(set(files)) == len(files), f"{suite.name}: two documents of one name"
    info: dict[str, dict] = {}
    rows: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = load_settings(
            home=Path(tmp) / "home", max_new_tokens=32, temperature=0.0, model_url=args.model_url
        )
        resources = Resources(base).load()
        service = ChatService(resources)
        result = {
            "command": command_line(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
            "threads": args.threads,
            "engine": "model server (llama.cpp)" if args.model_url else "in-process",
            "per_suite": args.per_suite,
            "variants": [variant_label(v) for v in args.variants.split(",")],
            "settings": {
                "retrieval_mode": base.retrieval_mode,
                "top_k": base.top_k,
                "min_evidence": base.min_evidence,
                "max_new_tokens": 32,
                "temperature": 0.0,
            },
            "scoring": "SQuAD EM and token F1 (best over the gold answers) and 'contains' over the "
            "answerable questions; multi-part answers need every part (bench/suites.py score); a "
            "decline is a reply of exactly 'The documents do not say.'; hit_at_k: the answering "
            "document among the sources of the reply; gold_in_chunks / gold_in_evidence: a gold "
            "answer (every part) in the retrieved chunks / in the sentences the reader reads",
            "suites": info,
            "rows": rows,
            "complete": False,
        }

        def save(complete: bool = False) -> None:
            """Write what is measured so far, so that a long run that stops keeps its rows."""
            result.update(complete=complete, seconds=round(elapsed()))
            RESULTS.mkdir(parents=True, exist_ok=True)
            (RESULTS / "reader_suites.json").write_text(json.dumps(result, indent=1) + "\n")

        collections = ingest_suites(resources, suites, Path(tmp), info, save)

        for variant in args.variants.split(","):
            resources.settings = base.model_copy(update=variant_settings(variant))
            for setting in ("reader", "decline_bias"):
                resources.__dict__.pop(setting, None)  # re-read the settings
            for suite in suites:
                # Follow-ups are asked as they came, after their conversation, and as the
                # human rewrote them, alone.
                asks = [("", False)] + (
                    [(" (rewrite)", True)] if any(q.rewrite for q in suite.questions) else []
                )
                for label, rewritten in asks:
                    started = time.perf_counter()
                    results, latencies = [], []
                    for q in suite.questions:
                        asked = time.perf_counter()
                        reply = deque(
                            service.reply(
                                q.rewrite if rewritten else q.question,
                                history=[] if rewritten else q.history,
                                backend="rag",
                                options={"collection": collections[suite.name][q.group]},
                            ),
                            maxlen=1,
                        )[0]
                        latencies.append(time.perf_counter() - asked)
                        figures = (
                            score(reply.answer, q)
                            if not q.unanswerable
                            else {"em": 0.0, "f1": 0.0, "contains": 0.0}
                        )
                        results.append(
                            {
                                **figures,
                                "unanswerable": q.unanswerable,
                                "no": reply.answer.strip() == NOT_IN_DOCUMENTS,
                                "hit": any(
                                    same_source(q.source, s["source"]) for s in reply.sources
                                )
                                if q.source
                                else None,
                                "in_chunks": held([s["text"] for s in reply.sources], q)
                                if not q.unanswerable
                                else None,
                                "in_evidence": held([e["text"] for e in reply.evidence], q)
                                if not q.unanswerable
                                else None,
                                "question": q.rewrite if rewritten else q.question,
                                "gold": q.parts or q.answers,
                                "reply": reply.answer,
                            }
                        )
                    row = suite_row(results, latencies, time.perf_counter() - started)
                    rows.setdefault(suite.name + label, {})[variant_label(variant)] = row
                    save()
                    log(
                        f"{suite.name}{label} {variant_label(variant)}: "
                        f"{ {k: v for k, v in row.items() if k != 'misses'} }"
                    )

    save(complete=True)
    print_suite_table(result)


if __name__ == "__main__":
    main()
