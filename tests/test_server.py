"""A launched Gradio server, driven through its public API with gradio_client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import httpx
import pytest
from gradio_client import Client

from bot.settings import Settings
from tests.conftest import free_port


@pytest.fixture(scope="module")
def client(server: str) -> Client:
    return Client(server, verbose=False)


def answer_and_info(result: list[dict]) -> tuple[str, str]:
    answer, info = result
    return answer["content"], info["metadata"]["title"]


def test_chat_endpoint_answers_with_the_real_model(client: Client) -> None:
    result = client.predict("What is the capital of France?", "base", {}, api_name="/chat")
    answer, info = answer_and_info(result)
    assert "Paris" in answer
    assert info.startswith("Base model ·") and " token" in info


def test_chat_streams_growing_partial_answers(client: Client) -> None:
    job = client.submit("Name three colours of the rainbow.", "base", {}, api_name="/chat")
    partials = [output for output in job if isinstance(output, str)]
    assert len(partials) >= 3
    assert all(a in b for a, b in zip(partials, partials[1:], strict=False))


def test_backend_and_options_belong_to_the_request(client: Client) -> None:
    result = client.predict("ping", "echo", {"prefix": "echo: "}, api_name="/chat")
    answer, info = answer_and_info(result)
    assert answer == "echo: ping" and info.startswith("Echo ·")


def not_answered(result: list[dict]) -> str:
    """The reason shown in the conversation for a message that could not be answered."""
    (line,) = result
    assert line["role"] == "assistant" and "Not answered" in line["content"]
    return line["metadata"]["title"]


def test_unknown_backend_gets_a_clear_error(client: Client) -> None:
    reason = not_answered(client.predict("hi", "nope", {}, api_name="/chat"))
    assert re.search(r"Unknown backend 'nope'\. Available: .*base", reason)


def test_bad_options_get_a_clear_error(client: Client) -> None:
    result = client.predict("hi", "echo", {"colour": "red"}, api_name="/chat")
    assert "Invalid options for backend 'echo': colour" in not_answered(result)
    result = client.predict("hi", "echo", ["not", "an", "object"], api_name="/chat")
    assert "expected a JSON object" in not_answered(result)


def test_empty_message_gets_a_helpful_reply(client: Client) -> None:
    answer, _ = answer_and_info(client.predict("", "base", {}, api_name="/chat"))
    assert "empty" in answer.lower()


def _wait_for(url: str, process: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(url)


@pytest.mark.slow
def test_launch_with_share_offline_says_why_and_keeps_serving(settings: Settings) -> None:
    port = free_port()
    root = Path(__file__).resolve().parents[1]
    process = subprocess.Popen(
        [
            sys.executable,
            str(root / "launch.py"),
            "--home",
            str(settings.home),
            "--port",
            str(port),
            "--share",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=root,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process)
        answer, _ = answer_and_info(
            Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
                "What is the capital of France?", "base", {}, api_name="/chat"
            )
        )
        assert "Paris" in answer
        # Asked for a share link without users: chat only, no tab that changes data.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=10) as response:
            config = json.load(response)
        elem_ids = {c.get("props", {}).get("elem_id") for c in config["components"]}
        assert "message" in elem_ids and not elem_ids & {"kb-add", "train-start"}
        assert "img-src 'self'" in config["head"]  # the content policy the page applies
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as response:
            assert "img-src 'self'" in response.headers["content-security-policy"]
        for schema in ("/openapi.json", "/docs"):  # no route list for anyone who asks
            with pytest.raises(urllib.error.HTTPError, match="404"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{schema}", timeout=10)
        # Handlers called with too few inputs: an error, without the server's object reprs.
        from tests.test_access import call, handler_of

        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
            refused = call(client, *handler_of(config, "export"), [])
            assert not refused["success"] and " object at 0x" not in json.dumps(refused)
            # The message box's send is checked before it queues: refused at the door.
            refused = call(client, *handler_of(config, "message"), [])
        assert not refused["success"] and "object at" not in json.dumps(refused), refused
        assert "didn't receive enough input values" in refused["output"]["error"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=30)
    assert "Chat only:" in output
    share_lines = [line for line in output.splitlines() if "share link" in line.lower()]
    assert len(share_lines) == 1, output
    assert share_lines[0].startswith("No share link:") and "serving locally" in share_lines[0]


def test_an_answer_not_yet_begun_says_what_it_waits_for(
    client: Client, resources, tmp_path: Path
) -> None:
    (tmp_path / "depot.txt").write_text("The Quorn depot opens at six in the morning.")
    resources.knowledge.ingest("waiting", [tmp_path / "depot.txt"])
    job = client.submit(
        "When does the Quorn depot open?", "rag", {"collection": "waiting"}, api_name="/chat"
    )
    outputs = list(job)
    states = [
        o[0]["metadata"]["title"]
        for o in outputs
        if isinstance(o, list) and o and (o[0].get("metadata") or {}).get("status") == "pending"
    ]
    assert states == ["Reading 1 passage…"], outputs[:3]
    answer, info = answer_and_info(outputs[-1])
    assert "six" in answer and info.startswith("RAG")
