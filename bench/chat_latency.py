"""Chat latency of the base model on this machine.

Measures, side by side in one run:
  * model start, cold (packaged GGUF -> de-quantize -> safetensors cache) vs warm (cache),
    each in a fresh process;
  * time to first token and decode speed for a prompt of about 1,000 tokens (greedy).

Usage: python bench/chat_latency.py [--runs 5] [--new-tokens 128]
Writes bench/results/chat_latency.json and prints a table.
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
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "chat_latency.json"
SQUAD = ROOT.parent / "shared" / "data" / "squad-v1.1-dev" / "paragraphs.jsonl"

START_SNIPPET = """
import json, time
t = time.perf_counter()
from bot.model import load_model
from bot.settings import load_settings
loaded = load_model(load_settings(home={home!r}))
print(json.dumps({{"load_s": loaded.load_seconds, "with_imports_s": time.perf_counter() - t}}))
"""


def start_time(home: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", START_SNIPPET.format(home=home)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def long_prompt(tokenizer, target_tokens: int = 1000) -> str:
    """Real prose (SQuAD paragraphs) of about `target_tokens`, ending in a question."""
    paragraphs = [json.loads(line)["text"] for line in SQUAD.read_text().splitlines()[:60]]
    ids = tokenizer("\n\n".join(paragraphs))["input_ids"][: target_tokens - 40]
    return tokenizer.decode(ids) + "\n\nSummarise the text above in a few sentences."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--new-tokens", type=int, default=128)
    args = parser.parse_args()

    import torch

    from bot.model import GenerationParams, GenerationStats
    from bot.resources import Resources
    from bot.settings import load_settings

    with tempfile.TemporaryDirectory() as home:
        cold = start_time(home)
        warm_runs = [start_time(home) for _ in range(3)]
        resources = Resources(load_settings(home=home)).load()
        loaded = resources.model
        prompt = long_prompt(loaded.tokenizer)
        messages = [{"role": "user", "content": prompt}]
        params = GenerationParams(max_new_tokens=args.new_tokens, repetition_penalty=1.0)
        list(loaded.stream(messages, GenerationParams(max_new_tokens=8)))  # warm-up
        ttft, decode, prompt_tokens = [], [], 0
        for _ in range(args.runs):
            stats = GenerationStats()
            for _ in loaded.stream(messages, params, stats):
                pass
            prompt_tokens = stats.prompt_tokens
            ttft.append(stats.first_token_s or 0.0)
            decode.append((stats.completion_tokens - 1) / (stats.seconds - stats.first_token_s))

    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads",
        "model": loaded.name,
        "dtype": str(loaded.model.dtype),
        "prompt_tokens": prompt_tokens,
        "new_tokens": args.new_tokens,
        "runs": args.runs,
        "start_cold_s": round(cold["load_s"], 2),
        "start_warm_s_median": round(statistics.median(r["load_s"] for r in warm_runs), 2),
        "start_warm_with_imports_s_median": round(
            statistics.median(r["with_imports_s"] for r in warm_runs), 2
        ),
        "ttft_s_median": round(statistics.median(ttft), 3),
        "decode_tok_s_median": round(statistics.median(decode), 1),
        "ttft_s_all": [round(x, 3) for x in ttft],
        "decode_tok_s_all": [round(x, 1) for x in decode],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("model start, cold (GGUF -> cache)", f"{result['start_cold_s']} s"),
        ("model start, warm (cache), median of 3", f"{result['start_warm_s_median']} s"),
        (f"first token, {prompt_tokens}-token prompt", f"{result['ttft_s_median']} s"),
        ("decode speed (median)", f"{result['decode_tok_s_median']} tok/s"),
    ]
    print(f"{result['machine']}; {result['model']} ({result['dtype']})")
    for name, value in rows:
        print(f"  {name:<44} {value:>12}")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
