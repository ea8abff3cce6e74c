"""One thread per process runs torch's heavy work: model loading, generation, embedding.

Torch's CPU kernels run on OpenMP (libgomp). Each thread that starts parallel work gets its
own team of worker threads, and once a process holds more team threads than CPUs, every team
stops spinning at its barriers and sleeps instead, until a team's thread ends. On 2 cores,
generation took twice as long once a second, living thread had run a single matrix product
(`bench/threads.py`).
Chat handlers, LangChain's executors and the generation streamer all live on different
threads, so the work they start is handed to this one thread instead. Jobs run in the order
they come: a long ingestion embeds batch by batch, so a chat waits for one batch at most.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

THREAD_NAME = "kbot-compute"
_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=THREAD_NAME)


def on_compute_thread() -> bool:
    return threading.current_thread().name.startswith(THREAD_NAME)


def submit(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
    """Queue `fn` on the compute thread (run now when already on it, so jobs may nest)."""
    if on_compute_thread():
        future: Future[T] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as error:
            future.set_exception(error)
        return future
    return _executor.submit(fn, *args, **kwargs)


def enqueue(fn: Callable[[], object]) -> None:
    """Queue `fn` behind the jobs already waiting, even from the compute thread itself: a job
    that works in steps (batched generation) lets other jobs run between its steps."""
    _executor.submit(fn)


def run(fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`fn(*args, **kwargs)` on the compute thread; waits for it. Never call this while
    holding a lock that a compute job may take: the job would wait for the caller forever."""
    return submit(fn, *args, **kwargs).result()
