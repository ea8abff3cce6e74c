"""Errors tell the truth: what a user can fix is one line, with the trace only on `--debug`;
every error class of the code is one of the domain's (`common.errors`)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from common.errors import BadInput, KbotError, NotFound
from tests.cli import kbot_process as kbot

ROOT = Path(__file__).resolve().parents[1]


def defined_exceptions() -> list[type]:
    """Every exception class defined in the product's packages."""
    found = []
    for layer in ("bot", "knowledge", "adapters", "common"):
        for path in sorted((ROOT / layer).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            classes = [
                n.name for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.ClassDef)
            ]
            if not classes:
                continue
            loaded = importlib.import_module(module.removesuffix(".__init__"))
            found += [
                value
                for name in classes
                if isinstance(value := getattr(loaded, name, None), type)
                and issubclass(value, BaseException)
            ]
    return found


def test_every_error_of_the_code_is_a_domain_error() -> None:
    errors = defined_exceptions()
    assert len(errors) > 15  # the walk found them
    assert [e.__qualname__ for e in errors if not issubclass(e, KbotError)] == []


def test_domain_errors_are_still_the_builtin_errors_they_refine() -> None:
    from adapters.data import DataError
    from knowledge.results import UnknownCollectionError

    assert issubclass(DataError, ValueError) and issubclass(DataError, BadInput)
    assert issubclass(UnknownCollectionError, LookupError) and issubclass(
        UnknownCollectionError, NotFound
    )


def test_the_cli_shows_a_users_mistake_as_one_line_and_the_trace_on_debug(
    tmp_path: Path,
) -> None:
    users = tmp_path / "users.json"
    plain = kbot("users", "remove", "nobody", "--auth", str(users), home=tmp_path)
    assert plain.returncode == 2
    assert plain.stderr.strip().splitlines() == [plain.stderr.strip()]
    assert plain.stderr.startswith("kbot: error: ") and "Traceback" not in plain.stderr

    debug = kbot("--debug", "users", "remove", "nobody", "--auth", str(users), home=tmp_path)
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "NotFound" in debug.stderr
