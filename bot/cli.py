"""`kbot`: the command line. Every command reads the same typed settings (env + flags)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.settings import Settings, load_settings


def _settings_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    group = flags.add_argument_group("settings (override KBOT_* environment variables)")
    group.add_argument("--home", help="data folder (KBOT_HOME)")
    group.add_argument("--model", help="base model: packaged default, HF id or folder")
    group.add_argument("--system-prompt")
    group.add_argument("--max-new-tokens", type=int)
    group.add_argument("--temperature", type=float, help="0 = greedy")
    group.add_argument("--top-p", type=float)
    return flags


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    return load_settings(
        home=args.home,
        model=args.model,
        system_prompt=args.system_prompt,
        max_new_tokens=args.max_new_tokens,
        temperature=args.temperature,
        top_p=args.top_p,
        **extra,
    )


def _parse_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def cmd_ask(args: argparse.Namespace) -> int:
    """Print the answer as it is generated, or one JSON object at the end with `--json`."""
    from bot.backends import default_registry
    from bot.serve import create_service

    default_registry().get(args.backend)  # an unknown backend fails before the model loads
    service = create_service(_settings(args))
    printed = 0
    reply = None
    options = dict(args.option or [])
    for option in ("collection", "adapter", "checkpoint"):
        if getattr(args, option):
            options[option] = getattr(args, option)
    for reply in service.reply(args.question, backend=args.backend, options=options):
        if args.json:
            continue
        text = reply.answer
        sys.stdout.write(text[printed:])
        sys.stdout.flush()
        printed = len(text)
    assert reply is not None
    if args.json:
        print(json.dumps(reply.as_json(), ensure_ascii=False))
    else:
        print()
    return 0


def _knowledge(args: argparse.Namespace):
    from bot.resources import Resources

    return Resources(_settings(args)).knowledge


def _progress_bar(enabled: bool):
    """A tqdm bar on stderr for long ingestions (stdout stays clean for --json)."""
    if not enabled:
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", file=sys.stderr, leave=False, bar_format="{l_bar}{bar}")

    def update(fraction: float, label: str) -> None:
        bar.set_description(label[:40])
        bar.n = int(fraction * 1000)
        bar.refresh()

    return update, bar.close


def cmd_ingest(args: argparse.Namespace) -> int:
    from knowledge.base import expand_paths

    knowledge = _knowledge(args)
    update, close = _progress_bar(sys.stderr.isatty())
    result = knowledge.ingest(args.collection, expand_paths(args.paths), update)
    close()
    if args.json:
        print(json.dumps(result.as_json(), ensure_ascii=False))
    else:
        print(
            f"{result.collection}: {result.files} files, {result.chunks_added} chunks added, "
            f"{result.chunks_unchanged} unchanged, {result.chunks_removed} removed"
        )
        for error in result.errors:
            print(f"  error: {error['error']}", file=sys.stderr)
    return 1 if result.errors else 0


def cmd_collections(args: argparse.Namespace) -> int:
    knowledge = _knowledge(args)
    rows = [
        {
            "collection": name,
            "documents": len(docs := knowledge.documents(name)),
            "chunks": sum(d["chunks"] for d in docs),
        }
        for name in knowledge.collections()
    ]
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
    else:
        for row in rows:
            print(f"{row['collection']}\t{row['documents']} documents\t{row['chunks']} chunks")
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    removed = _knowledge(args).forget(args.collection, args.source)
    print(f"removed {args.source} ({removed} chunks) from {args.collection}")
    return 0


def _read_queries(path: str) -> list[dict[str, Any]]:
    queries = []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
            queries.append({"id": item["id"], "text": str(item["text"])})
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise ValueError(f'{path}, line {number}: expected {{"id", "text"}}: {error}') from None
    return queries


def cmd_retrieve(args: argparse.Namespace) -> int:
    knowledge = _knowledge(args)
    if args.queries:
        queries = _read_queries(args.queries)
        batch = 256  # embed many queries at once: thousands run in one process
        for start in range(0, len(queries), batch):
            chunk = queries[start : start + batch]
            vectors = knowledge.embed_queries([q["text"] for q in chunk])
            for query, vector in zip(chunk, vectors, strict=True):
                hits = knowledge.search_vector(args.collection, vector, args.k)
                line = {"id": query["id"], "results": [h.as_json() for h in hits]}
                print(json.dumps(line, ensure_ascii=False))
        return 0
    if not args.query:
        raise ValueError("give a QUERY or --queries FILE.jsonl")
    hits = knowledge.search(args.collection, args.query, args.k)
    if args.json:
        print(json.dumps([h.as_json() for h in hits], ensure_ascii=False))
    else:
        for number, hit in enumerate(hits, start=1):
            where = f"{hit.source}" + (f" ({hit.location})" if hit.location else "")
            print(f"[{number}] {hit.score:.3f} {where}\n    {' '.join(hit.text.split())[:200]}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from adapters.train import TrainConfig
    from bot.resources import Resources
    from bot.training import run_training, training_data

    resources = Resources(_settings(args))
    config = TrainConfig(
        method=args.method,
        name=args.name,
        max_steps=args.max_steps,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        lora_r=args.rank,
        lora_alpha=args.alpha or 2 * args.rank,
        lora_targets=args.targets,
        overwrite=args.overwrite,
        resume=args.resume,
    )
    resources.artifacts.check_free(config.name, config.overwrite)  # fail before loading data
    data = training_data(resources, args.data, args.collection)
    update, close = _progress_bar(sys.stderr.isatty())
    result = run_training(resources, config, data, update)
    close()
    meta = {"name": config.name, "status": result.status, **result.meta}
    if args.json:
        print(json.dumps({k: v for k, v in meta.items() if k != "loss_history"}))
    else:
        print(
            f"{config.name}: {config.method}, {meta['steps']} steps in {meta['train_seconds']} s, "
            f"final loss {meta['final_train_loss']}, {meta['trainable_params']:,} of "
            f"{meta['total_params']:,} parameters trained, {meta['file_bytes'] / 1e6:.1f} MB "
            f"saved to {result.path}"
        )
    return 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from bot.resources import Resources

    artifacts = Resources(_settings(args)).artifacts
    if args.delete:
        artifacts.delete(args.delete)
        print(f"deleted {args.delete}")
        return 0
    rows = [{k: v for k, v in meta.items() if k != "loss_history"} for meta in artifacts.all()]
    if args.json:
        print(json.dumps(rows))
    else:
        for row in rows:
            print(
                f"{row['name']}\t{row['method']}\t{row['file_bytes'] / 1e6:.1f} MB\t"
                f"{row['trainable_params']:,} trained\tloss {row['final_train_loss']}\t"
                f"{row['created_at']}"
            )
    return 0


def cmd_qa(args: argparse.Namespace) -> int:
    """Write question/answer pairs from a collection's chunks, to edit, train on or eval."""
    from bot.resources import Resources
    from bot.training import generate_questions

    resources = Resources(_settings(args))
    update, close = _progress_bar(sys.stderr.isatty())
    path, pairs = generate_questions(
        resources, args.collection, args.per_chunk, args.max_chunks, update
    )
    close()
    if args.json:
        print(json.dumps({"path": str(path), "pairs": len(pairs)}))
    else:
        print(f"{len(pairs)} question/answer pairs written to {path}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score every backend on one question set; print a table, or JSON with `--json`."""
    from bot.evaluation.questions import load_questions
    from bot.evaluation.report import text_table, write_report
    from bot.evaluation.runner import compare
    from bot.serve import create_service

    settings = _settings(args)
    questions = load_questions(args.questions, int(settings.max_file_mb * 1_000_000))
    specs = [spec for spec in args.backends.split(",") if spec.strip()]
    service = create_service(settings)
    update, close = _progress_bar(sys.stderr.isatty())
    comparison = compare(service, questions, specs, update)
    close()
    if args.report:
        write_report(comparison, args.report)
    if args.json:
        print(json.dumps(comparison.as_json(), ensure_ascii=False))
        return 0
    print(text_table(comparison))
    if args.report:
        print(f"report: {args.report}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve

    serve(_settings(args, host=args.host, port=args.port, share=args.share or None))
    return 0


def build_parser() -> argparse.ArgumentParser:
    settings = _settings_flags()
    parser = argparse.ArgumentParser(prog="kbot", description="Knowledge Bot")
    commands = parser.add_subparsers(dest="command", required=True)

    ask = commands.add_parser("ask", parents=[settings], help="answer one question")
    ask.add_argument("question")
    ask.add_argument("--backend", default="base")
    ask.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        metavar="KEY=VALUE",
        help="a backend option (repeatable)",
    )
    ask.add_argument("--collection", help="knowledge collection (rag backends)")
    ask.add_argument("--adapter", help="LoRA adapter (lora backends)")
    ask.add_argument("--checkpoint", help="fully fine-tuned checkpoint (full backend)")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(run=cmd_ask)

    ingest = commands.add_parser("ingest", parents=[settings], help="add files to a collection")
    ingest.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders")
    ingest.add_argument("--collection", required=True)
    ingest.add_argument("--json", action="store_true")
    ingest.set_defaults(run=cmd_ingest)

    collections = commands.add_parser("collections", parents=[settings], help="list collections")
    collections.add_argument("--json", action="store_true")
    collections.set_defaults(run=cmd_collections)

    forget = commands.add_parser("forget", parents=[settings], help="remove a source")
    forget.add_argument("--collection", required=True)
    forget.add_argument("--source", required=True, help="the file's path, as ingested")
    forget.set_defaults(run=cmd_forget)

    retrieve = commands.add_parser("retrieve", parents=[settings], help="nearest chunks")
    retrieve.add_argument("query", nargs="?")
    retrieve.add_argument("--queries", metavar="FILE.jsonl", help='lines {"id", "text"}')
    retrieve.add_argument("--collection", required=True)
    retrieve.add_argument("-k", type=int, default=5)
    retrieve.add_argument("--json", action="store_true")
    retrieve.set_defaults(run=cmd_retrieve)

    train = commands.add_parser("train", parents=[settings], help="train LoRA or full")
    train.add_argument("--method", choices=["lora", "full"], required=True)
    train.add_argument("--data", type=Path, nargs="+", help="Q/A .jsonl and/or documents")
    train.add_argument("--collection", help="train on a knowledge collection's documents")
    train.add_argument("--name", required=True)
    train.add_argument("--max-steps", type=int)
    train.add_argument("--epochs", type=float, default=3.0)
    train.add_argument("--lr", type=float, help="default 1e-3 (lora), 5e-5 (full)")
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--rank", type=int, default=16, help="LoRA rank")
    train.add_argument("--alpha", type=int, help="LoRA alpha (default 2 x rank)")
    train.add_argument("--targets", default="all-linear", help="LoRA target modules")
    train.add_argument("--overwrite", action="store_true")
    train.add_argument("--resume", action="store_true", help="continue from the last checkpoint")
    train.add_argument("--json", action="store_true")
    train.set_defaults(run=cmd_train)

    adapters = commands.add_parser("adapters", parents=[settings], help="trained artifacts")
    adapters.add_argument("--delete", metavar="NAME")
    adapters.add_argument("--json", action="store_true")
    adapters.set_defaults(run=cmd_adapters)

    qa = commands.add_parser(
        "qa", parents=[settings], help="write Q/A pairs from a collection's documents"
    )
    qa.add_argument("--collection", required=True)
    qa.add_argument("--per-chunk", type=int, default=2, help="pairs per chunk, at most")
    qa.add_argument("--max-chunks", type=int, default=100, help="chunks used, spread evenly")
    qa.add_argument("--json", action="store_true", help='print {"path", "pairs"}')
    qa.set_defaults(run=cmd_qa)

    evaluate = commands.add_parser(
        "eval", parents=[settings], help="compare backends on a question set"
    )
    evaluate.add_argument(
        "--questions",
        type=Path,
        required=True,
        metavar="FILE.jsonl",
        help='lines {"question", "answer" or "answers": [...], "source" (optional)}',
    )
    evaluate.add_argument(
        "--backends",
        required=True,
        help="comma-separated: base,rag:COLLECTION,lora:ADAPTER,full:CHECKPOINT,"
        "rag+lora:COLLECTION:ADAPTER",
    )
    evaluate.add_argument("--report", type=Path, metavar="PATH.html", help="write an HTML report")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(run=cmd_eval)

    serve = commands.add_parser("serve", parents=[settings], help="start the chat server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--share", action="store_true", help="also make a public Gradio link")
    serve.set_defaults(run=cmd_serve)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from bot.backends import BackendError
    from bot.model import ModelLoadError

    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (BackendError, ModelLoadError, ValueError, LookupError, FileExistsError) as error:
        print(f"kbot: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
