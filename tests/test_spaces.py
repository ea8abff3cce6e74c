"""Running as a Hugging Face Space does: a fresh environment from `requirements.txt` alone, then
`launch.py` with the Space's environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from gradio_client import Client

from bot.spaces import space_defaults
from tests.conftest import free_port
from tests.test_server import _wait_for

ROOT = Path(__file__).resolve().parents[1]


def test_a_space_listens_everywhere_and_keeps_data_in_persistent_storage(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    space = {"SPACE_ID": "someone/knowledge-bot"}
    assert space_defaults(space, data) == {"host": "0.0.0.0", "home": data / "kbot"}
    assert space_defaults(space, tmp_path / "none") == {"host": "0.0.0.0"}  # no storage
    assert space_defaults(space | {"KBOT_HOST": "127.0.0.1", "KBOT_HOME": "/x"}, data) == {}
    assert space_defaults({}, data) == {}  # not a Space


def test_readme_header_makes_the_repository_a_gradio_space() -> None:
    header = (ROOT / "README.md").read_text().split("---")[1]
    assert "sdk: gradio" in header and "app_file: launch.py" in header


@pytest.mark.slow
def test_a_fresh_environment_from_requirements_alone_starts_and_answers(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        # Without compiling every installed module up front (a third of the install's time
        # here): the app compiles the ones it imports when it starts.
        [python, "-m", "pip", "install", "-q", "--no-compile", "-r", "requirements.txt"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert installed.returncode == 0, installed.stderr[-3000:]
    port = free_port()
    environment = {
        key: value for key, value in os.environ.items() if not key.startswith("KBOT_")
    } | {"SPACE_ID": "someone/knowledge-bot", "KBOT_PORT": str(port)}
    home = Path.home() / ".cache" / "kbot-tests" / f"space-{port}"
    environment["KBOT_HOME"] = str(home)
    process = subprocess.Popen(
        [python, "launch.py"],  # as a Space runs it: from the repository's root
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/", process, seconds=600)
        messages = Client(f"http://127.0.0.1:{port}/", verbose=False).predict(
            "What is the capital of France?", "base", {}, api_name="/chat"
        )
        assert "Paris" in messages[0]["content"]
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=60)
        subprocess.run(["rm", "-rf", str(home)], check=False)
    assert "Chat only:" in output  # listening on 0.0.0.0 without users
