"""One forward pass of a batch whose rows use different LoRA adapters (and none), two ways, on
the same model in one process, alternating: with PEFT's `adapter_names=` argument, which
sets up its hooks on every pass, and as the app runs it (`LoadedModel.rows_with_adapters`,
hooks set once when an adapter loads). Both give the same logits; the bench checks that first.

Passes timed: decoding steps (one new token a row after a prompt of `--prompt` tokens) and
prompt reads. Two adapters of fresh LoRA weights (rank 16 on every linear layer, as
`kbot train` makes them) ride on the packaged model; the batch's rows alternate between
them and the base.

Usage: python bench/mixed_batch.py [--rows 8] [--prompt 400] [--passes 20] [--rounds 4]
Writes bench/results/mixed-batch.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results" / "mixed-batch.json"


def fresh_adapters(model_path: str, folder: Path, count: int) -> list[Path]:
    """`count` LoRA adapters of random weights, saved as PEFT saves trained ones."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    folders = []
    for i in range(count):
        torch.manual_seed(i)
        base = AutoModelForCausalLM.from_pretrained(model_path)
        config = LoraConfig(
            r=16, lora_alpha=32, target_modules="all-linear", init_lora_weights=False
        )
        get_peft_model(base, config).save_pretrained(folder / f"adapter{i}")
        folders.append(folder / f"adapter{i}")
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--prompt", type=int, default=400)
    parser.add_argument("--passes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    import torch
    from transformers import DynamicCache

    from bot.batching import BASE
    from bot.model import load_model, model_location
    from bot.settings import Settings

    settings = Settings()
    loaded = load_model(settings)
    with tempfile.TemporaryDirectory(prefix="kbot-mixed-") as folder:
        keys = [
            loaded.add_adapter(f) for f in fresh_adapters(model_location(settings), Path(folder), 2)
        ]
    names = [([BASE, *keys])[row % 3] for row in range(args.rows)]
    torch.manual_seed(0)
    prompt = torch.randint(100, 10_000, (args.rows, args.prompt))
    step = torch.randint(100, 10_000, (args.rows, 1))

    def forward(way: str, tokens: torch.Tensor, cache: DynamicCache) -> torch.Tensor:
        if way == "PEFT's adapter_names":
            return loaded.peft(input_ids=tokens, cache=cache, adapter_names=names).logits
        with loaded.rows_with_adapters(names) as model:
            return model(input_ids=tokens, cache=cache).logits

    ways = ["PEFT's adapter_names", "hooks set once"]
    times: dict[str, dict[str, list[float]]] = {way: {"decode": [], "prompt": []} for way in ways}
    with loaded.lock, torch.inference_mode():
        outputs = []
        for way in ways:
            cache = DynamicCache()
            forward(way, prompt, cache)
            outputs.append(forward(way, step, cache))
        same = bool(torch.equal(outputs[0], outputs[1]))
        if not same:
            raise SystemExit("the two ways gave different logits")
        for round_ in range(args.rounds):
            for way in ways if round_ % 2 == 0 else ways[::-1]:
                cache = DynamicCache()
                start = time.perf_counter()
                forward(way, prompt, cache)
                times[way]["prompt"].append(time.perf_counter() - start)
                for _ in range(args.passes):
                    start = time.perf_counter()
                    forward(way, step, cache)
                    times[way]["decode"].append(time.perf_counter() - start)

    medians = {
        way: {kind: round(1000 * statistics.median(t), 1) for kind, t in kinds.items()}
        for way, kinds in times.items()
    }
    old, new = (medians[way] for way in ways)
    results = {
        "machine": f"{platform.node()} ({os.cpu_count()} CPUs)",
        "command": "python bench/mixed_batch.py " + " ".join(sys.argv[1:]),
        "rows": args.rows,
        "adapters_per_row": names,
        "prompt_tokens": args.prompt,
        "same_logits": same,
        "median_ms": medians,
        "passes_timed": {
            way: {k: len(t) for k, t in kinds.items()} for way, kinds in times.items()
        },
        "decode_ratio": round(new["decode"] / old["decode"], 3),
        "prompt_ratio": round(new["prompt"] / old["prompt"], 3),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{args.rows} rows (base and 2 adapters), prompt of {args.prompt} tokens; same logits")
    print("| pass (median) | PEFT's adapter_names | hooks set once | ratio |")
    print("|---|---|---|---|")
    for kind in ("decode", "prompt"):
        ratio = results[f"{kind}_ratio"]
        print(f"| {kind} | {old[kind]} ms | {new[kind]} ms | {ratio} |")


if __name__ == "__main__":
    main()
