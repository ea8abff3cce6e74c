"""Whether another process still runs: for the marks that work in progress leaves behind
(a staging folder, a training run), which are stale once their process has gone."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
