"""Train an adapter with `adapters.train` on a GPU machine that has torch, transformers and
peft but not this project's other packages (the device machine of docs/BENCHMARKS.md).

Usage: python bench/gpu_train.py GGUF DATA OUT_DIR NAME [TrainConfig field=value ...]
DATA: Q/A records (.jsonl) or the data `bench/knowledge.py --export-training` wrote (.json).
The method is LoRA unless a `method=full` field says otherwise.

The packaged GGUF is de-quantized into a transformers folder first, exactly as the app does
on its first start (`bot.model`), so the adapter fits the model the app serves.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path


def convert(gguf: Path, folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None
    del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def training_data(path: Path):
    """Q/A records (.jsonl), or the whole training data `bench/knowledge.py
    --export-training` wrote (.json: documents and Q/A pairs)."""
    from adapters.data import TrainingData, load_records

    if path.suffix != ".json":
        return load_records(path)
    fields = json.loads(path.read_text())
    return TrainingData(
        kind=fields["kind"],
        conversations=tuple(tuple(c) for c in fields["conversations"]),
        texts=tuple(fields["texts"]),
        origin=fields["origin"],
    )


def main(gguf: str, data: str, out: str, name: str, *fields: str) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from adapters.registry import ArtifactRegistry
    from adapters.train import TrainConfig, train

    base = Path("/tmp/base-model")
    if not (base / "config.json").exists():
        convert(Path(gguf), base)
    overrides = {"method": "lora"} | dict(field.split("=", 1) for field in fields)
    config = TrainConfig(name=name, **overrides)
    started = time.perf_counter()
    result = train(
        config,
        training_data(Path(data)),
        base_location=str(base),
        base_name="SmolLM2-135M-Instruct",
        system_prompt="",
        registry=ArtifactRegistry(Path(out)),
        runs_dir=Path("/tmp/runs"),
        progress=lambda fraction, label: print(f"{fraction:.0%} {label}", flush=True),
    )
    assert result.meta is not None
    summary = result.meta.summary(name) | {"wall_seconds": round(time.perf_counter() - started)}
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
