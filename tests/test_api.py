"""The OpenAI-compatible API, called with the official `openai` client against a launched
server: users with API keys, their own and shared collections, streaming and usage."""

from __future__ import annotations

import time
from collections.abc import Iterator

import openai
import pytest

from bot.access import Access, Scope, Users
from bot.api import mount_api
from bot.resources import Resources
from bot.scoped import scoped
from bot.service import ChatService
from tests.test_access import PASSWORDS, launch


@pytest.fixture(scope="module")
def api(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """A signed-in server with the API mounted; the users' keys and the server's URL."""
    users = Users()
    for name, role in (("ada", "admin"), ("bo", "user"), ("cy", "user")):
        users.add(name, PASSWORDS[name], role)
    keys = {name: users.new_api_key(name) for name in ("ada", "bo", "cy")}
    folder = tmp_path_factory.mktemp("api")
    (folder / "depot.txt").write_text("The Harwick depot closes at six in the evening.")
    (folder / "locker.txt").write_text("The combination of Bo's locker at the depot is 4471.")
    resources.knowledge.ingest("depot", [folder / "depot.txt"])
    as_bo = scoped(resources, Scope("bo", admin=False))  # bo's private collection
    as_bo.knowledge.ingest("lockers", [folder / "locker.txt"])
    access = Access("signed-in", users)
    app, url = launch(resources, access)
    mount_api(app, ChatService(resources), access)
    yield {"url": f"{url}/v1", "keys": keys}
    app.close()


def client(api: dict, name: str | None) -> openai.OpenAI:
    key = api["keys"][name] if name else "not-a-key"
    return openai.OpenAI(base_url=api["url"], api_key=key, max_retries=0, timeout=120)


def test_models_are_the_backends_each_caller_may_use(api: dict) -> None:
    bo = {model.id for model in client(api, "bo").models.list()}
    cy = {model.id for model in client(api, "cy").models.list()}
    assert {"base", "rag:depot", "rag:lockers"} <= bo
    assert "rag:depot" in cy and not any("lockers" in model for model in cy)


def test_a_chat_completion_answers_from_the_callers_collection_with_usage(api: dict) -> None:
    question = [{"role": "user", "content": "What is the combination of Bo's locker?"}]
    completion = client(api, "bo").chat.completions.create(model="rag:lockers", messages=question)
    answer = completion.choices[0].message.content
    assert "4471" in answer and completion.choices[0].finish_reason == "stop"
    assert completion.usage.prompt_tokens > 0 and completion.usage.completion_tokens > 0
    origin = completion.model_extra["kbot"]  # where the answer came from
    assert [s["source"] for s in origin["sources"]] == ["locker.txt"]
    assert origin["backend"] == "rag" and origin["collection"]["name"] == "lockers"

    stream = client(api, "bo").chat.completions.create(
        model="rag:lockers",
        messages=question,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 2
    assert streamed.strip() == answer  # greedy: the same answer, in pieces
    assert chunks[-1].usage.completion_tokens == completion.usage.completion_tokens


def test_other_users_collections_do_not_exist_for_a_caller(api: dict) -> None:
    question = [{"role": "user", "content": "What is the combination of Bo's locker?"}]
    with pytest.raises(openai.NotFoundError) as caught:
        client(api, "cy").chat.completions.create(model="rag:lockers", messages=question)
    message = caught.value.body["message"]
    assert "Unknown collection 'lockers'" in message and "4471" not in message
    assert "lockers" not in message.split("Existing:")[-1]


def test_callers_without_a_valid_key_are_refused(api: dict) -> None:
    with pytest.raises(openai.AuthenticationError):
        client(api, None).models.list()
    with pytest.raises(openai.AuthenticationError):
        client(api, None).chat.completions.create(
            model="base", messages=[{"role": "user", "content": "Hi"}]
        )


def test_a_malformed_request_gets_a_clear_error(api: dict) -> None:
    with pytest.raises(openai.BadRequestError, match="The last message must be the user's"):
        client(api, "bo").chat.completions.create(
            model="base", messages=[{"role": "assistant", "content": "Hello"}]
        )
    with pytest.raises(openai.BadRequestError, match="malformed"):
        client(api, "bo").chat.completions.create(
            model="rag", messages=[{"role": "user", "content": "Hi"}]
        )


@pytest.mark.slow
def test_a_flooding_caller_gets_429_while_another_is_served(api: dict) -> None:
    """bo sends more requests at once than one caller may have (KBOT_CALLER_REQUESTS, 4);
    the ones past that share are turned away at once, and cy is answered meanwhile."""
    import concurrent.futures

    import httpx

    question = {"role": "user", "content": "Write a long story about a lighthouse keeper."}

    def send(name: str) -> httpx.Response:
        headers = {"authorization": f"Bearer {api['keys'][name]}"}
        body = {"model": "base", "messages": [question]}
        return httpx.post(f"{api['url']}/chat/completions", json=body, headers=headers, timeout=600)

    with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
        flood = [pool.submit(send, "bo") for _ in range(8)]
        time.sleep(1.0)  # bo's requests are in; cy comes after them
        other = pool.submit(send, "cy").result()
        floods = [future.result() for future in flood]
    statuses = sorted(response.status_code for response in floods)
    assert statuses.count(200) == 4 and statuses.count(429) == 4, statuses
    refused = next(response for response in floods if response.status_code == 429)
    assert int(refused.headers["retry-after"]) > 0
    assert "KBOT_CALLER_REQUESTS" in refused.json()["error"]["message"]
    assert other.status_code == 200 and other.json()["choices"][0]["message"]["content"]


@pytest.mark.slow
def test_a_huge_history_is_cut_to_the_newest_turns_that_fit(api: dict) -> None:
    turns = [{"role": ("user", "assistant")[i % 2], "content": "a"} for i in range(20_000)]
    turns.append({"role": "user", "content": "Say hello."})
    completion = client(api, "bo").chat.completions.create(model="base", messages=turns)
    # The system prompt, the question and at most 64 one-token turns with their markers.
    assert completion.usage.prompt_tokens < 500, completion.usage
