"""Deadlines that abandon a call instead of cancelling it.

A call stuck on a frozen server never acknowledges a cancellation: psycopg's cancel
blocks too, and TCP keepalives do not fire on loopback. So the caller stops *waiting*
at the deadline and the call is left to finish (or not) on its own: in a daemon
thread (sync) or a task whose outcome is consumed later (async). Used by ``guard``'s
per-attempt timeout and by ``ResilientSaver``'s per-call deadline.
"""

from __future__ import annotations

import asyncio
import contextvars
import queue
import threading
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["await_with_deadline", "call_with_deadline"]


def call_with_deadline(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    deadline: float,
    timed_out: Callable[[], BaseException],
) -> Any:
    """``fn(*args, **kwargs)`` in a worker thread; raise ``timed_out()`` at the deadline."""
    context = contextvars.copy_context()  # LangGraph's config travels in contextvars
    finished = threading.Event()
    outcome: list[Any] = []

    def job() -> None:
        try:
            outcome.append((True, context.run(fn, *args, **kwargs)))
        except BaseException as exc:  # handed back to the waiting thread
            outcome.append((False, exc))
        finally:
            finished.set()

    _WORKERS.submit(job)
    if not finished.wait(deadline):
        raise timed_out()
    ok, value = outcome[0]
    if ok:
        return value
    raise value


async def await_with_deadline(
    aw: Awaitable[Any], deadline: float, timed_out: Callable[[], BaseException]
) -> Any:
    """Await ``aw``; raise ``timed_out()`` at the deadline without waiting for it to stop."""
    task = asyncio.ensure_future(aw)  # runs in a copy of this context: config, runtime
    try:
        done, _ = await asyncio.wait({task}, timeout=deadline)
    except asyncio.CancelledError:
        task.cancel()
        raise
    if task in done:
        return task.result()
    # Cancel, but do not wait for the cancellation to land: a call stuck in a C
    # extension or a frozen socket may never acknowledge it.
    task.cancel()
    task.add_done_callback(_consume_outcome)
    raise timed_out()


def _consume_outcome(task: asyncio.Future[Any]) -> None:
    if not task.cancelled():
        task.exception()  # mark it retrieved so asyncio does not log it


class _DaemonWorkers:
    """Reusable daemon threads. Unlike ThreadPoolExecutor's, they are never joined at
    interpreter exit, so an abandoned call cannot hold the process open."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            if self._idle:
                self._idle -= 1  # an idle worker will take it
            else:
                threading.Thread(
                    target=self._work, name="langgraph-resilience-deadline", daemon=True
                ).start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            self._jobs.get()()
            with self._lock:
                self._idle += 1


_WORKERS = _DaemonWorkers()
