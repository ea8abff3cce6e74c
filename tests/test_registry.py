"""The backend registry and the contract every backend keeps."""

from __future__ import annotations

import re

import pytest
from langchain_core.runnables import Runnable, RunnableLambda
from pydantic import BaseModel

from bot.backends import Backend, BackendError, BackendRegistry, default_registry
from bot.resources import Resources


class Echo(Backend):
    id = "echo"
    name = "Echo"
    description = "Repeats the question; for routing tests."

    class Options(BaseModel):
        prefix: str = ""

    def build_chain(self, resources: Resources, options: BaseModel) -> Runnable:
        from langchain_core.messages import AIMessageChunk

        return RunnableLambda(
            lambda data: {"answer": AIMessageChunk(content=options.prefix + data["question"])}
        )


def test_duplicate_ids_are_rejected() -> None:
    registry = BackendRegistry()
    registry.register(Echo())
    with pytest.raises(ValueError, match="already registered"):
        registry.register(Echo())


@pytest.mark.parametrize("bad_id", ["", "Has Caps", "../x", "a/b", "x" * 40])
def test_malformed_ids_are_rejected(bad_id: str) -> None:
    backend = Echo()
    backend.id = bad_id
    with pytest.raises(ValueError, match="malformed"):
        BackendRegistry().register(backend)


def test_unknown_backend_error_names_the_available_ones() -> None:
    registry = default_registry()
    with pytest.raises(BackendError, match=r"Unknown backend 'nope'\. Available: .*base"):
        registry.get("nope")


def test_options_are_validated_with_a_clear_message() -> None:
    with pytest.raises(BackendError, match=r"Invalid options for backend 'base': colection"):
        default_registry().get("base").parse_options({"colection": "typo"})
    assert Echo().parse_options({"prefix": "> "}).prefix == "> "


def test_every_builtin_backend_describes_itself() -> None:
    registry = default_registry()
    assert "base" in registry.ids()
    for backend in registry:
        assert backend.name and backend.description
        assert issubclass(backend.Options, BaseModel)


@pytest.mark.parametrize("backend_id", default_registry().ids())
def test_every_backend_refuses_unknown_options_by_name(backend_id: str) -> None:
    backend = default_registry().get(backend_id)
    expected = re.escape(f"Invalid options for backend '{backend_id}': bogus")
    with pytest.raises(BackendError, match=expected):
        backend.parse_options({"bogus": 1})
    assert backend.parse_options({}) is not None  # every option has a default
