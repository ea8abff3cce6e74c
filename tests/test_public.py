"""A data folder that signed-in users filled, served later without users (a forgotten
`KBOT_AUTH`): checked as an attacker would, over HTTP, through every route a chat-only server
has. Users' private collections must not be listed, answered from or named, whatever is typed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.access import Access, Scope, decide_access
from bot.api import mount_api
from bot.backends import BackendError
from bot.resources import Resources
from bot.scoped import scoped
from bot.service import ChatService
from tests.test_access import call, launch

SECRET = "QX-5813"  # in the private diary only; not hex, so no random id holds it


@pytest.fixture(scope="module")
def chat_only(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    folder = tmp_path_factory.mktemp("public")
    (folder / "diary.txt").write_text(f"The code of Dee's locker at the Orbridge pool is {SECRET}.")
    (folder / "almanac.txt").write_text("Dee wrote to her aunt in Calvary Street every Sunday.")
    (folder / "timetable.txt").write_text("The Orbridge pool opens at seven every weekday.")
    dee = scoped(resources, Scope("dee", admin=False))
    dee.knowledge.ingest("diary", [folder / "diary.txt"])
    dee.knowledge.ingest("almanac", [folder / "almanac.txt"])
    resources.knowledge.ingest("pool", [folder / "timetable.txt"])
    stored = [n for n in resources.knowledge.collections() if n.endswith("-diary")]
    assert len(stored) == 1
    access = decide_access("0.0.0.0", False, None)
    assert access == Access("chat-only")
    app, url = launch(resources, access)
    mount_api(app, ChatService(resources), access)
    yield {"url": url, "diary": stored[0], "prefix": stored[0].removesuffix("diary")}
    app.close()


def private_names_in(text: str, served: dict) -> list[str]:
    return [word for word in (SECRET, "almanac", served["prefix"]) if word in text]


def test_the_api_lists_and_answers_from_shared_collections_only(chat_only: dict) -> None:
    api = httpx.Client(base_url=chat_only["url"] + "/v1", timeout=120)
    listed = api.get("/models").text
    assert "rag:pool" in listed
    assert "diary" not in listed and not private_names_in(listed, chat_only)
    question = [{"role": "user", "content": "What is the code of Dee's locker?"}]
    for typed in (chat_only["diary"], "diary", chat_only["prefix"], "u", "../diary"):
        for backend in ("rag", "summary", "rag+lora"):
            model = f"{backend}:{typed}" + (":x" if backend == "rag+lora" else "")
            answered = api.post("/chat/completions", json={"model": model, "messages": question})
            assert answered.status_code in (400, 404), (model, answered.text)
            assert "error" in answered.json()
            shown = answered.text.replace(typed, "")  # the caller's own words may come back
            assert not private_names_in(shown, chat_only), (model, answered.text)
            assert "diary" not in shown
    served = api.post("/chat/completions", json={"model": "rag:pool", "messages": question})
    assert served.status_code == 200 and SECRET not in served.text


def test_no_gradio_handler_reveals_a_private_collection(chat_only: dict) -> None:
    """Every handler of the page, called by its fn_index with the private names as values."""
    client = httpx.Client(base_url=chat_only["url"], timeout=120)
    config = client.get("/config").json()
    assert "diary" not in json.dumps(config) and not private_names_in(json.dumps(config), chat_only)
    attempts: list[Any] = [None, chat_only["diary"], "diary"]
    for fn_index, dependency in enumerate(config["dependencies"]):
        trigger = dependency["targets"][0][0] if dependency["targets"] else None
        for value in attempts:
            data = [value] * len(dependency["inputs"])
            if dependency.get("api_name") == "chat":  # message, history, backend, options
                data = ["What is the code of Dee's locker?", [], "rag", {"collection": value}]
            result = json.dumps(call(client, fn_index, trigger, data))
            shown = result.replace(str(value), "") if value else result
            assert not private_names_in(shown, chat_only), (fn_index, value, result)


def test_every_scope_is_a_view_with_every_method_the_app_uses(
    resources: Resources, chat_only: dict
) -> None:
    """A scoped view has no fall-through to the unscoped store: each method of the store is
    offered (mapping names) or deliberately left out, and a user's summary of one of her own
    documents works through it."""
    from bot.scoped import ScopedKnowledge
    from knowledge.knowledge_base import KnowledgeBase

    not_served = {"create", "add_questions", "embedder_of"}  # the CLI's and the store's own
    public = {
        n
        for n in vars(KnowledgeBase)
        if not n.startswith("_") and callable(getattr(KnowledgeBase, n))
    }
    assert public - not_served <= set(vars(ScopedKnowledge)), public - set(vars(ScopedKnowledge))
    dee = ChatService(scoped(resources, Scope("dee", admin=False)))
    *_, summary = dee.reply(
        "Summarise it.", (), "summary", {"collection": "diary", "source": "diary.txt"}
    )
    assert SECRET in summary.answer
    shared = ChatService(scoped(resources, Scope()))
    with pytest.raises(BackendError, match="Unknown collection 'diary'") as refused:
        next(shared.reply("Summarise it.", (), "summary", {"collection": "diary"}))
    assert "almanac" not in str(refused.value)
