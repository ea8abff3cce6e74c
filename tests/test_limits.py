"""Every costly request is bounded, checked over HTTP against a launched server as an attacker
would call it: by `fn_index` through Gradio's queue, with values no form would send."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.access import Access, Users
from bot.resources import Resources
from bot.service import ChatService
from bot.training import question_set_path
from tests.documents import write_facts
from tests.test_access import PASSWORDS, call, handler_of, inputs_of, launch, session


@pytest.fixture(scope="module")
def served(resources: Resources, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    users = Users()
    users.add("ada", PASSWORDS["ada"], "admin")
    resources.knowledge.ingest("limits", write_facts(tmp_path_factory.mktemp("limits")))
    app, url = launch(resources, Access("signed-in", users))
    yield url
    app.close()


def train_form(config: dict, **fields: Any) -> tuple[int, int, list]:
    """The Train tab's handler and its inputs, filled by elem_id (`train-<field>`)."""
    fn_index, trigger = handler_of(config, "train-start")
    values = {f"train-{key}": value for key, value in fields.items()}
    return fn_index, trigger, inputs_of(config, fn_index, values)


class Watcher:
    """A browser tab joined to Gradio's queue: reads the event stream on a thread of its own
    and, on `leave()`, closes its connection from that same thread, as closing the tab would
    (closing an httpx client from another thread does not reliably drop a stream in use)."""

    def __init__(self, url: str, fn_index: int, trigger: int, data: list) -> None:
        self.client = session(url, "ada")
        session_hash = uuid.uuid4().hex[:10]
        joined = self.client.post(
            "/gradio_api/queue/join",
            json={"data": data, "fn_index": fn_index, "trigger_id": trigger,
                  "session_hash": session_hash, "event_data": None},
        )  # fmt: skip
        assert joined.status_code == 200, joined.text
        self.seen: list[str] = []
        self._leaving = threading.Event()
        request = self.client.build_request(
            "GET", "/gradio_api/queue/data", params={"session_hash": session_hash}, timeout=300
        )
        self._stream = self.client.send(request, stream=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        try:
            for line in self._stream.iter_lines():  # a message or heartbeat at least every 15 s
                if self._leaving.is_set():
                    break
                if line.startswith("data:"):
                    self.seen.append(json.loads(line[5:])["msg"])
        except httpx.HTTPError:
            pass
        finally:
            self._stream.close()
            self.client.close()

    def wait_for(self, kind: str, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while kind not in self.seen and time.monotonic() < deadline:
            assert "process_completed" not in self.seen, self.seen
            time.sleep(0.2)
        return kind in self.seen

    def leave(self) -> None:
        self._leaving.set()
        self._reader.join(timeout=60)
        assert not self._reader.is_alive(), "the tab could not close its connection"


def training_processes() -> list[str]:
    return [p.name for p in multiprocessing.active_children() if p.name.startswith("kbot-train")]


def test_training_beyond_the_servers_limits_is_refused(served: str) -> None:
    admin = session(served, "ada")
    config = admin.get("/config").json()
    refusals = {
        "batch_size": (1_000_000, "Batch size 1,000,000 is over this server's limit of 32 "
                       "(setting KBOT_TRAIN_MAX_BATCH)."),
        "lora_r": (1_000_000, "LoRA rank 1,000,000 is over this server's limit of 64"),
        "max_steps": (10**9, "Steps 1,000,000,000 is over this server's limit of 2,000"),
        "max_length": (100_000, "Tokens per example 100,000 is over this server's limit"),
    }  # fmt: skip
    for field, (value, message) in refusals.items():
        fn_index, trigger, data = train_form(
            config, method="lora", name="too-big", collection="limits", **{field: value}
        )
        refused = call(admin, fn_index, trigger, data)
        assert not refused["success"] and message in refused["output"]["error"], refused
    assert not training_processes()


@pytest.mark.slow
def test_one_training_at_a_time_and_a_client_that_leaves_cancels_its_run(
    served: str, resources: Resources
) -> None:
    config = session(served, "ada").get("/config").json()
    most_at_once, watching = [0], threading.Event()

    def watch() -> None:  # how many training processes ever ran side by side
        while not watching.is_set():
            most_at_once[0] = max(most_at_once[0], len(training_processes()))
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    tabs = {}
    for name in ("first", "second"):
        fn_index, trigger, data = train_form(
            config, method="lora", name=name, collection="limits", max_steps=2000
        )
        tabs[name] = Watcher(served, fn_index, trigger, data)
        if name == "first":  # training, in a process of its own
            assert tabs["first"].wait_for("process_generating", 240), tabs["first"].seen
    first, second = tabs["first"], tabs["second"]
    time.sleep(5)
    assert "estimation" in second.seen and "process_starts" not in second.seen  # queued
    first.leave()  # the first browser tab is closed
    assert second.wait_for("process_generating", 240)  # the first run ended; the second began
    second.leave()
    deadline = time.monotonic() + 240
    while training_processes() and time.monotonic() < deadline:
        time.sleep(1)
    watching.set()
    watcher.join()
    assert not training_processes(), "a run kept training after its client left"
    assert most_at_once[0] == 1
    assert not {"first", "second"} & set(resources.artifacts.names())


def test_question_sets_are_written_from_a_bounded_number_of_chunks(served: str) -> None:
    admin = session(served, "ada")
    config = admin.get("/config").json()
    fn_index, trigger = handler_of(config, "compare-generate")
    refused = call(admin, fn_index, trigger, ["limits", 10**7])
    assert not refused["success"]
    assert "1 to 200 chunks at a time (setting KBOT_QA_MAX_CHUNKS)" in refused["output"]["error"]


@pytest.mark.slow
def test_a_long_history_from_the_client_is_cut_to_the_newest_turns(resources: Resources) -> None:
    """The client sends the history: 200 turns of 12,800 characters each reach the model as
    at most `max_history_chars` of the newest ones."""
    history = [
        {"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i} " + "x" * 12_800}
        for i in range(200)
    ] + [
        {"role": "user", "content": "Hello, who are you?"},
        {"role": "assistant", "content": "A bot."},
    ]  # noqa: E501
    *_, reply = ChatService(resources).reply("And what can you do?", history, "base")
    limit = resources.settings.max_history_chars
    assert 0 < reply.prompt_tokens < limit // 2  # a token is about 4 characters
    *_, short = ChatService(resources).reply("And what can you do?", history[-2:], "base")
    assert reply.prompt_tokens == short.prompt_tokens  # the long turns were all left out


def test_options_that_are_not_an_object_are_refused_in_one_line(
    resources: Resources,
) -> None:
    from bot.backends import BackendError

    for options in (["collection", "x"], "rag", 3):
        with pytest.raises(BackendError, match=r"expected a JSON object") as caught:
            next(ChatService(resources).reply("Hi", (), "rag", options))  # type: ignore[arg-type]
        assert "\n" not in str(caught.value)


def test_docx_limits_come_from_the_settings(tmp_path: Path) -> None:
    from bot.settings import load_settings

    limits = load_settings(home=tmp_path, max_file_mb=2, max_unpacked_mb=7).file_limits
    assert (limits.max_bytes, limits.max_unpacked_bytes) == (2_000_000, 7_000_000)


def test_question_set_names_from_a_client_never_become_paths(
    served: str, resources: Resources
) -> None:
    admin = session(served, "ada")
    config = admin.get("/config").json()
    fn_index, trigger = handler_of(config, "compare-saved")
    # Gradio refuses values outside a dropdown's choices; the handlers check again.
    for name in ("../../../../etc/passwd", "/etc/passwd", "limits.jsonl"):
        refused = call(admin, fn_index, trigger, [name])
        assert not refused["success"] and "root:" not in json.dumps(refused), refused
    fn_index, trigger, data = train_form(
        config, method="lora", name="qa", **{"qa-set": "../../../../etc/passwd"}
    )
    refused = call(admin, fn_index, trigger, data)
    assert not refused["success"] and "root:" not in json.dumps(refused), refused
    with pytest.raises(LookupError, match="Unknown question set"):
        question_set_path(resources, "../../../../etc/passwd")


def test_errors_reach_the_user_as_one_line(served: str) -> None:
    admin = session(served, "ada")
    config = admin.get("/config").json()
    fn_index, trigger, data = train_form(
        config, method="lora", name="bad-recipe", collection="limits", epochs=-1
    )
    refused = call(admin, fn_index, trigger, data)
    error = refused["output"]["error"]
    assert error == "Invalid recipe: epochs: Input should be greater than 0"


def test_files_handed_to_browsers_are_deleted_once_old() -> None:
    import os

    from bot.ui.common import download_folder

    old = download_folder(3600)
    (old / "conversation.json").write_text("{}")
    recent = download_folder(3600)
    assert old.exists() and recent.parent == old.parent
    os.utime(old, (time.time() - 7200, time.time() - 7200))  # handed out two hours ago
    download_folder(3600)
    assert not old.exists() and recent.exists()


def test_messages_hide_server_paths_but_do_not_rename_what_was_typed() -> None:
    from common.text import one_line

    shown = one_line("Invalid collection name '/abs/x': use letters. Read /srv/data/a/b.md")
    assert shown == "Invalid collection name '…/x': use letters. Read …/b.md"


def test_a_reply_that_waits_too_long_for_the_model_gets_a_clear_busy_error(
    resources: Resources,
) -> None:
    from bot.model import GenerationParams, ModelBusy
    from common import compute

    question = [{"role": "user", "content": "Name a colour."}]
    released = threading.Event()
    busy = compute.submit(released.wait)  # the compute thread is taken until released
    try:
        with pytest.raises(ModelBusy, match="KBOT_MAX_WAIT_S"):
            params = GenerationParams(max_new_tokens=8, max_wait_s=1)
            list(resources.model.stream(question, params))
    finally:
        released.set()
        busy.result()
    # The request that gave up left the queue: the next one is answered.
    assert "".join(resources.model.stream(question, GenerationParams(max_new_tokens=8)))
