"""A server killed with `kill -9` in the middle of a training: nothing of the training may
outlive it, and a restarted server trains again."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import psutil
import pytest

from bot.settings import Settings
from tests.conftest import free_port
from tests.test_access import run_handler, upload
from tests.test_server import _wait_for

ROOT = Path(__file__).resolve().parents[1]


def start_server(home: Path, port: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(ROOT / "launch.py"), "--home", str(home), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )


def training_children(server: subprocess.Popen) -> list[psutil.Process]:
    """The server's training processes (multiprocessing's spawned children, not its helper
    that tracks semaphores)."""
    found = []
    for child in psutil.Process(server.pid).children(recursive=True):
        try:
            command = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "multiprocessing.spawn" in command and "resource_tracker" not in command:
            found.append(child)
    return found


def train(url: str, name: str, data: Path, steps: int) -> dict:
    client = httpx.Client(base_url=url, timeout=600)
    values = {
        "train-method": "lora",
        "train-name": name,
        "train-max_steps": steps,
        "train-overwrite": True,
        "train-files": [upload(client, data)],
    }
    return run_handler(client, "train-start", values)


@pytest.mark.slow
def test_a_killed_server_leaves_no_training_behind(settings: Settings, facts_file: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(settings.home, port)
    try:
        _wait_for(url + "/", server)
        # The browser keeps the training's stream open; the server dies under it.
        threading.Thread(
            target=lambda: _swallow(train, url, "orphan-check", facts_file, 2000), daemon=True
        ).start()
        run_owner = settings.runs_dir / "orphan-check" / "kbot-run.pid"
        deadline = time.monotonic() + 180
        while not (children := training_children(server)) or not run_owner.is_file():
            assert time.monotonic() < deadline, "the training never started"
            time.sleep(0.5)
        server.kill()  # kill -9: no handler of the server runs
        server.wait(timeout=30)
        gone, alive = psutil.wait_procs(children, timeout=15)
        assert not alive, [p.cmdline() for p in alive]
    finally:
        server.kill()
        server.communicate(timeout=30)

    # A new server on the same data folder tells of the run that died, and trains again.
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(settings.home, port)
    try:
        _wait_for(url + "/", server)
        trained = train(url, "orphan-check", facts_file, 2)
        assert trained["success"], trained
        assert (settings.adapters_dir / "orphan-check" / "kbot_meta.json").is_file()
        assert not training_children(server)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=60)
    assert "Training 'orphan-check' stopped halfway" in output


def _swallow(function, *args) -> None:  # noqa: ANN001
    with contextlib.suppress(Exception):  # the server is killed under it
        function(*args)
