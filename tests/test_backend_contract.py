"""The contract every registered backend keeps, run against each one with the real model,
embedder, Chroma and trained artifacts. A new backend passes it by adding one entry to
`contract_options` below (what a conversation with it needs); the suite fails until it does.
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
from tests.documents import FACT_QA

pytestmark = pytest.mark.slow
BACKENDS = default_registry().ids()


@pytest.fixture(scope="module")
def contract_options(
    resources: Resources, lora: str, full: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict]:
    """For each backend id, options that make a working conversation."""
    folder = tmp_path_factory.mktemp("contract-docs")
    for number, (_, sentence) in enumerate(FACT_QA):
        (folder / f"fact{number}.txt").write_text(sentence + "\n")
    assert not resources.knowledge.ingest("contract-docs", sorted(folder.iterdir())).errors
    return {
        "base": {},
        "rag": {"collection": "contract-docs", "k": 2},
        "lora": {"adapter": lora},
        "full": {"checkpoint": full},
        "rag+lora": {"collection": "contract-docs", "adapter": lora, "k": 2},
        "summary": {"collection": "contract-docs"},
    }


@pytest.fixture
def options(contract_options: dict[str, dict], request: pytest.FixtureRequest) -> dict:
    backend_id = request.node.callspec.params["backend_id"]
    if backend_id not in contract_options:
        pytest.fail(f"Backend {backend_id!r} has no entry in contract_options: add one.")
    return dict(contract_options[backend_id])


def replies(
    resources: Resources, backend_id: str, options: dict, question: str, history=()
) -> list[Reply]:
    return list(ChatService(resources).reply(question, list(history), backend_id, options))


def test_every_registered_backend_is_in_the_suite(contract_options: dict[str, dict]) -> None:
    assert set(contract_options) == set(BACKENDS)


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_streams_text_then_finishes_with_done(
    resources: Resources, backend_id: str, options: dict
) -> None:
    stream = replies(resources, backend_id, options, "What colour is the Tollow bridge?")
    partial = [len(r.answer) for r in stream if not r.done]
    assert len(partial) >= 2, "the answer should arrive in several pieces"
    assert partial == sorted(partial), "each piece adds to the answer"
    assert [r.done for r in stream] == [False] * (len(stream) - 1) + [True]
    final = stream[-1]
    assert final.answer.strip() and final.latency_s > 0
    assert final.tokens > 0 or not default_registry().get(backend_id).generates
    assert final.backend == backend_id


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_returns_sources_only_when_it_retrieves(
    resources: Resources, backend_id: str, options: dict
) -> None:
    final = replies(resources, backend_id, options, "What colour is the Tollow bridge?")[-1]
    if default_registry().get(backend_id).retrieves:
        assert final.sources, "a retrieving backend names the passages it answered from"
        assert {"source", "text", "score"} <= set(final.sources[0])
        assert Path(final.sources[0]["source"]).name == "fact1.txt"
    else:
        assert final.sources == []


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_rejects_unknown_options_by_name(
    resources: Resources, backend_id: str, options: dict
) -> None:
    expected = re.escape(f"Invalid options for backend '{backend_id}'") + ".*bogus"
    with pytest.raises(BackendError, match=expected):
        replies(resources, backend_id, options | {"bogus": 1}, "hi")


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_rejects_missing_and_unknown_option_values_clearly(
    resources: Resources, backend_id: str, options: dict
) -> None:
    for option in default_registry().get(backend_id).positional:
        missing = {key: value for key, value in options.items() if key != option}
        with pytest.raises(BackendError, match=option):
            replies(resources, backend_id, missing, "hi")
        with pytest.raises(BackendError, match="no-such-thing"):
            replies(resources, backend_id, options | {option: "no-such-thing"}, "hi")


@pytest.mark.parametrize("backend_id", BACKENDS)
def test_keeps_two_conversations_apart(
    resources: Resources, backend_id: str, options: dict
) -> None:
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
        return replies(resources, backend_id, options, question, history)[-1].answer

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
@pytest.mark.parametrize("backend_id", BACKENDS)
def test_answers_the_same_through_every_scope(
    resources: Resources, backend_id: str, options: dict, scope: str
) -> None:
    """Every backend works on the view each kind of caller gets (shared collections and
    adapters are everyone's), with the same answer as on the store itself."""
    question = "What colour is the Tollow bridge?"
    direct = replies(resources, backend_id, options, question)[-1]
    through = replies(scoped(resources, SCOPES[scope]), backend_id, options, question)[-1]
    assert through.answer == direct.answer and through.sources == direct.sources
