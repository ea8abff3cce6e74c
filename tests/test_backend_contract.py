"""The contract every registered backend keeps, run against each one with the real model,
embedder, Chroma and trained artifacts (`model-*`, in `make test`). The backends that need
no trained weights also run it on a fake chat engine (`fake-*`, in `make test-fast`: seconds,
not minutes), with the real embedder and Chroma. A new backend passes it by adding one
entry to `contract_options` below (what a conversation with it needs); the suite fails until
it does.
"""

from __future__ import annotations

import re
import threading
from pathlib import Path

import pytest

from bot.access import Access, Scope, server_scope
from bot.backends import BackendError, default_registry
from bot.resources import Resources
from bot.scoped import scoped
from bot.service import ChatService, Reply
from bot.settings import Settings
from tests.documents import FACT_QA
from tests.fakes import FakeEngine

BACKENDS = default_registry().ids()
WEIGHTLESS = [b for b in BACKENDS if b not in ("lora", "full", "rag+lora")]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every backend on the real model (slow); those without trained weights on the fake."""
    if "backend_id" in metafunc.fixturenames:
        cases = [pytest.param("fake", b, id=f"fake-{b}") for b in WEIGHTLESS]
        cases += [
            pytest.param("model", b, id=f"model-{b}", marks=pytest.mark.slow) for b in BACKENDS
        ]
        metafunc.parametrize(("stack", "backend_id"), cases, indirect=["stack"], scope="module")


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, settings: Settings) -> Resources:
    """The resources the backends answer from: the real ones, or the same data on a fake
    engine."""
    if request.param == "model":
        return request.getfixturevalue("resources")
    return Resources(settings, engine=FakeEngine())


@pytest.fixture(scope="module")
def contract_options(
    stack: Resources, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict]:
    """For each backend id, options that make a working conversation."""
    folder = tmp_path_factory.mktemp("contract-docs")
    for number, (_, sentence) in enumerate(FACT_QA):
        (folder / f"fact{number}.txt").write_text(sentence + "\n")
    assert not stack.knowledge.ingest("contract-docs", sorted(folder.iterdir())).errors
    options: dict[str, dict] = {
        "base": {},
        "rag": {"collection": "contract-docs", "k": 2},
        "summary": {"collection": "contract-docs"},
    }
    if isinstance(stack.engine, FakeEngine):
        return options
    lora, full = request.getfixturevalue("lora"), request.getfixturevalue("full")
    return options | {
        "lora": {"adapter": lora},
        "full": {"checkpoint": full},
        "rag+lora": {"collection": "contract-docs", "adapter": lora, "k": 2},
    }


@pytest.fixture
def options(contract_options: dict[str, dict], backend_id: str) -> dict:
    if backend_id not in contract_options:
        pytest.fail(f"Backend {backend_id!r} has no entry in contract_options: add one.")
    return dict(contract_options[backend_id])


def replies(
    resources: Resources, backend_id: str, options: dict, question: str, history=()
) -> list[Reply]:
    return list(ChatService(resources).reply(question, list(history), backend_id, options))


def test_streams_text_then_finishes_with_done(
    stack: Resources, backend_id: str, options: dict
) -> None:
    stream = replies(stack, backend_id, options, "What colour is the Tollow bridge?")
    partial = [len(r.answer) for r in stream if not r.done]
    assert len(partial) >= 2, "the answer should arrive in several pieces"
    assert partial == sorted(partial), "each piece adds to the answer"
    assert [r.done for r in stream] == [False] * (len(stream) - 1) + [True]
    final = stream[-1]
    assert final.answer.strip() and final.latency_s > 0
    assert final.tokens > 0 or not default_registry().get(backend_id).generates
    assert final.backend == backend_id


def test_returns_sources_only_when_it_retrieves(
    stack: Resources, backend_id: str, options: dict
) -> None:
    final = replies(stack, backend_id, options, "What colour is the Tollow bridge?")[-1]
    if default_registry().get(backend_id).retrieves:
        assert final.sources, "a retrieving backend names the passages it answered from"
        assert {"source", "text", "score"} <= set(final.sources[0])
        assert Path(final.sources[0]["source"]).name == "fact1.txt"
    else:
        assert final.sources == []


def test_rejects_unknown_options_by_name(stack: Resources, backend_id: str, options: dict) -> None:
    expected = re.escape(f"Invalid options for backend '{backend_id}'") + ".*bogus"
    with pytest.raises(BackendError, match=expected):
        replies(stack, backend_id, options | {"bogus": 1}, "hi")


def test_rejects_missing_and_unknown_option_values_clearly(
    stack: Resources, backend_id: str, options: dict
) -> None:
    for option in default_registry().get(backend_id).positional:
        missing = {key: value for key, value in options.items() if key != option}
        with pytest.raises(BackendError, match=option):
            replies(stack, backend_id, missing, "hi")
        with pytest.raises(BackendError, match="no-such-thing"):
            replies(stack, backend_id, options | {option: "no-such-thing"}, "hi")


def test_keeps_two_conversations_apart(stack: Resources, backend_id: str, options: dict) -> None:
    """Two conversations at once each get the answer they get alone (greedy decoding)."""
    conversations = {
        "bridge": ("What colour is it?", [("Tell me about the Tollow bridge.", "It is a bridge.")]),
        "mayor": ("Who is the mayor of Quillby?", [("Hello!", "Hello! How can I help?")]),
    }

    def ask(key: str) -> str:
        question, turns = conversations[key]
        history = [
            message
            for user, assistant in turns
            for message in (
                {"role": "user", "content": user},
                {"role": "assistant", "content": assistant},
            )
        ]
        return replies(stack, backend_id, options, question, history)[-1].answer

    alone = {key: ask(key) for key in conversations}
    together: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda k=key: together.__setitem__(k, ask(k)))
        for key in conversations
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert alone["bridge"] != alone["mayor"]
    assert together == alone


SCOPES = {
    "user": Scope("contract-user", admin=False),
    "chat-only": server_scope(Access("chat-only")),
}


@pytest.mark.parametrize("scope", SCOPES)
def test_answers_the_same_through_every_scope(
    stack: Resources, backend_id: str, options: dict, scope: str
) -> None:
    """Every backend works on the view each kind of caller gets (shared collections and
    adapters are everyone's), with the same answer as on the store itself."""
    question = "What colour is the Tollow bridge?"
    direct = replies(stack, backend_id, options, question)[-1]
    through = replies(scoped(stack, SCOPES[scope]), backend_id, options, question)[-1]
    assert through.answer == direct.answer and through.sources == direct.sources
