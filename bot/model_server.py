"""`kbot model-server`: llama.cpp's OpenAI-compatible server (llama-cpp-python) on the base
model's GGUF, with the reader and every trained LoRA adapter converted to GGUF beside it. The
app reaches it through KBOT_MODEL_URL (`bot.engine.ServerEngine`).

Each adapter is a model name of its own on the server (`served_name`), as vLLM serves LoRA
modules, so one request names one adapter. The server keeps one model loaded and loads the
next one a request names. An adapter trained after the start is converted and served from
the first request that names it; one trained again under its old name needs a restart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapters.gguf_lora import BaseShape, base_shape
from bot.settings import PACKAGED_MODEL, Settings
from common.errors import BadInput

log = logging.getLogger(__name__)

BASE_NAME = "base"
PACKAGED_READER_NAME = "packaged-reader"


def served_name(adapter: Path) -> str:
    """The model name an adapter has on a model server: its folder's name (the packaged
    reader's is not a name users can give an adapter of theirs)."""
    from adapters.reader import PACKAGED_READER

    return PACKAGED_READER_NAME if adapter.resolve() == PACKAGED_READER.resolve() else adapter.name


def base_gguf(settings: Settings) -> Path:
    """The GGUF file of the base model: the packaged one, or KBOT_MODEL naming a .gguf file."""
    from bot.model import PACKAGED_GGUF, packaged_gguf_dir

    if settings.model == PACKAGED_MODEL:
        return packaged_gguf_dir() / PACKAGED_GGUF
    if settings.model.endswith(".gguf") and Path(settings.model).is_file():
        return Path(settings.model)
    raise BadInput(
        f"kbot model-server serves GGUF files: KBOT_MODEL={settings.model!r} is neither the "
        "packaged model nor a .gguf file. For other models run a server that loads them "
        "(e.g. vLLM: `vllm serve MODEL --enable-lora --lora-modules NAME=FOLDER`)."
    )


@dataclass(frozen=True)
class Served:
    name: str
    lora: Path | None


def served_adapter(settings: Settings, folder: Path, shape: BaseShape) -> Served | None:
    """The adapter in `folder` as the server loads it (converted to GGUF once), or None
    when it was trained on another base model."""
    from adapters.gguf_lora import converted_lora
    from adapters.meta import META_FILE, ArtifactMeta

    meta = ArtifactMeta.model_validate_json((folder / META_FILE).read_text())
    if meta.base_model != settings.model:
        log.warning("%s was trained on %s: not served", folder.name, meta.base_model)
        return None
    return Served(
        served_name(folder), converted_lora(folder, shape, settings.home / "gguf-adapters")
    )


def new_adapters(settings: Settings, shape: BaseShape, seen: set[str]) -> list[Served]:
    """The trained LoRA adapters not looked at before (each name is added to `seen`), as
    served: an artifact's metadata is read once, not on every request."""
    from adapters.registry import ArtifactRegistry

    registry = ArtifactRegistry(settings.adapters_dir)
    found = []
    for name in registry.names():
        if name in seen:
            continue
        seen.add(name)
        if registry.meta(name).method == "lora" and (
            model := served_adapter(settings, registry.path(name), shape)
        ):
            found.append(model)
    return found


def served_models(settings: Settings, shape: BaseShape, seen: set[str]) -> list[Served]:
    """The base model first, then the reader and every LoRA adapter trained on it, in GGUF."""
    from adapters.reader import PACKAGED_READER

    reader = served_adapter(settings, PACKAGED_READER, shape)
    return [
        Served(BASE_NAME, None),
        *([reader] if reader else []),
        *new_adapters(settings, shape, seen),
    ]


def llama_cpp_app(
    settings: Settings,
    models: list[Served],
    trained_later: Callable[[], list[Served]],
    host: str,
    port: int,
) -> Any:
    """llama-cpp-python's FastAPI app serving `models`, and those that `trained_later` finds
    from the first request that names them (or lists the models) on."""
    try:
        from llama_cpp.server import app as server
        from llama_cpp.server.settings import ModelSettings, ServerSettings
    except ImportError as error:
        raise BadInput(
            "kbot model-server needs llama-cpp-python's server: "
            "pip install 'knowledge-bot[model-server]' (or `make install`)."
        ) from error
    gguf_file = str(base_gguf(settings))
    threads = settings.torch_threads or os.cpu_count() or 1
    key = settings.model_api_key.get_secret_value()

    def model_settings(model: Served) -> Any:
        return ModelSettings(
            model=gguf_file,
            model_alias=model.name,
            lora_path=str(model.lora) if model.lora else None,
            n_ctx=8192,
            n_threads=threads,
            n_threads_batch=threads,
            verbose=False,
        )

    app = server.create_app(
        server_settings=ServerSettings(
            host=host,
            port=port,
            # A new request must not cut off another conversation's reply.
            interrupt_requests=False,
            api_key=key if key != "none" else None,
        ),
        model_settings=[model_settings(model) for model in models],
    )

    async def with_new_adapters() -> Any:
        # Every route takes the model proxy through this dependency, holding its lock.
        async for proxy in server.get_llama_proxy():
            assert proxy is not None  # create_app set it
            for model in trained_later():
                proxy[model.name] = model_settings(model)
            yield proxy

    app.dependency_overrides[server.get_llama_proxy] = with_new_adapters
    return app


def run_model_server(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from bot.access import is_loopback

    if not is_loopback(host) and settings.model_api_key.get_secret_value() == "none":
        raise BadInput(
            f"kbot model-server on {host} would let anyone who reaches it generate: set "
            "KBOT_MODEL_API_KEY (the app sends the same) or listen on 127.0.0.1."
        )
    shape = base_shape(base_gguf(settings))
    seen: set[str] = set()
    models = served_models(settings, shape, seen)
    log.warning("Serving %s on http://%s:%d/v1", ", ".join(m.name for m in models), host, port)
    app = llama_cpp_app(settings, models, lambda: new_adapters(settings, shape, seen), host, port)
    uvicorn.run(app, host=host, port=port)
