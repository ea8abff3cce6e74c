"""Concurrent conversations share forward passes on the one model (continuous batching), and
each still gets the answer it would get alone."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from bot.model import GenerationParams, GenerationStats
from bot.resources import Resources
from bot.service import ChatService
from knowledge.reading import Evidence, reader_messages
from tests.documents import FACT_QA, write_facts


@pytest.fixture(scope="module")
def facts(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> str:
    result = resources.knowledge.ingest("batch-facts", write_facts(tmp_path_factory.mktemp("b")))
    assert result.errors == []
    return "batch-facts"


@pytest.mark.slow
def test_concurrent_chats_on_every_backend_answer_as_they_would_alone(
    resources: Resources, lora: str, facts: str
) -> None:
    """Base, LoRA and RAG (the reader adapter) conversations at once: greedy answers equal
    the answers given alone, and the replies did share forward passes."""
    asks: list[tuple[str, str, dict[str, Any]]] = [
        ("base", "What is the capital of France?", {}),
        ("lora", FACT_QA[0][0], {"adapter": lora}),
        ("rag", "Where does the zorblax festival happen?", {"collection": facts}),
        ("base", "Name three colours of the rainbow.", {}),
        ("lora", FACT_QA[1][0], {"adapter": lora}),
        ("rag", "Who is the captain of the Marigold?", {"collection": facts}),
    ]
    service = ChatService(resources)

    def answer(ask: tuple[str, str, dict[str, Any]]) -> str:
        backend, question, options = ask
        return list(service.reply(question, (), backend, options))[-1].answer

    alone = [answer(ask) for ask in asks]
    batcher = resources.model.batcher
    batcher.peak_rows = 0
    with ThreadPoolExecutor(len(asks)) as pool:
        together = list(pool.map(answer, asks))
    assert together == alone
    assert "Paris" in alone[0] and "Quillby" in alone[2] and "Ada Quenby" in alone[5]
    assert batcher.peak_rows >= 3, "the replies were generated one after another"


def test_a_reply_that_waited_reports_its_wait_apart_from_generation(resources: Resources) -> None:
    loaded = resources.model
    params = GenerationParams(max_new_tokens=24, temperature=0.0)
    rows = loaded.batcher.max_rows
    loaded.batcher.max_rows = 1  # one reply at a time: the second one waits for the first
    try:
        stats = [GenerationStats(), GenerationStats()]

        def ask(i: int) -> None:
            question = [{"role": "user", "content": "Write a long story about the sea."}]
            list(loaded.stream(question, params, stats[i]))

        first = threading.Thread(target=ask, args=(0,))
        first.start()
        while loaded.batcher.rows == 0 and first.is_alive():
            threading.Event().wait(0.01)
        ask(1)
        first.join()
    finally:
        loaded.batcher.max_rows = rows
    assert stats[0].queue_s < stats[1].queue_s
    assert stats[1].queue_s < stats[1].first_token_s <= stats[1].seconds  # type: ignore[operator]
    assert stats[1].completion_tokens == 24


def test_stopping_one_reply_leaves_the_others_in_the_batch_running(resources: Resources) -> None:
    loaded = resources.model
    params = GenerationParams(max_new_tokens=40, temperature=0.0)
    question = [{"role": "user", "content": "Write a long story about the sea."}]
    alone = "".join(loaded.stream(question, params))
    stopped_stats, kept = GenerationStats(), {}

    def keep_going() -> None:
        kept["answer"] = "".join(loaded.stream(question, params))

    thread = threading.Thread(target=keep_going)
    thread.start()
    stream = loaded.stream(question, params, stopped_stats)
    next(stream)
    next(stream)
    stream.close()
    thread.join()
    assert stopped_stats.completion_tokens < 10
    assert kept["answer"] == alone


def test_a_reply_alone_drafts_from_its_prompt_and_answers_the_same(resources: Resources) -> None:
    """Prompt lookup: a reply copying from its passage takes several tokens a forward pass,
    and its greedy answer is the one it gives token by token."""
    loaded = resources.model
    assert resources.reader is not None
    adapter = loaded.add_adapter(resources.reader)
    evidence = [
        Evidence(
            "The Tallow ferry leaves the north pier at 9:15 every morning except on "
            "public holidays.",
            "ferry.md",
            1,
            0.8,
        )
    ]
    messages = reader_messages("When does the Tallow ferry leave?", evidence)

    def reply(prompt_lookup: int) -> tuple[str, int]:
        params = GenerationParams(
            temperature=0.0, repetition_penalty=1.0, max_new_tokens=24, prompt_lookup=prompt_lookup
        )
        passes = loaded.batcher.forward_passes
        answer = "".join(loaded.stream(messages, params, adapter=adapter))
        return answer, loaded.batcher.forward_passes - passes

    (drafted, fewer), (plain, every) = reply(8), reply(0)
    assert drafted == plain and len(plain.split()) >= 3 and plain.strip() in evidence[0].text
    assert fewer < every


def test_a_conversations_next_turn_reads_only_what_is_new(resources: Resources) -> None:
    """The earlier turns' keys and values are kept (the prefix cache): the next turn reads
    only the new message, and answers as it does when it reads the whole prompt."""
    loaded = resources.model
    params = GenerationParams(max_new_tokens=16, temperature=0.0)
    first = [{"role": "user", "content": "What is the capital of France?"}]
    asked = GenerationStats()
    answer = "".join(loaded.stream(first, params, asked)).strip()
    second = [
        *first,
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "And what is the capital of Italy?"},
    ]
    followed = GenerationStats()
    kept = "".join(loaded.stream(second, params, followed))
    assert followed.cached_tokens >= asked.prompt_tokens
    assert followed.cached_tokens < followed.prompt_tokens
    prefixes = loaded.batcher.prefixes
    room = prefixes.max_bytes
    prefixes.clear()
    prefixes.max_bytes = 0
    try:
        whole = GenerationStats()
        assert "".join(loaded.stream(second, params, whole)) == kept
        assert whole.cached_tokens == 0
    finally:
        prefixes.max_bytes = room
