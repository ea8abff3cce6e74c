"""PEFT LoRA adapters as GGUF LoRA files, for llama.cpp model servers.

The `gguf` package provides the file format and llama.cpp's tensor names; llama.cpp's own
converter (`convert_lora_to_gguf.py`) is a script in its source tree that no wheel installs and
that needs the base model's Hugging Face folder. For the decoder families served here a LoRA
needs only three things, done below: the tensor names mapped, the rows of the query and key
projections' B matrices put in llama.cpp's rotary order (its converter permutes the base
weights the same way), and `lora_alpha` recorded so that llama.cpp scales by alpha / r as PEFT
does.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import BadInput

ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"

# llama.cpp architectures whose converter permutes the query/key rows for rotary embeddings;
# others (qwen2, qwen3, ...) keep Hugging Face's order.
ROPE_PERMUTED = {"llama"}
# Part of every converted file's name: a change to the conversion converts adapters afresh.
FORMAT = "kbot-lora-gguf-1"

_PEFT_NAME = re.compile(r"^base_model\.model\.(.+)\.lora_([AB])\.weight$")


class AdapterConversionError(BadInput):
    pass


@dataclass(frozen=True)
class BaseShape:
    """What the conversion needs to know of the base model."""

    arch: str  # llama.cpp's name of the architecture
    layers: int
    heads: int
    kv_heads: int


def base_shape(gguf_file: Path) -> BaseShape:
    """The base model's shape, read from its GGUF file."""
    import gguf

    fields = gguf.GGUFReader(gguf_file).fields

    def value(key: str) -> object:
        if key not in fields:
            raise AdapterConversionError(f"{gguf_file.name} has no {key!r}: not a model file?")
        return fields[key].contents()

    arch = str(value("general.architecture"))
    heads = int(str(value(f"{arch}.attention.head_count")))
    kv_heads = fields.get(f"{arch}.attention.head_count_kv")
    return BaseShape(
        arch=arch,
        layers=int(str(value(f"{arch}.block_count"))),
        heads=heads,
        kv_heads=int(str(kv_heads.contents())) if kv_heads else heads,
    )


def rope_permute(rows: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's order of a query/key projection's output rows (its converter's `permute`)."""
    return (
        rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def _lora_tensors(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    # Through torch: numpy has no bfloat16, in which adapters are often stored.
    from safetensors.torch import load_file

    pairs: dict[str, dict[str, np.ndarray]] = {}
    for name, tensor in load_file(folder / ADAPTER_WEIGHTS).items():
        match = _PEFT_NAME.match(name)
        if match is None:
            raise AdapterConversionError(
                f"{folder.name}: tensor {name!r} is not a LoRA A/B matrix; only LoRA adapters "
                "of linear layers can be served by llama.cpp."
            )
        module, which = match.groups()
        pairs.setdefault(module, {})[which] = tensor.float().numpy()
    return pairs


def convert_lora(folder: Path, base: BaseShape, out: Path) -> Path:
    """Write the PEFT LoRA adapter in `folder` as a GGUF LoRA file at `out` (atomically)."""
    import gguf

    arch_ids = {name: arch for arch, name in gguf.MODEL_ARCH_NAMES.items()}
    if base.arch not in arch_ids:
        raise AdapterConversionError(f"llama.cpp architecture {base.arch!r} is unknown here.")
    permuted = base.arch in ROPE_PERMUTED
    config = json.loads((folder / ADAPTER_CONFIG).read_text())
    if config.get("peft_type") != "LORA" or config.get("use_rslora") or config.get("use_dora"):
        raise AdapterConversionError(f"{folder.name}: only plain LoRA adapters can be served.")
    names = gguf.get_tensor_name_map(arch_ids[base.arch], base.layers)

    staging = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    writer = gguf.GGUFWriter(staging, base.arch)
    writer.add_type(gguf.GGUFType.ADAPTER)
    writer.add_string(gguf.Keys.Adapter.TYPE, "lora")
    writer.add_float32(gguf.Keys.Adapter.LORA_ALPHA, float(config["lora_alpha"]))
    for module, pair in sorted(_lora_tensors(folder).items()):
        target = names.get_name(f"{module}.weight", try_suffixes=(".weight",))
        if target is None or set(pair) != {"A", "B"}:
            raise AdapterConversionError(f"{folder.name}: no llama.cpp tensor for {module!r}.")
        lora_b = pair["B"]
        if permuted and module.endswith("q_proj"):
            lora_b = rope_permute(lora_b, base.heads)
        elif permuted and module.endswith("k_proj"):
            lora_b = rope_permute(lora_b, base.kv_heads)
        writer.add_tensor(f"{target}.lora_a", pair["A"])
        writer.add_tensor(f"{target}.lora_b", np.ascontiguousarray(lora_b))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    staging.replace(out)
    return out


def converted_lora(folder: Path, base: BaseShape, cache: Path) -> Path:
    """The GGUF file of the adapter in `folder`, converted once per version of its weights."""
    content = b"".join((folder / name).read_bytes() for name in (ADAPTER_CONFIG, ADAPTER_WEIGHTS))
    digest = hashlib.sha256(FORMAT.encode() + content).hexdigest()[:16]
    out = cache / f"{folder.name}-{digest}.gguf"
    if not out.exists():
        cache.mkdir(parents=True, exist_ok=True)
        convert_lora(folder, base, out)
    return out
