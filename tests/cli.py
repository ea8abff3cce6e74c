"""Running the real `kbot` command line in a fresh process, as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def kbot(
    *args: str, home: Path, timeout: float = 300, input: str | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args, "--home", str(home)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )
