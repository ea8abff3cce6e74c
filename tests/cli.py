"""Running the real `kbot` command line as a user would: its parser, handlers and output streams.

`kbot` calls the command line's `main` in this process, with its own stdin, stdout and stderr:
a fresh interpreter spends 10-15 s importing torch, transformers and chromadb before it does
anything, and the tests run the command line about forty times. `kbot_process` starts a real
new process, for what only a process shows: being killed, and what its imports print."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
import traceback
from pathlib import Path

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]


def kbot(*args: str, home: Path, input: str | None = None) -> subprocess.CompletedProcess:
    """`kbot ARGS --home HOME` with stdin `input`: its exit status, stdout and stderr as a
    process would have them (an uncaught error prints its traceback and exits with 1)."""
    stdout, stderr = io.StringIO(), io.StringIO()
    with (
        contextlib.redirect_stdout(stdout),
        contextlib.redirect_stderr(stderr),
        _stdin(io.StringIO(input or "")),
    ):
        try:
            status = main([*args, "--home", str(home)])
        except SystemExit as exit:  # argparse's usage errors
            status = exit.code if isinstance(exit.code, int) else 1
        except Exception:
            traceback.print_exc()
            status = 1
    return subprocess.CompletedProcess(
        ["kbot", *args], status, stdout.getvalue(), stderr.getvalue()
    )


def kbot_process(
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


@contextlib.contextmanager
def _stdin(stream: io.StringIO):
    saved, sys.stdin = sys.stdin, stream
    try:
        yield
    finally:
        sys.stdin = saved
