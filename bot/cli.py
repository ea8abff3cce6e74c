"""`kbot`: the command line. Every command reads the same typed settings (env + flags)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
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
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(run=cmd_ask)

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
    except (BackendError, ModelLoadError) as error:
        print(f"kbot: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
