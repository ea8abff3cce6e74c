"""`kbot`: the command line. Every command reads the same typed settings (env + flags); its
flags are built from `Settings`, `TrainConfig` and the backends' `Options`.

With `--json`, stdout holds exactly one JSON document: whatever a library prints while the
command runs goes to stderr, with the progress bars.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from bot.flags import add_model_flags, model_values
from bot.settings import Settings, load_settings
from common.errors import BadInput, KbotError, NotFound
from common.files import write_atomically
from common.text import counted
from knowledge.modes import MODES, modes_help

SERVER_FIELDS = ("host", "port", "share", "unsafe_public", "queue_size")


def _settings(args: argparse.Namespace) -> Settings:
    return load_settings(**model_values(args, Settings))


def _emit(args: argparse.Namespace, data: Any) -> None:
    """The command's one JSON document, on the real stdout."""
    out: IO[str] = args.stdout
    out.write(json.dumps(data, ensure_ascii=False) + "\n")
    out.flush()


def _say(args: argparse.Namespace, text: str = "", end: str = "\n") -> None:
    args.stdout.write(text + end)
    args.stdout.flush()


def _parse_option(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value


def _progress_bar(args: argparse.Namespace) -> tuple[Callable[[float, str], None] | None, Any]:
    """A tqdm bar on stderr for long work (stdout stays clean for --json); `--quiet` hides it."""
    if getattr(args, "quiet", False):
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(total=1000, unit="‰", file=sys.stderr, leave=False, bar_format="{l_bar}{bar}")

    def update(fraction: float, label: str) -> None:
        bar.set_description(label[:40])
        bar.n = int(fraction * 1000)
        bar.refresh()

    return update, bar.close


def _backend_option_fields() -> dict[str, Any]:
    """Every option any backend takes, once (several backends share `collection`)."""
    from bot.backends import default_registry

    fields: dict[str, Any] = {}
    for backend in default_registry():
        for name, field in backend.Options.model_fields.items():
            fields.setdefault(name, (backend.Options, field))
    return fields


def cmd_ask(args: argparse.Namespace) -> int:
    """Print the answer as it is generated, or one JSON object at the end with `--json`."""
    from bot.backends import default_registry
    from bot.service import create_service

    default_registry().get(args.backend)  # an unknown backend fails before the model loads
    options = dict(args.option or [])
    options |= {
        name: getattr(args, name)
        for name in _backend_option_fields()
        if getattr(args, name, None) is not None
    }
    service = create_service(_settings(args))
    printed = 0
    reply = None
    for reply in service.reply(args.question, backend=args.backend, options=options):
        if not args.json:
            _say(args, reply.answer[printed:], end="")
            printed = len(reply.answer)
    assert reply is not None
    if args.json:
        _emit(args, reply.as_json())
    else:
        _say(args)
    return 0


def _knowledge(args: argparse.Namespace):
    from bot.resources import Resources

    return Resources(_settings(args)).knowledge


def cmd_ingest(args: argparse.Namespace) -> int:
    from knowledge.loaders import expand_paths

    knowledge = _knowledge(args)
    update, close = _progress_bar(args)
    result = knowledge.ingest(args.collection, expand_paths(args.paths), update)
    close()
    if args.json:
        _emit(args, result.as_json())
    else:
        _say(
            args,
            f"{result.collection}: {counted(result.files, 'file')}, "
            f"{counted(result.chunks_added, 'chunk')} added, {result.chunks_unchanged} unchanged, "
            f"{result.chunks_removed} removed",
        )
        for error in result.errors:
            print(f"  error: {error['error']}", file=sys.stderr)
    return 1 if result.errors else 0


def cmd_collections(args: argparse.Namespace) -> int:
    knowledge = _knowledge(args)
    if args.set_mode:  # the questions mode has the model write questions: a progress bar
        update, close = _progress_bar(args)
        name, mode = args.set_mode
        knowledge.set_mode(name, mode, update)
        close()
    if args.set_embedder:
        update, close = _progress_bar(args)
        name, embedder = args.set_embedder
        changed = knowledge.change_embedder(name, embedder, update)
        close()
        cost = f" ({changed['chunks']} chunks, {changed['seconds']} s)" * changed["changed"]
        print(f"{changed['collection']}: embedded by {changed['embedder']}{cost}", file=sys.stderr)
    rows = [
        {
            "collection": name,
            "documents": len(docs := knowledge.documents(name)),
            "chunks": sum(d["chunks"] for d in docs),
            "mode": knowledge.mode(name),
            "embedder": knowledge.embedder_name_of(name),
        }
        for name in knowledge.collections()
    ]
    if args.json:
        _emit(args, rows)
    else:
        for row in rows:
            _say(
                args,
                f"{row['collection']}\t{row['documents']} documents\t{row['chunks']} chunks"
                f"\t{row['mode']}\t{row['embedder']}",
            )
    return 0


def cmd_forget(args: argparse.Namespace) -> int:
    removed = _knowledge(args).forget(args.collection, args.source)
    if args.json:
        _emit(args, {"collection": args.collection, "source": args.source, "chunks": removed})
    else:
        _say(args, f"removed {args.source} ({removed} chunks) from {args.collection}")
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
            raise BadInput(f'{path}, line {number}: expected {{"id", "text"}}: {error}') from None
    return queries


def cmd_retrieve(args: argparse.Namespace) -> int:
    knowledge = _knowledge(args)
    if args.queries:
        queries = _read_queries(args.queries)
        texts = [q["text"] for q in queries]
        results = knowledge.search_many(args.collection, texts, args.k, args.mode)
        lines = (
            {"id": query["id"], "results": [h.as_json() for h in hits]}
            for query, hits in zip(queries, results, strict=True)
        )
        if args.json:  # one document: a list of the lines
            _emit(args, list(lines))
        else:  # JSON lines, written as they come
            for line in lines:
                _say(args, json.dumps(line, ensure_ascii=False))
        return 0
    if not args.query:
        raise BadInput("give a QUERY or --queries FILE.jsonl")
    hits = knowledge.search(args.collection, args.query, args.k, args.mode)
    if args.json:
        _emit(args, [h.as_json() for h in hits])
    else:
        for number, hit in enumerate(hits, start=1):
            where = f"{hit.source}" + (f" ({hit.location})" if hit.location else "")
            _say(
                args, f"[{number}] {hit.score:.3f} {where}\n    {' '.join(hit.text.split())[:200]}"
            )
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    from bot.backends.summary import summarizer
    from bot.resources import Resources

    resources = Resources(_settings(args))
    knowledge, written = resources.knowledge, summarizer(resources)
    sources = [knowledge.stored_source(args.collection, s) for s in args.source or []] or None
    if args.topic:
        sources = written.about(args.collection, args.topic)
        if not sources:
            raise NotFound(f"No document of {args.collection!r} mentions {args.topic!r}.")
    update, close = _progress_bar(args)
    summary = written.summarise(args.collection, sources, update)
    close()
    if args.json:
        _emit(args, summary.as_json())
        return 0
    for document in summary.documents:
        _say(args, f"- {Path(document.source).name}: {document.text}")
    if len(summary.documents) > 1:
        _say(args, f"\nIn short: {summary.overview}")
    print(
        f"{len(summary.documents)} documents, {summary.summarised} summarised now, "
        f"{summary.seconds:.1f} s",
        file=sys.stderr,
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from adapters.train import TrainConfig
    from bot.resources import Resources
    from bot.training import reader_training_data, run_training, training_data

    resources = Resources(_settings(args))
    config = TrainConfig(**model_values(args, TrainConfig))
    resources.artifacts.check_free(config.name, config.overwrite)  # fail before loading data
    gather = reader_training_data if config.as_reader else training_data
    data = gather(resources, args.data, args.collection)
    update, close = _progress_bar(args)
    result = run_training(resources, config, data, update)
    close()
    meta = result.meta
    if meta is None:
        raise KbotError(f"training {config.name!r} stopped after {result.steps} steps")
    if args.json:
        _emit(args, {**meta.summary(config.name), "status": result.status})
    else:
        _say(
            args,
            f"{config.name}: {config.method}, {meta.steps} steps in {meta.train_seconds} s, "
            f"final loss {meta.final_train_loss}, {meta.trainable_params:,} of "
            f"{meta.total_params:,} parameters trained, {meta.file_bytes / 1e6:.1f} MB "
            f"saved to {result.path}",
        )
    return 0


def cmd_adapters(args: argparse.Namespace) -> int:
    from bot.resources import Resources

    artifacts = Resources(_settings(args)).artifacts
    if args.delete:
        artifacts.delete(args.delete)
        if args.json:
            _emit(args, {"deleted": args.delete})
        else:
            _say(args, f"deleted {args.delete}")
        return 0
    rows = [meta.summary(name) for name, meta in artifacts.all()]
    if args.json:
        _emit(args, rows)
    else:
        for row in rows:
            _say(
                args,
                f"{row['name']}\t{row['method']}\t{row['file_bytes'] / 1e6:.1f} MB\t"
                f"{row['trainable_params']:,} trained\tloss {row['final_train_loss']}\t"
                f"{row['created_at']}",
            )
    return 0


def cmd_qa(args: argparse.Namespace) -> int:
    """Write question/answer pairs from a collection's chunks, to edit, train on or eval."""
    from bot.resources import Resources
    from bot.training import generate_questions

    resources = Resources(_settings(args))
    update, close = _progress_bar(args)
    counts: dict[str, int] = {}
    path, pairs = generate_questions(
        resources,
        args.collection,
        args.per_chunk,
        args.max_chunks,
        update,
        round_trip=not args.keep_all,
        counts=counts,
    )
    close()
    if args.json:
        _emit(args, {"path": str(path), "pairs": len(pairs), **counts})
    else:
        _say(
            args,
            f"{len(pairs)} question/answer pairs written to {path} ({counts['written']} "
            f"written, {counts['short']} with a short answer, "
            f"{counts['dropped_by_round_trip']} dropped by the round trip)",
        )
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Score every backend on one question set; print a table, or JSON with `--json`."""
    from bot.evaluation.questions import load_questions
    from bot.evaluation.runner import compare
    from bot.evaluation.table import text_table
    from bot.service import create_service

    settings = _settings(args)
    questions = load_questions(args.questions, int(settings.max_file_mb * 1_000_000))
    specs = [spec for spec in args.backends.split(",") if spec.strip()]
    service = create_service(settings)
    update, close = _progress_bar(args)
    comparison = compare(service, questions, specs, update)
    close()
    if args.report:
        from bot.evaluation.report import write_report  # charts: matplotlib only when asked

        write_report(comparison, args.report)
    if args.json:
        _emit(args, comparison.as_json())
        return 0
    _say(args, text_table(comparison))
    if args.report:
        _say(args, f"report: {args.report}")
    return 0


def cmd_reader_data(args: argparse.Namespace) -> int:
    """Reading-comprehension questions as reader training records, built with the RAG
    pipeline's own retrieval, sentence choice and prompt."""
    from adapters.data import load_records
    from adapters.reader import reader_records, write_squad_paragraphs
    from bot.resources import Resources
    from knowledge.knowledge_base import KnowledgeBase
    from knowledge.loaders import expand_paths

    resources = Resources(_settings(args))
    settings = resources.settings
    workspace = settings.home / "reader"  # kept apart from the user's collections
    questions = write_squad_paragraphs(args.squad, workspace / "paragraphs")
    if args.limit:
        questions = random.Random(args.seed).sample(questions, min(args.limit, len(questions)))
    knowledge = KnowledgeBase(
        workspace / "knowledge",
        resources.embedder,
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
    )
    update, close = _progress_bar(args)
    knowledge.ingest("articles", expand_paths([workspace / "paragraphs"]), update)
    records, counts = reader_records(
        knowledge,
        "articles",
        questions,
        k=settings.top_k,
        sentences=settings.evidence_sentences,
        unanswerable_share=args.unanswerable,
        seed=args.seed,
        progress=update,
    )
    close()
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    write_atomically(args.out, lines)
    summary = {"path": str(args.out), "records": len(records), **counts}
    summary["fingerprint"] = load_records(args.out).fingerprint
    if args.json:
        _emit(args, summary)
    else:
        _say(args, ", ".join(f"{key} {value}" for key, value in summary.items()))
    return 0


def cmd_users(args: argparse.Namespace) -> int:
    """Add, remove or list the users of the users file (KBOT_AUTH, default KBOT_HOME/users.json)."""
    from bot.access import Users

    settings = _settings(args)
    path = settings.auth or settings.home / "users.json"
    users = Users.read(path) if path.is_file() else Users()
    if args.action != "list" and not args.name:
        raise BadInput(f"kbot users {args.action} needs the user's name.")
    if args.action == "add":
        password = sys.stdin.readline().rstrip("\n") if args.password_stdin else None
        if password is None:
            import getpass

            password = getpass.getpass(f"Password for {args.name}: ")
        users.add(args.name, password, args.role)
        users.write(path)
    elif args.action == "remove":
        if users.users.pop(args.name, None) is None:
            raise NotFound(f"No user {args.name!r} in {path}.")
        users.write(path)
    elif args.action == "key":
        key = users.new_api_key(args.name)
        users.write(path)
        if args.json:
            _emit(args, {"path": str(path), "user": args.name, "api_key": key})
        else:
            _say(args, key)  # shown once: only its hash is stored
        return 0
    if args.json:
        _emit(args, {"path": str(path), "users": users.listing()})
    else:
        for row in users.listing():
            _say(args, f"{row['name']}\t{row['role']}")
        if args.action != "list":
            _say(args, f"saved to {path}; serve with KBOT_AUTH={path}")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from bot.serve import serve
    from bot.settings import PACKAGED_MODEL
    from bot.spaces import ensure_packaged_model, on_space, space_defaults

    flags = model_values(args, Settings)
    settings = load_settings(**(space_defaults() | flags))
    if on_space() and settings.model == PACKAGED_MODEL:
        ensure_packaged_model()
    serve(settings)
    return 0


def cmd_model_server(args: argparse.Namespace) -> int:
    from bot.model_server import run_model_server

    run_model_server(_settings(args), args.host, args.port)
    return 0


@dataclass(frozen=True)
class Argument:
    """One argument of a command: its names and `add_argument`'s keywords."""

    names: tuple[str, ...]
    options: dict[str, Any]


def argument(*names: str, **options: Any) -> Argument:
    return Argument(names, options)


# Flags that several commands share, declared here once.
COLLECTION = argument("--collection", required=True)
# The sets of flags that commands share (`_shared_parsers`), and which a command takes.
Shared = Literal["settings", "json", "quiet"]
STANDARD: tuple[Shared, ...] = ("settings", "json")
WITH_PROGRESS: tuple[Shared, ...] = (*STANDARD, "quiet")


@dataclass(frozen=True)
class Command:
    """One `kbot` command: the `shared` flags first, then `arguments` in order, then what
    `add_more` adds: flags from the backends or a typed model, whose imports wait until the
    parser is built."""

    name: str
    help: str
    run: Callable[[argparse.Namespace], int]
    arguments: tuple[Argument, ...] = ()
    shared: tuple[Shared, ...] = STANDARD
    add_more: Callable[[argparse.ArgumentParser], None] | None = None


def _add_backend_flags(parser: argparse.ArgumentParser) -> None:
    from bot.backends import default_registry

    parser.add_argument("--backend", default="base", help=", ".join(default_registry().ids()))
    parser.add_argument(
        "--option",
        action="append",
        type=_parse_option,
        metavar="KEY=VALUE",
        help="a backend option (repeatable)",
    )
    backend_options = parser.add_argument_group("backend options (each backend takes its own)")
    for name, (options_model, _) in _backend_option_fields().items():
        add_model_flags(backend_options, options_model, only=[name])


def _add_training_flags(parser: argparse.ArgumentParser) -> None:
    from adapters.train import TrainConfig

    add_model_flags(
        parser.add_argument_group("training (defaults from the training recipe)"),
        TrainConfig,
        required=("method", "name"),
        defaults_from_model=True,
    )


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    add_model_flags(parser, Settings, only=SERVER_FIELDS)


COMMANDS: tuple[Command, ...] = (
    Command(
        "ask",
        "answer one question",
        cmd_ask,
        (argument("question"),),
        add_more=_add_backend_flags,
    ),
    Command(
        "ingest",
        "add files to a collection",
        cmd_ingest,
        (
            argument("paths", nargs="+", type=Path, metavar="PATH", help="files or folders"),
            COLLECTION,
        ),
        shared=WITH_PROGRESS,
    ),
    Command(
        "collections",
        "list collections",
        cmd_collections,
        (
            argument(
                "--set-mode",
                nargs=2,
                metavar=("COLLECTION", "MODE"),
                help=f"make MODE the collection's retrieval mode ({modes_help()})",
            ),
            argument(
                "--set-embedder",
                nargs=2,
                metavar=("COLLECTION", "MODEL"),
                help="move the collection to embedding model MODEL (a sentence-transformers "
                "folder or model id): a new index is built while the old one keeps answering",
            ),
        ),
        shared=WITH_PROGRESS,
    ),
    Command(
        "summarize",
        "summarise a collection or its documents",
        cmd_summarize,
        (
            COLLECTION,
            argument(
                "--source",
                action="append",
                help="a document: its path as ingested, or its file name (repeatable)",
            ),
            argument("--topic", help="summarise the documents that mention this"),
        ),
        shared=WITH_PROGRESS,
    ),
    Command(
        "forget",
        "remove a source",
        cmd_forget,
        (
            COLLECTION,
            argument(
                "--source", required=True, help="the file's path as ingested, or its file name"
            ),
        ),
    ),
    Command(
        "retrieve",
        "nearest chunks",
        cmd_retrieve,
        (
            argument("query", nargs="?"),
            argument("--queries", metavar="FILE.jsonl", help='lines {"id", "text"}'),
            COLLECTION,
            argument("-k", type=int, default=5),
            argument(
                "--mode", choices=MODES, help=f"{modes_help()} (default: the collection's own)"
            ),
        ),
    ),
    Command(
        "train",
        "train a LoRA adapter or a full fine-tune",
        cmd_train,
        (
            argument("--data", type=Path, nargs="+", help="Q/A .jsonl and/or documents"),
            argument("--collection", help="train on a knowledge collection's documents"),
        ),
        shared=WITH_PROGRESS,
        add_more=_add_training_flags,
    ),
    Command(
        "adapters",
        "trained artifacts",
        cmd_adapters,
        (argument("--delete", metavar="NAME"),),
    ),
    Command(
        "qa",
        "write Q/A pairs from a collection's documents",
        cmd_qa,
        (
            COLLECTION,
            argument("--per-chunk", type=int, default=2, help="pairs per chunk, at most"),
            argument("--max-chunks", type=int, default=100, help="chunks used, spread evenly"),
            argument(
                "--keep-all",
                action="store_true",
                help="keep pairs that retrieval and the reader do not answer back (no round trip)",
            ),
        ),
        shared=WITH_PROGRESS,
    ),
    Command(
        "eval",
        "compare backends on a question set",
        cmd_eval,
        (
            argument(
                "--questions",
                type=Path,
                required=True,
                metavar="FILE.jsonl",
                help='lines {"question", "answer" or "answers": [...], "source" (optional)}',
            ),
            argument(
                "--backends",
                required=True,
                help="comma-separated: base,rag:COLLECTION,lora:ADAPTER,full:CHECKPOINT,"
                "rag+lora:COLLECTION:ADAPTER,summary:COLLECTION; rag:COLLECTION:MODE compares "
                f"retrieval modes ({', '.join(MODES)})",
            ),
            argument("--report", type=Path, metavar="PATH.html", help="write an HTML report"),
        ),
        shared=WITH_PROGRESS,
    ),
    Command(
        "reader-data",
        "reader training records from SQuAD-format questions (then: kbot train)",
        cmd_reader_data,
        (
            argument(
                "--squad",
                type=Path,
                required=True,
                metavar="DIR",
                help="paragraphs.jsonl, questions.jsonl",
            ),
            argument("--out", type=Path, required=True, metavar="FILE.jsonl"),
            argument("--limit", type=int, help="questions to use, drawn at random"),
            argument(
                "--unanswerable",
                type=float,
                default=0.2,
                help="share of the answered questions asked without their article",
            ),
            argument("--seed", type=int, default=42),
        ),
        shared=WITH_PROGRESS,
    ),
    Command(
        "users",
        "who may sign in to the server (KBOT_AUTH)",
        cmd_users,
        (
            argument(
                "action",
                choices=["list", "add", "remove", "key"],
                help="key: print a new API key for the user (for /v1/chat/completions)",
            ),
            argument("name", nargs="?", help="the user's name (add, remove, key)"),
            argument(
                "--role",
                choices=["admin", "user"],
                default="user",
                help="users ingest, train and compare on data of their own; admins change the "
                "shared data",
            ),
            argument("--password-stdin", action="store_true", help="read the password from stdin"),
        ),
    ),
    # The server's own flags (host, port...) belong to `serve` alone, and it prints no JSON.
    Command(
        "serve",
        "start the chat server",
        cmd_serve,
        shared=("settings",),
        add_more=_add_server_flags,
    ),
    Command(
        "model-server",
        "serve the base model and its LoRA adapters to app servers (llama.cpp; the app's "
        "KBOT_MODEL_URL points here)",
        cmd_model_server,
        (
            argument("--host", default="127.0.0.1"),
            argument("--port", type=int, default=8080),
        ),
        shared=("settings",),
    ),
)


class _HelpSettings(argparse.Action):
    """`kbot COMMAND --help-settings`: the command's help with every setting listed (plain
    `--help` shows the command's own flags only)."""

    def __init__(self, option_strings: list[str], dest: str, **options: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **options)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **options: Any) -> None:
        command = parser.prog.split()[-1]
        build_parser(show_settings=True).parse_args([command, "--help"])


def _shared_parsers(show_settings: bool = False) -> dict[Shared, argparse.ArgumentParser]:
    """The flags several commands share, each set as a parent parser (`Command.shared`)."""
    settings = argparse.ArgumentParser(add_help=False)
    settings.add_argument(
        "--help-settings",
        action=_HelpSettings,
        help="list the settings too (model, retrieval, limits, folders...): flags that "
        "override KBOT_* environment variables",
    )
    add_model_flags(
        settings.add_argument_group("settings (override KBOT_* environment variables)"),
        Settings,
        exclude=SERVER_FIELDS,
        hidden=not show_settings,
    )
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print one JSON document")
    quiet = argparse.ArgumentParser(add_help=False)
    quiet.add_argument("--quiet", action="store_true", help="no progress bar on stderr")
    return {"settings": settings, "json": output, "quiet": quiet}


def build_parser(show_settings: bool = False) -> argparse.ArgumentParser:
    """`kbot` and its commands; each command's help lists its own flags, and the settings
    only with `show_settings` (`--help-settings`)."""
    parser = argparse.ArgumentParser(prog="kbot", description="Knowledge Bot")
    parser.add_argument(
        "--debug",
        action="store_true",
        help="log at debug level and show every error with its traceback (kbot --debug COMMAND)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True)
    shared = _shared_parsers(show_settings)
    for command in COMMANDS:
        sub = subparsers.add_parser(
            command.name, parents=[shared[name] for name in command.shared], help=command.help
        )
        for entry in command.arguments:
            sub.add_argument(*entry.names, **entry.options)
        if command.add_more:
            command.add_more(sub)
        sub.set_defaults(run=command.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from pydantic import ValidationError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
    )
    args.stdout = sys.stdout
    # With --json, anything else printed on stdout would break the document: send it to stderr.
    quiet_stdout = (
        contextlib.redirect_stdout(sys.stderr)
        if getattr(args, "json", False)
        else contextlib.nullcontext()
    )
    try:
        with quiet_stdout:
            return args.run(args)
    except (KbotError, ValidationError) as error:  # what the user can fix: one line
        if args.debug:
            raise
        print(f"kbot: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
