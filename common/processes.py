"""Whether the process behind a mark still runs: for the marks that work in progress leaves
behind (a staging folder, a training run), which are stale once their process has gone.

Replicas may share these folders. Process ids repeat across containers (each may run its
app as process 1), so a mark names the machine too: its host name, which is a container's
own. Only this machine's processes can be checked; another machine's marks are left to it.
"""

from __future__ import annotations

import os
import re
import socket

_HOST = re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname()) or "localhost"


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def process_mark() -> str:
    """This process as "HOST.PID" (no '/', '@' or whitespace)."""
    return f"{_HOST}.{os.getpid()}"


def mark_gone(mark: str) -> bool:
    """Whether the process that left `mark` has surely ended: one of this machine's that no
    longer runs, or a mark that names no process. Another machine's process counts as
    running. A bare process id (as marks were written before) is taken as this machine's."""
    host, _, pid = mark.strip().rpartition(".")
    if not pid.isdigit():
        return True
    return host in ("", _HOST) and not process_alive(int(pid))
