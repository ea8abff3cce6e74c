"""Training cost of LoRA vs full fine-tuning, and LoRA adapter switching.

Usage:
  python bench/training.py cpu        # SmolLM2-135M (the packaged model), batch 4 x 256
  python bench/training.py gpu        # a 1.7B Llama built from its config, on CUDA
  python bench/training.py switch     # adapter switch latency and memory, 1/5/20 adapters

Every variant runs the same training step (forward, backward, AdamW) on random tokens, in
one process, so the rows compare side by side. Writes bench/results/training_<mode>.json.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "bench" / "results"

ATTENTION = ["q_proj", "k_proj", "v_proj", "o_proj"]
VARIANTS = [  # (label, method, rank, targets, frozen base in bf16)
    ("full", "full", None, None, False),
    ("lora r8 attention", "lora", 8, ATTENTION, False),
    ("lora r16 attention", "lora", 16, ATTENTION, False),
    ("lora r8 all-linear", "lora", 8, "all-linear", False),
    ("lora r16 all-linear", "lora", 16, "all-linear", False),
]
# On a GPU the frozen base of a LoRA can be held in bf16 (only the adapters need fp32).
GPU_ONLY = [
    ("lora r16 attention, bf16 base", "lora", 16, ATTENTION, True),
    ("lora r16 all-linear, bf16 base", "lora", 16, "all-linear", True),
]


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def prepare(model, method: str, rank: int | None, targets):
    if method == "full":
        return model
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        lora_dropout=0.05,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def adapter_bytes(model, method: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)
        return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def time_steps(model, batch: int, length: int, steps: int, device: str, vocab: int) -> list[float]:
    import torch

    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-4)
    generator = torch.Generator().manual_seed(0)
    times = []
    for _ in range(steps + 2):  # two warm-up steps
        ids = torch.randint(0, vocab, (batch, length), generator=generator).to(device)
        if device == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        with torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    return times[2:]


def build_model(mode: str):
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    if mode == "cpu":
        from bot.model import model_location
        from bot.settings import load_settings

        return AutoModelForCausalLM.from_pretrained(
            model_location(load_settings()), dtype=torch.float32
        ), "SmolLM2-135M-Instruct (packaged)"
    config = LlamaConfig(  # SmolLM2-1.7B's shape
        vocab_size=49152,
        hidden_size=2048,
        intermediate_size=8192,
        num_hidden_layers=24,
        num_attention_heads=32,
        num_key_value_heads=32,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    )
    with torch.device("cuda"):
        return LlamaForCausalLM(config), "Llama 1.7B (SmolLM2-1.7B shape, random init)"


def run_in_subprocesses(steps: int, batch: int, length: int) -> dict:
    """On CPU the peak resident memory of a process only grows, so each variant runs in a
    fresh process of its own."""
    import subprocess

    rows, model = [], ""
    for index in range(len(VARIANTS)):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "cpu",
                "--variant",
                str(index),
                "--steps",
                str(steps),
                "--batch",
                str(batch),
                "--length",
                str(length),
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        result = json.loads(out.strip().splitlines()[-1])
        rows += result["rows"]
        model = result["model"]
    return {
        "model": model,
        "device": "cpu",
        "batch": batch,
        "length": length,
        "steps_timed": steps,
        "rows": rows,
        "isolation": "one process per variant",
    }


def run_training_bench(
    mode: str, steps: int, batch: int, length: int, only: int | None = None
) -> dict:
    import torch

    device = "cuda" if mode == "gpu" else "cpu"
    rows = []
    variants = VARIANTS + (GPU_ONLY if mode == "gpu" else [])
    if only is not None:
        variants = variants[only : only + 1]
    for label, method, rank, targets, bf16_base in variants:
        gc.collect()
        if device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        base, model_name = build_model(mode)
        if bf16_base:
            base = base.to(torch.bfloat16)
        model = prepare(base, method, rank, targets)
        if bf16_base:
            for param in model.parameters():
                if param.requires_grad:
                    param.data = param.data.float()
        model.train()
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        total = sum(p.numel() for p in model.parameters())
        times = time_steps(model, batch, length, steps, device, model.config.vocab_size)
        step_s = statistics.median(times)
        peak = (
            torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else peak_rss_mb() / 1024
        )
        rows.append(
            {
                "variant": label,
                "s_per_step": round(step_s, 3),
                "tokens_per_s": round(batch * length / step_s),
                "peak_memory_gib": round(peak, 2),
                "file_mb": round(adapter_bytes(model, method) / 1e6, 1),
                "trainable_params": trainable,
                "trainable_share": round(trainable / total, 5),
            }
        )
        print(f"  {label}: {step_s:.3f} s/step", file=sys.stderr)
        del model, base
    return {
        "model": model_name,
        "device": device,
        "batch": batch,
        "length": length,
        "steps_timed": steps,
        "rows": rows,
    }


def run_switch_bench() -> dict:
    """Load 20 LoRA adapters onto the one shared base model; time switching between them."""

    from bot.model import GenerationParams
    from bot.resources import Resources
    from bot.settings import load_settings

    with tempfile.TemporaryDirectory() as home:
        # Make the adapters in another process: building them here would leave freed base
        # copies in this process's heap and blur the resident-memory figures.
        subprocess.run(
            [sys.executable, __file__, "make-adapters", "--out", home],
            check=True,
            capture_output=True,
        )
        folders = sorted(Path(home).glob("adapter-*"), key=lambda p: int(p.name.split("-")[1]))
        resources = Resources(load_settings(home=home)).load()
        loaded = resources.model
        gc.collect()
        messages = [{"role": "user", "content": "Say hello."}]
        one_token = GenerationParams(max_new_tokens=1)
        rows = []
        for _ in range(3):  # warm up: the first generations allocate buffers of their own
            list(loaded.stream(messages, one_token))
        base_rss = rss_mb()
        keys: list[str] = []
        for count in (1, 5, 20):
            keys += [loaded.add_adapter(f) for f in folders[len(keys) : count]]
            gc.collect()
            resident = rss_mb()
            same, switched = [], []
            for i in range(30):
                key = keys[i % len(keys)]
                started = time.perf_counter()
                list(loaded.stream(messages, one_token, adapter=keys[0]))
                same.append(time.perf_counter() - started)
                started = time.perf_counter()
                list(loaded.stream(messages, one_token, adapter=key))
                switched.append(time.perf_counter() - started)
            rows.append(
                {
                    "adapters": count,
                    "resident_mb": round(resident),
                    "over_base_mb": round(resident - base_rss),
                    "first_token_same_adapter_ms": round(statistics.median(same) * 1000, 1),
                    "first_token_after_switch_ms": round(statistics.median(switched) * 1000, 1),
                }
            )
            print(f"  {count} adapters: {rows[-1]}", file=sys.stderr)
    return {
        "model": "SmolLM2-135M-Instruct (packaged)",
        "adapter": "LoRA r16 all-linear",
        "base_rss_mb": round(base_rss),
        "rows": rows,
    }


def make_adapters(out: Path, count: int = 20) -> None:
    """`count` distinct LoRA r16 all-linear adapters for the packaged model, saved in `out`."""
    import torch
    from transformers import AutoModelForCausalLM

    from bot.model import model_location
    from bot.settings import load_settings

    location = model_location(load_settings(home=out))
    for i in range(count):
        torch.manual_seed(i)
        model = prepare(AutoModelForCausalLM.from_pretrained(location), "lora", 16, "all-linear")
        for name, param in model.named_parameters():  # non-zero B: a real, distinct adapter
            if "lora_B" in name:
                torch.nn.init.normal_(param, std=0.01)
        model.save_pretrained(out / f"adapter-{i}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["cpu", "gpu", "switch", "make-adapters"])
    parser.add_argument("--out", type=Path, help="(internal) folder for make-adapters")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int)
    parser.add_argument("--length", type=int)
    parser.add_argument("--variant", type=int, help="(internal) run one CPU variant, print JSON")
    args = parser.parse_args()
    import torch

    if args.mode == "make-adapters":
        make_adapters(args.out)
        return
    if args.mode == "switch":
        result = run_switch_bench()
    else:
        batch = args.batch or (4 if args.mode == "cpu" else 8)
        length = args.length or (256 if args.mode == "cpu" else 2048)
        if args.variant is not None:
            print(json.dumps(run_training_bench("cpu", args.steps, batch, length, args.variant)))
            return
        if args.mode == "cpu":
            result = run_in_subprocesses(args.steps, batch, length)
        else:
            result = run_training_bench(args.mode, args.steps, batch, length)
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    result["machine"] = (
        f"{platform.machine()}, {os.cpu_count()} CPUs, {gpu}, torch {torch.__version__}"
    )
    out_dir = Path(os.environ.get("OUT", RESULTS))
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"training_{args.mode}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(result["machine"], "·", result["model"])
    for row in result["rows"]:
        print("  " + "  ".join(f"{k}={v}" for k, v in row.items()))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
