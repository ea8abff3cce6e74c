"""Where answers are generated: the model in the app's process against `kbot model-server`
(llama.cpp) on the same machine, same prompts, side by side in one run.

For each engine and each prompt (a long chat prompt of about 1,000 tokens; a RAG reader prompt
with the packaged reader adapter): time to first token and decode speed, through the chat
models the app itself uses (LangChain, streaming, greedy).

Usage: python bench/engines.py [--runs 5] [--new-tokens 128]
Writes bench/results/engines.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "engines.json"
SQUAD = ROOT.parent / "shared" / "data" / "squad-v1.1-dev" / "paragraphs.jsonl"


def long_prompt(count_tokens: Any, target_tokens: int = 1000) -> str:
    """Real prose (SQuAD dev paragraphs) of about `target_tokens`, ending in a request."""
    text = ""
    for line in SQUAD.read_text().splitlines():
        text += json.loads(line)["text"] + "\n\n"
        if count_tokens(text) > target_tokens - 40:
            break
    return text + "Summarise the text above in a few sentences."


def reader_prompt() -> list[tuple[str, str]]:
    """What RAG gives the reader: two sentences of a document and the question."""
    from knowledge.reading import Evidence, reader_messages

    evidence = [
        Evidence("Prices > Cars: 2 euros per hour, at most 10 euros a day.", "notice.md", 1, 0.8),
        Evidence("Prices > Motorcycles: 1 euro per hour.", "notice.md", 1, 0.7),
    ]
    messages = reader_messages("How much does it cost to park a car?", evidence)
    return [(m["role"].replace("user", "human"), m["content"]) for m in messages]


def start_model_server(home: str, port: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "model-server", "--port", str(port), "--home", home],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=5).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(1)
    process.kill()
    raise SystemExit("kbot model-server did not start")


def timed(model: Any, messages: list[tuple[str, str]], count_tokens: Any) -> dict[str, float]:
    started = time.perf_counter()
    first, text = None, ""
    for chunk in model.stream(messages):
        if chunk.text and first is None:
            first = time.perf_counter() - started
        text += chunk.text
    total = time.perf_counter() - started
    first = first if first is not None else total
    # Counted from the text: llama-cpp-python's server streams no token usage.
    tokens = count_tokens(text)
    return {
        "ttft_s": first,
        "decode_tok_s": (tokens - 1) / (total - first) if tokens > 1 else 0.0,
        "tokens": tokens,
    }


def varied(messages: list[tuple[str, str]], run: int) -> list[tuple[str, str]]:
    """The prompt with a different first line per run: llama.cpp reuses the cached prefix
    of the previous prompt, which would time a repeated prompt's prefill as free."""
    *earlier, (role, content) = messages
    if len(earlier) and earlier[0][0] == "system":
        earlier = [("system", f"Request {run}. {earlier[0][1]}"), *earlier[1:]]
        return [*earlier, (role, content)]
    return [*earlier, (role, f"Request {run}.\n{content}")]


def measure(resources: Any, runs: int, new_tokens: int) -> dict[str, Any]:
    chat = resources.chat_model(max_new_tokens=new_tokens, repetition_penalty=1.0)
    reader = resources.reader_model(lean=0.0, prompt_lookup=0)
    count = resources.engine.count_tokens
    prompts = {
        "chat, ~1000-token prompt": (chat, [("human", long_prompt(count))]),
        "reader, RAG prompt": (reader, reader_prompt()),
    }
    out: dict[str, Any] = {}
    for name, (model, messages) in prompts.items():
        timed(model, varied(messages, -1), count)  # warm-up (on the server: the adapter's load)
        rows = [timed(model, varied(messages, run), count) for run in range(runs)]
        out[name] = {
            "ttft_s_median": round(statistics.median(r["ttft_s"] for r in rows), 3),
            "decode_tok_s_median": round(statistics.median(r["decode_tok_s"] for r in rows), 1),
            "tokens": rows[-1]["tokens"],
            "answer": model.invoke(messages).text[:200],
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()

    from bot.resources import Resources
    from bot.settings import load_settings
    from tests.conftest import free_port

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=home, temperature=0.0)
        local = Resources(settings).load()
        results["in-process"] = measure(local, args.runs, args.new_tokens)
        port = free_port()
        server = start_model_server(home, port)
        try:
            url = f"http://127.0.0.1:{port}/v1"
            remote = Resources(settings.model_copy(update={"model_url": url})).load()
            results["llama.cpp server"] = measure(remote, args.runs, args.new_tokens)
        finally:
            server.terminate()
            server.wait(30)

    import torch

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}",
        "command": "python bench/engines.py " + " ".join(sys.argv[1:]),
        "runs": args.runs,
        "new_tokens": args.new_tokens,
        "engines": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(result["machine"])
    print(f"  {'engine':<18} {'prompt':<26} {'first token':>12} {'decode':>12}")
    for engine, rows in results.items():
        for prompt, row in rows.items():
            print(
                f"  {engine:<18} {prompt:<26} {row['ttft_s_median']:>10} s "
                f"{row['decode_tok_s_median']:>7} tok/s"
            )
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
