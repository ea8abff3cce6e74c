"""The app on a model server (KBOT_MODEL_URL): a real `kbot model-server` (llama.cpp) on
loopback serving the packaged model, the packaged reader and a LoRA adapter trained in the
test, both converted to GGUF when the server starts."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bot.model import GenerationParams, ModelLoadError
from bot.resources import Resources
from bot.service import ChatService
from bot.settings import Settings
from common.errors import BadInput, NotFound
from knowledge.reading import NOT_IN_DOCUMENTS, Evidence, reader_messages
from tests.cli import ROOT
from tests.conftest import free_port
from tests.documents import FACT_QA, write_facts

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def model_url(
    settings: Settings, lora: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("model-server") / "server.log"
    command = [sys.executable, "-m", "bot.cli", "model-server", "--port", str(port)]
    with log.open("w") as output:
        process = subprocess.Popen(
            [*command, "--home", str(settings.home)], cwd=ROOT, stdout=output, stderr=output
        )
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"kbot model-server exited ({process.returncode}):\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/models", timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"no model server after 240 s:\n{log.read_text()}"
            time.sleep(1)
        yield url
    finally:
        process.terminate()
        process.wait(30)


@pytest.fixture(scope="module")
def served(settings: Settings, model_url: str) -> Resources:
    return Resources(settings.model_copy(update={"model_url": model_url})).load()


@pytest.fixture(scope="module")
def collection(served: Resources, tmp_path_factory: pytest.TempPathFactory) -> str:
    result = served.knowledge.ingest("served-facts", write_facts(tmp_path_factory.mktemp("docs")))
    assert result.errors == []
    return "served-facts"


def test_the_server_serves_the_base_model_the_reader_and_the_trained_adapter(
    served: Resources, lora: str
) -> None:
    names = served.engine.served()
    assert names[0] == "base"
    assert {"packaged-reader", lora} <= set(names)
    assert served.engine.describe()["engine"] == "server"


def test_a_lora_conversation_answers_through_the_server_as_in_this_process(
    served: Resources, resources: Resources, lora: str
) -> None:
    for question, answer in FACT_QA:
        remote = served.chat_model(adapter=lora).invoke(question).text
        local = resources.chat_model(adapter=lora).invoke(question).text
        assert remote == local, question
        assert answer.split(" is ")[-1].rstrip(".") in remote
    # The base model on the server does not know the invented facts: the adapter applies.
    assert "Fennimore" not in served.chat_model().invoke(FACT_QA[0][0]).text


@pytest.mark.parametrize(
    ("question", "statement"),
    [
        ("How much does it cost to park a car?", "Prices > Cars: 2 euros per hour."),
        ("What colour do glimmerfish glow at night?", "At night glimmerfish glow blue."),
        ("Who wrote Hamlet?", "Prices > Coaches: 25 euros a day, booked in advance."),
    ],
)
def test_the_served_reader_scores_the_next_token_as_in_this_process(
    resources: Resources, model_url: str, question: str, statement: str
) -> None:
    """The converted adapter is the adapter: the log-probabilities of the ten likeliest
    first tokens agree within the base model's own GGUF rounding (0.3-0.4 here; a converter
    that leaves the rotary order of the query/key rows alone is off by 0.6-5)."""
    import numpy as np

    from adapters.reader import PACKAGED_READER

    messages = reader_messages(question, [Evidence(statement, "notice.md", 1, 0.5)])
    request = {"model": "packaged-reader", "messages": messages, "max_tokens": 1}
    request |= {"temperature": 0, "logprobs": True, "top_logprobs": 10}
    reply = httpx.post(f"{model_url}/chat/completions", json=request, timeout=120).json()
    served = reply["choices"][0]["logprobs"]["content"][0]["top_logprobs"]

    model = resources.model
    ids = model.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )["input_ids"]
    scores = model.logits(ids, adapter=model.add_adapter(PACKAGED_READER))[-1].double().numpy()
    local = scores - scores.max() - np.log(np.exp(scores - scores.max()).sum())
    compared = 0
    for entry in served:
        token = model.tokenizer.convert_tokens_to_ids(model.tokenizer.tokenize(entry["token"]))
        if len(token) == 1:
            assert abs(local[token[0]] - entry["logprob"]) < 0.5, entry["token"]
            compared += 1
    assert compared >= 8


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Where does the zorblax festival happen?", "Quillby"),
        ("What colour do glimmerfish glow at night?", "blue"),
        ("Who is the captain of the Marigold?", "Ada Quenby"),
        ("What is the capital of Peru?", NOT_IN_DOCUMENTS),
    ],
)
def test_rag_reads_with_the_reader_on_the_server(
    served: Resources, collection: str, question: str, expected: str
) -> None:
    reply = list(ChatService(served).reply(question, [], "rag", {"collection": collection}))[-1]
    assert expected in reply.answer
    assert reply.sources


def test_the_readers_leaning_applies_through_the_server(
    served: Resources, resources: Resources
) -> None:
    """Here the reader prefers declining by about 1.5 in log-probability: leaning away by 3
    answers, in this process and on the server alike."""
    evidence = [
        Evidence("Prices > Cars: 2 euros per hour, at most 10 euros a day.", "notice.md", 1, 0.5),
        Evidence("Prices > Motorcycles: 1 euro per hour.", "notice.md", 1, 0.5),
    ]
    messages = reader_messages("How much does it cost to park a car?", evidence)
    asked = [(m["role"].replace("user", "human"), m["content"]) for m in messages]
    for lean, expected in ((0.0, NOT_IN_DOCUMENTS), (-3.0, "2 euros per hour")):
        here = resources.reader_model(lean=lean).invoke(asked).text
        there = served.reader_model(lean=lean).invoke(asked).text
        assert expected in here and expected in there, (lean, here, there)


def test_concurrent_conversations_on_the_server_answer_as_they_would_alone(
    served: Resources, lora: str
) -> None:
    """Conversations with different adapters at once: the server takes them in turn,
    loading each one's adapter, and nobody gets another's answer or a cut-off reply."""
    from concurrent.futures import ThreadPoolExecutor

    asks = [(adapter, question) for question, _ in FACT_QA[:3] for adapter in (lora, None)]

    def answer(ask: tuple[str | None, str]) -> str:
        adapter, question = ask
        return served.chat_model(adapter=adapter).invoke(question).text

    alone = [answer(ask) for ask in asks]
    with ThreadPoolExecutor(len(asks)) as pool:
        together = list(pool.map(answer, asks))
    assert together == alone


def test_a_reply_through_the_server_stops_at_the_longest_answer(served: Resources) -> None:
    answer = served.chat_model(max_new_tokens=8).invoke("Tell me a long story about the sea.")
    assert 4 <= served.engine.count_tokens(answer.text) <= 9


def test_an_adapter_trained_after_the_server_started_is_served(
    served: Resources, resources: Resources, facts_file: Path
) -> None:
    from tests.documents import train

    train(resources, "lora", "late-lora", facts_file, max_steps=10)
    question, answer = FACT_QA[1]
    assert "bright orange" in answer
    assert "bright orange" in served.chat_model(adapter="late-lora").invoke(question).text
    assert "late-lora" in served.engine.served()


def test_an_adapter_the_server_does_not_have_is_a_clear_error(
    served: Resources, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="model server has no adapter 'untrained'"):
        served.engine.chat_model(GenerationParams(), adapter=tmp_path / "untrained")
    # An adapter named like the base model is not answered by the base model.
    with pytest.raises(BadInput, match="adapter named 'base' cannot be told"):
        served.engine.chat_model(GenerationParams(), adapter=tmp_path / "base")


def test_no_server_at_the_url_is_a_clear_error(settings: Settings) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(ModelLoadError, match="KBOT_MODEL_URL=.*no model server answers"):
        Resources(settings.model_copy(update={"model_url": nobody})).load()


def test_a_model_server_beyond_loopback_needs_a_key(kbot_home: Path) -> None:
    from tests.cli import kbot

    result = kbot("model-server", "--host", "0.0.0.0", "--port", "1", home=kbot_home)
    assert result.returncode == 2
    assert "set KBOT_MODEL_API_KEY" in result.stderr
