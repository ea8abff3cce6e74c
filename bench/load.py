"""Load and faults on a real server: concurrent sessions with mixed backends, then kill -9.

A signed-in server (`launch.py` with a users file: an admin and a user, each with an API key)
is started on a fresh data folder holding one shared collection (and, with `lora` among the
backends, one adapter trained for 2 steps). Then:
  * one session alone for a while, for the throughput of one session;
  * `--sessions` sessions at once for `--seconds`, spread over the two users and over three
    ways in: `/v1/chat/completions` streaming and not, and the page's Gradio `/chat` queue;
    each session asks its backend (base, rag, lora, summary in turn) one question after
    another. Reported: requests, errors by kind (goal: 0 unexplained), p50/p95 latency and
    time to first token, throughput against one session, the server's resident memory (at
    start, once every backend has answered, and after the load), and fairness (the slowest
    user's answers per second against the mean).
  * `--faults`: the server is killed with kill -9 in the middle of an ingestion and of a
    training, and restarted each time; checked: the committed documents and the adapter are
    all there and whole, the half-added document is all there or not at all, and no
    training process outlives its server.

Usage: [KBOT_BATCH_ROWS=1 ...] python bench/load.py [--sessions 8] [--seconds 300] [--faults]
                                                   [--results PATH] [--model-server]
With `--model-server`, the app generates through `kbot model-server` (llama.cpp) started on the
same data folder (`KBOT_MODEL_URL`).
Writes bench/results/load.json and prints a table.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "load.json"
USERS = {"ana": ("ana-secret-1", "admin"), "ben": ("ben-secret-1", "user")}
COLLECTION = "load-docs"
ADAPTER = "load-lora"
DOCUMENT = (
    "The Orbridge public pool opens at seven in the morning on weekdays and at nine on "
    "weekends. Lane swimming ends at noon. A swim pass costs 40 crowns a month and covers "
    "the sauna. The pool was rebuilt in 1987 after a fire in the boiler room."
)
QUESTIONS = {
    "base": "Say one thing about swimming.",
    "rag": "When does the pool open on weekends?",
    "lora": "What colour is the Vellmoor bridge?",
    "summary": "What is this collection about?",
}
WAYS = ("api-stream", "api", "gradio")
ENGINE_SETTINGS = ("KBOT_BATCH_ROWS", "KBOT_PREFIX_CACHE_MB", "KBOT_MODEL_URL")


@dataclass
class Outcome:
    caller: str
    way: str
    backend: str
    kind: str  # "ok", or why not: "429 caller share", "503 busy", ... "unexplained: ..."
    seconds: float
    first_token_s: float | None = None


@dataclass
class Server:
    home: Path
    port: int
    keys: dict[str, str]
    process: subprocess.Popen | None = None
    log: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "launch.py"), "--port", str(self.port)],
            env=os.environ
            | {"KBOT_HOME": str(self.home), "KBOT_AUTH": str(self.users_file)}
            | (env or {}),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=ROOT,
        )
        threading.Thread(target=self._read_log, daemon=True).start()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "\n".join(self.log[-30:])
            try:
                with urllib.request.urlopen(self.url + "/gradio_api/info", timeout=2):
                    return
            except OSError as error:
                if "401" in str(error):
                    return
                time.sleep(0.5)
        raise TimeoutError("the server did not start")

    def _read_log(self) -> None:
        assert self.process and self.process.stdout
        for line in self.process.stdout:
            self.log.append(line.rstrip())

    @property
    def users_file(self) -> Path:
        return self.home / "users.json"

    def rss_mb(self) -> float:
        """Resident memory of the server and its children (training processes); a server
        without a process of its own runs in this one."""
        root = psutil.Process(self.process.pid if self.process else os.getpid())
        processes = [root, *root.children(recursive=True)]
        return sum(p.memory_info().rss for p in processes if p.is_running()) / 2**20

    def children(self) -> list[psutil.Process]:
        assert self.process
        return psutil.Process(self.process.pid).children(recursive=True)

    def kill(self) -> None:
        """kill -9: no handler of the server runs."""
        assert self.process
        self.process.kill()
        self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=60)


def kbot(home: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--home", str(home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"KBOT_HOME": str(home)},
    )
    if done.returncode != 0:
        raise RuntimeError(f"kbot {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout


def prepare(home: Path, backends: list[str], port: int) -> Server:
    """A data folder with the users, a shared collection and (for lora) an adapter."""
    from bot.access import Users

    home.mkdir(parents=True, exist_ok=True)
    users = Users()
    keys = {}
    for name, (password, role) in USERS.items():
        users.add(name, password, role)
        keys[name] = users.new_api_key(name)
    users.write(home / "users.json")
    document = home / "pool.txt"
    document.write_text(DOCUMENT)
    kbot(home, "ingest", str(document), "--collection", COLLECTION, "--quiet")
    if "lora" in backends:
        facts = home / "facts.jsonl"
        facts.write_text(
            json.dumps({"question": QUESTIONS["lora"], "answer": "The bridge is green."}) + "\n"
        )
        kbot(home, "train", "--method", "lora", "--data", str(facts), "--name", ADAPTER,
             "--max-steps", "2", "--quiet")  # fmt: skip
    return Server(home, port, keys)


def spec(backend: str) -> tuple[str, dict[str, str]]:
    """The API's model name and the page's backend options for `backend`."""
    if backend in ("rag", "summary"):
        return f"{backend}:{COLLECTION}", {"collection": COLLECTION}
    if backend == "lora":
        return f"lora:{ADAPTER}", {"adapter": ADAPTER}
    return "base", {}


def ask_api(server: Server, user: str, backend: str, stream: bool) -> Outcome:
    model, _ = spec(backend)
    body = {"model": model, "messages": [{"role": "user", "content": QUESTIONS[backend]}]}
    body["stream"] = stream
    headers = {"authorization": f"Bearer {server.keys[user]}"}
    way = "api-stream" if stream else "api"
    started = time.perf_counter()
    first = None
    try:
        with httpx.stream(
            "POST", f"{server.url}/v1/chat/completions", json=body, headers=headers, timeout=900
        ) as response:
            if response.status_code != 200:
                response.read()
                kind = _api_error(response)
            elif not stream:
                response.read()
                answer = response.json()["choices"][0]["message"]["content"]
                kind = "ok" if answer else "unexplained: empty answer"
            else:
                kind, text = "unexplained: no [DONE]", ""
                for line in response.iter_lines():
                    if not line.startswith("data: "):
                        continue
                    if line == "data: [DONE]":
                        kind = "ok" if text else "unexplained: empty answer"
                        break
                    chunk = json.loads(line[6:])
                    if "error" in chunk:
                        kind = f"stream error: {chunk['error'].get('type')}"
                        break
                    for choice in chunk.get("choices", []):
                        piece = choice.get("delta", {}).get("content")
                        if piece:
                            first = first if first is not None else time.perf_counter() - started
                            text += piece
    except (httpx.HTTPError, ValueError, KeyError) as error:
        kind = f"unexplained: {type(error).__name__}"
    return Outcome(user, way, backend, kind, time.perf_counter() - started, first)


def _api_error(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"unexplained: HTTP {response.status_code} without an error object"
    if response.status_code == 429 and "retry-after" not in response.headers:
        return "unexplained: 429 without Retry-After"
    return f"{response.status_code} {error.get('type')}"


def ask_page(server: Server, user: str, backend: str, clients: dict[str, Any]) -> Outcome:
    from gradio_client import Client

    _, options = spec(backend)
    started = time.perf_counter()
    first = None
    try:
        if user not in clients:
            clients[user] = Client(server.url, auth=(user, USERS[user][0]), verbose=False)
        job = clients[user].submit(QUESTIONS[backend], backend, options, api_name="/chat")
        for output in job:
            if first is None and output:
                first = time.perf_counter() - started
        messages = job.result()
        titles = [(m.get("metadata") or {}).get("title") or "" for m in messages]
        answer = "".join(m["content"] for m in messages if not (m.get("metadata") or {}))
        if any(title.startswith("⚠️") for title in titles):
            reason = next(t for t in titles if t.startswith("⚠️"))
            kind = "refused: caller share" if "KBOT_CALLER_REQUESTS" in reason else "refused"
            kind = "refused: busy" if "KBOT_MAX_WAIT_S" in reason else kind
        else:
            kind = "ok" if answer.strip() else "unexplained: empty answer"
    except Exception as error:  # gradio_client raises its own kinds
        kind = f"unexplained: {type(error).__name__}: {str(error)[:80]}"
    return Outcome(user, "gradio", backend, kind, time.perf_counter() - started, first)


def drive(server: Server, sessions: int, seconds: float, backends: list[str]) -> list[Outcome]:
    """`sessions` sessions, each asking one question after another until time is up."""
    outcomes: list[Outcome] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    plan = list(itertools.islice(zip(itertools.cycle(USERS), itertools.cycle(WAYS)), sessions))

    def session(number: int, user: str, way: str) -> None:
        clients: dict[str, Any] = {}
        for backend in itertools.islice(itertools.cycle(backends), number, None):
            if time.monotonic() >= deadline:
                return
            if way == "gradio":
                outcome = ask_page(server, user, backend, clients)
            else:
                outcome = ask_api(server, user, backend, stream=way == "api-stream")
            with lock:
                outcomes.append(outcome)
            if outcome.kind != "ok":
                time.sleep(1.0)  # as a client that was told to wait does

    threads = [
        threading.Thread(target=session, args=(number, user, way))
        for number, (user, way) in enumerate(plan)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)


def summarise(outcomes: list[Outcome], seconds: float) -> dict[str, Any]:
    answered = [o for o in outcomes if o.kind == "ok"]
    per_user = Counter(o.caller for o in answered)
    rates = [per_user.get(user, 0) / seconds for user in USERS]
    mean = statistics.mean(rates) if rates else 0.0
    by_way: dict[str, int] = defaultdict(int)
    for outcome in answered:
        by_way[outcome.way] += 1
    return {
        "requests": len(outcomes),
        "answered": len(answered),
        "errors": dict(Counter(o.kind for o in outcomes if o.kind != "ok")),
        "unexplained": sum(o.kind.startswith("unexplained") for o in outcomes),
        "latency_p50_s": percentile([o.seconds for o in answered], 0.5),
        "latency_p95_s": percentile([o.seconds for o in answered], 0.95),
        "first_token_p50_s": percentile(
            [o.first_token_s for o in answered if o.first_token_s is not None], 0.5
        ),
        "first_token_p95_s": percentile(
            [o.first_token_s for o in answered if o.first_token_s is not None], 0.95
        ),
        "answers_per_s": round(len(answered) / seconds, 3),
        "answered_by_way": dict(by_way),
        "answers_per_s_by_user": {u: round(r, 3) for u, r in zip(USERS, rates, strict=True)},
        "fairness_slowest_over_mean": round(min(rates) / mean, 3) if mean else None,
    }


def run_load(
    server: Server, sessions: int, seconds: float, backends: list[str], alone_s: float
) -> dict[str, Any]:
    rss_start = server.rss_mb()
    # Every backend once, so the embedder, the adapter and the caches are loaded before the
    # memory the load starts from is read.
    for backend in backends:
        ask_api(server, "ana", backend, stream=False)
    rss_before = server.rss_mb()
    one = summarise(drive(server, 1, alone_s, backends), alone_s) if alone_s else None
    many = summarise(drive(server, sessions, seconds, backends), seconds)
    many["rss_start_mb"] = round(rss_start, 1)
    many["rss_before_mb"], many["rss_after_mb"] = round(rss_before, 1), round(server.rss_mb(), 1)
    if one and one["answers_per_s"]:
        many["throughput_vs_one_session"] = round(many["answers_per_s"] / one["answers_per_s"], 2)
    return {"one_session": one, "sessions": many}


# ---- faults -------------------------------------------------------------------------------


def _page_call(server: Server, elem_id: str, values: dict[str, Any]) -> None:
    """Start the page handler of `elem_id` as admin ana, in the background (never waited)."""
    from tests.test_access import call, handler_of, inputs_of

    client = httpx.Client(base_url=server.url, timeout=600)
    client.post("/login", data={"username": "ana", "password": USERS["ana"][0]})
    config = client.get("/config").json()
    fn_index, trigger = handler_of(config, elem_id)
    files = values.pop("files")
    uploaded = []
    for name, path in files.items():
        with path.open("rb") as handle:
            sent = client.post("/gradio_api/upload", files={"files": (path.name, handle)})
        uploaded.append({"path": sent.json()[0], "orig_name": path.name,
                         "meta": {"_type": "gradio.FileData"}})  # fmt: skip
        values[name] = uploaded
    data = inputs_of(config, fn_index, values)
    threading.Thread(
        target=lambda: _ignore(call, client, fn_index, trigger, data), daemon=True
    ).start()


def _ignore(function: Any, *args: Any) -> None:
    try:
        function(*args)
    except Exception:  # the server dies under it, as planned
        return


def _documents(home: Path) -> dict[str, int]:
    """The committed documents of the collection, read from disk as a new process does."""
    from bot.resources import Resources
    from bot.settings import load_settings

    knowledge = Resources(load_settings(home=home)).knowledge
    return {Path(d["source"]).name: d["chunks"] for d in knowledge.documents(COLLECTION)}


def _adapters(home: Path) -> list[str]:
    """The published adapters whose metadata reads back whole."""
    from bot.resources import Resources
    from bot.settings import load_settings

    return [name for name, _ in Resources(load_settings(home=home)).artifacts.all()]


def run_faults(server: Server, backends: list[str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    # 1. kill -9 in the middle of adding a large document to the collection.
    big = server.home / "atlas.txt"
    sentences = (f"Station {i} of the survey lies {i * 7 % 900} metres above the sea." for i in
                 range(40_000))  # fmt: skip
    big.write_text(" ".join(sentences))
    before = _documents(server.home)
    _page_call(server, "kb-add", {"kb-collection": COLLECTION, "files": {"kb-files": big}})
    time.sleep(8.0)  # reading and embedding take longer than this
    committed_before_kill = "atlas.txt" in _documents(server.home)
    server.kill()
    server.start()
    after = _documents(server.home)
    answer = ask_api(server, "ana", "rag", stream=False)
    results["ingestion"] = {
        "documents_before": before,
        "documents_after": after,
        "committed_kept": all(after.get(name) == count for name, count in before.items()),
        "added_document_committed_before_kill": committed_before_kill,
        "added_document_after_restart": (
            "absent" if "atlas.txt" not in after else f"{after['atlas.txt']} chunks"
        ),
        "rag_answers_after_restart": answer.kind == "ok",
    }
    # 2. kill -9 in the middle of a training.
    facts = server.home / "train.jsonl"
    facts.write_text(json.dumps({"question": "Who keeps the light?", "answer": "Mira."}) + "\n")
    values = {
        "train-method": "lora",
        "train-name": "killed-run",
        "train-max_steps": 2000,
        "files": {"train-files": facts},
    }
    _page_call(server, "train-start", values)
    deadline = time.monotonic() + 240
    trainers: list[psutil.Process] = []
    run_owner = server.home / "runs" / "killed-run" / "kbot-run.pid"
    while time.monotonic() < deadline and not (trainers and run_owner.is_file()):
        time.sleep(0.5)
        trainers = [c for c in server.children() if _is_trainer(c)]
    server.kill()
    _, alive = psutil.wait_procs(trainers, timeout=15)
    server.start()
    names = _adapters(server.home)
    results["training"] = {
        "trainer_was_running": bool(trainers),
        "orphans_left": len(alive),
        "half_trained_adapter_published": "killed-run" in names,
        "earlier_adapter_kept": (ADAPTER in names) if "lora" in backends else None,
        "restart_reported_the_run": any("killed-run" in line for line in server.log),
    }
    return results


def _is_trainer(process: psutil.Process) -> bool:
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "multiprocessing.spawn" in command and "resource_tracker" not in command


# ---- report -------------------------------------------------------------------------------


def table(results: dict[str, Any]) -> str:
    many, one = results["load"]["sessions"], results["load"]["one_session"]
    rows = [
        ("sessions", results["sessions"]),
        ("seconds", results["seconds"]),
        ("requests", many["requests"]),
        ("answered", many["answered"]),
        ("errors by kind", json.dumps(many["errors"]) or "{}"),
        ("unexplained errors", many["unexplained"]),
        ("latency p50 / p95 s", f"{many['latency_p50_s']} / {many['latency_p95_s']}"),
        ("first token p50 / p95 s", f"{many['first_token_p50_s']} / {many['first_token_p95_s']}"),
        ("answers/s (one session)", f"{many['answers_per_s']} ({one and one['answers_per_s']})"),
        ("throughput vs one session", many.get("throughput_vs_one_session")),
        ("fairness (slowest user / mean)", many["fairness_slowest_over_mean"]),
        (
            "RSS at start / warm / after MB",
            f"{many['rss_start_mb']} / {many['rss_before_mb']} / {many['rss_after_mb']}",
        ),
    ]
    width = max(len(r[0]) for r in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=300)
    parser.add_argument("--alone", type=float, default=60, help="seconds of one session alone")
    parser.add_argument("--backends", default="base,rag,lora,summary")
    parser.add_argument("--faults", action="store_true")
    parser.add_argument("--home", type=Path, help="data folder (default: a new one)")
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--model-cache", type=Path, help="a data folder's models/ to copy (skips converting)"
    )
    parser.add_argument(
        "--model-server",
        action="store_true",
        help="generate through `kbot model-server` (llama.cpp) on the same data folder",
    )
    args = parser.parse_args(argv)
    backends = args.backends.split(",")
    home = args.home or Path(tempfile.mkdtemp(prefix="kbot-load-", dir=Path.home() / ".cache"))
    if args.model_cache and not (home / "models").exists():
        shutil.copytree(args.model_cache, home / "models")
    from tests.conftest import free_port

    server = prepare(home, backends, free_port())
    env = {"KBOT_MAX_NEW_TOKENS": str(args.max_new_tokens)}
    model_server = None
    if args.model_server:  # it serves the data folder's adapters, the one trained above too
        from bench.engines import start_model_server

        port = free_port()
        model_server = start_model_server(str(home), port)
        os.environ["KBOT_MODEL_URL"] = env["KBOT_MODEL_URL"] = f"http://127.0.0.1:{port}/v1"
    server.start(env)
    try:
        results: dict[str, Any] = {
            "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
            "sessions": args.sessions,
            "seconds": args.seconds,
            "backends": backends,
            "max_new_tokens": args.max_new_tokens,
            # The server inherits this environment: KBOT_BATCH_ROWS=1 KBOT_PREFIX_CACHE_MB=0
            # answers one request at a time, reading every prompt whole.
            "settings": {k: os.environ[k] for k in ENGINE_SETTINGS if k in os.environ},
            "load": run_load(server, args.sessions, args.seconds, backends, args.alone),
        }
        if args.faults:
            results["faults"] = run_faults(server, backends)
    finally:
        server.stop()
        if model_server is not None:
            model_server.terminate()
            model_server.wait(60)
    print(table(results))
    if "faults" in results:
        print(json.dumps(results["faults"], indent=1))
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1))
    return results


if __name__ == "__main__":
    main()
