"""The real packaged model, loaded once, through the whole chain."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.model import GenerationParams, GenerationStats, ModelLoadError, load_model
from bot.resources import Resources
from bot.service import ChatService
from bot.settings import PACKAGED_MODEL, Settings, load_settings


def test_greedy_answer_to_a_known_fact(resources: Resources) -> None:
    reply = list(ChatService(resources).reply("What is the capital of France?"))[-1]
    assert "Paris" in reply.answer
    assert reply.tokens > 0 and reply.latency_s > 0


def test_answer_streams_in_several_pieces(resources: Resources) -> None:
    replies = list(ChatService(resources).reply("Name three colours of the rainbow."))
    partial_lengths = [len(r.answer) for r in replies if not r.done]
    assert len(partial_lengths) >= 3
    assert partial_lengths == sorted(partial_lengths)


def test_history_is_used_for_follow_up_questions(resources: Resources) -> None:
    # "its" only makes sense through the history: the answer must be about Paris.
    history = [
        {"role": "user", "content": "What is the capital of France?"},
        {"role": "assistant", "content": "The capital of France is Paris."},
    ]
    reply = list(ChatService(resources).reply("What is its population?", history))[-1]
    assert "Paris" in reply.answer


def test_packaged_model_is_cached_as_plain_safetensors(settings: Settings) -> None:
    cache = settings.models_dir / PACKAGED_MODEL
    assert (cache / "model.safetensors").is_file()
    config = json.loads((cache / "config.json").read_text())
    assert "quantization_config" not in config
    assert not list(cache.parent.glob(".*tmp*")), "no staging folder left behind"


def test_stopping_a_stream_stops_generation_at_once(resources: Resources) -> None:
    """Closing the stream (the chat's stop button) ends generation within a few tokens, not
    at the end of a reply that would run to hundreds."""
    loaded = resources.model
    stats = GenerationStats()
    stream = loaded.stream(
        [{"role": "user", "content": "Write a very long story about the sea."}],
        GenerationParams(max_new_tokens=300),
        stats,
    )
    next(stream)
    stream.close()
    assert 0 < stats.completion_tokens < 20, f"{stats.completion_tokens} tokens after stop"
    assert loaded.lock.acquire(timeout=1), "generation still holds the model after stop"
    loaded.lock.release()


def test_concurrent_conversations_each_get_their_own_answer(resources: Resources) -> None:
    service = ChatService(resources)
    questions = {"a": "What is the capital of France?", "b": "What is the capital of Italy?"}
    answers: dict[str, str] = {}

    def ask(key: str) -> None:
        answers[key] = list(service.reply(questions[key]))[-1].answer

    threads = [threading.Thread(target=ask, args=(key,)) for key in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert "Paris" in answers["a"] and "Rome" in answers["b"]


def test_history_longer_than_the_context_is_trimmed_from_the_oldest(resources: Resources) -> None:
    loaded = resources.model
    turn = "word " * 1500
    messages = [{"role": "system", "content": "S"}]
    for _ in range(4):
        messages += [{"role": "user", "content": turn}, {"role": "assistant", "content": turn}]
    messages.append({"role": "user", "content": "Last question?"})
    ids = loaded.encode_chat(messages, max_new_tokens=100)
    assert ids.shape[1] <= loaded.context_tokens - 100
    assert "Last question?" in loaded.tokenizer.decode(ids[0])


def test_a_model_setting_that_cannot_load_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"KBOT_MODEL='.*not-a-model' could not be loaded"):
        load_model(load_settings(home=tmp_path, model=str(tmp_path / "not-a-model")))


@pytest.mark.slow
def test_cli_fails_at_start_on_a_bad_model(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "ask",
            "hi",
            "--home",
            str(tmp_path),
            "--model",
            "no-such-org/no-such-model",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "KBOT_MODEL='no-such-org/no-such-model' could not be loaded" in result.stderr


def test_stop_strings_end_the_answer_before_them(resources: Resources) -> None:
    from bot.llm import until_stop

    assert "".join(until_stop(iter(["Par", "is. Lon", "don."]), [". L"])) == "Paris"
    assert "".join(until_stop(iter(["a", "b"]), ["zz"])) == "ab"
    model = resources.chat_model(max_new_tokens=24)  # greedy: the same answer each time
    question = "Name three colours of the rainbow."
    free = model.invoke(question).text
    stop = free[len(free) // 2 :][:3]  # a string the answer holds past its start
    stopped = model.invoke(question, stop=[stop]).text
    assert stopped == free[: free.index(stop)] and len(stopped) < len(free)
