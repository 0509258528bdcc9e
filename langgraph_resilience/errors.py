"""Exceptions raised by langgraph-resilience.

Catch them at whatever level suits you::

    ResilienceError (Exception)
    ├── CircuitOpenError (ResilienceError, RuntimeError)
    │       a breaker rejected the call without running it
    ├── AttemptTimeoutError (ResilienceError)
    │       a guarded attempt ran past its deadline
    ├── LoopLimitExceeded (ResilienceError, RecursionError)
    │       a node was entered more often, or deeper, than its LoopPolicy allows
    ├── LedgerMissingError (ResilienceError, LookupError)
    │       a feature needs the run's ledger and the state schema has none
    ├── StoreTimeoutError (ResilienceError, TimeoutError)
    │       a checkpoint store did not answer within its deadline; the call was abandoned
    ├── SaverUnavailableError (ResilienceError, ConnectionError)
    │       no checkpoint store could take a call (the primary failed, no standby took over)
    ├── LeaseHeldError (ResilienceError, RuntimeError)
    │       another worker holds the thread's run lease
    └── LeaseLostError (ResilienceError, RuntimeError)
            a worker's lease on a thread expired or was claimed by another worker

The bases are chosen for LangGraph's default ``RetryPolicy``: it never retries a
``RuntimeError``, so an open breaker fails fast instead of being hammered, while a
timed-out attempt (a plain ``Exception``) is retried like LangGraph's own
``NodeTimeoutError``. ``LoopLimitExceeded`` is a ``RecursionError`` (so a
``RuntimeError``), like LangGraph's ``GraphRecursionError``: never retried.
"""

from __future__ import annotations

import math

__all__ = [
    "AttemptTimeoutError",
    "CircuitOpenError",
    "LeaseHeldError",
    "LeaseLostError",
    "LedgerMissingError",
    "LoopLimitExceeded",
    "ResilienceError",
    "SaverUnavailableError",
    "StoreTimeoutError",
]


class ResilienceError(Exception):
    """Base class of every error this package raises on purpose."""


class CircuitOpenError(ResilienceError, RuntimeError):
    """A circuit breaker rejected a call without running it.

    Attributes:
        breaker: the breaker's name.
        retry_after: seconds until the breaker will admit a trial call
            (``math.inf`` when it was forced open and waits for ``reset()``).
        state: the breaker's state when it rejected the call (``"open"`` or
            ``"half_open"``).
    """

    def __init__(self, breaker: str, *, retry_after: float, state: str = "open") -> None:
        self.breaker = breaker
        self.retry_after = retry_after
        self.state = state
        if math.isinf(retry_after):
            detail = "it was forced open and stays open until reset()"
        elif state == "half_open":
            detail = f"its trial calls are all in flight; retry in {retry_after:.3g}s"
        else:
            detail = f"retry in {retry_after:.3g}s"
        super().__init__(f"circuit {breaker!r} is {state.replace('_', '-')}: {detail}")

    def __reduce__(self) -> tuple[object, ...]:
        # Keeps the keyword-only constructor working through copy and multiprocessing.
        return (_rebuild_open_error, (self.breaker, self.retry_after, self.state))


def _rebuild_open_error(breaker: str, retry_after: float, state: str) -> CircuitOpenError:
    return CircuitOpenError(breaker, retry_after=retry_after, state=state)


class AttemptTimeoutError(ResilienceError):
    """A guarded attempt did not finish within its deadline.

    The attempt was cancelled (async) or abandoned in its worker thread (sync), and it
    counts as a failure for the breaker. Not a ``TimeoutError`` subclass, so LangGraph's
    default ``RetryPolicy`` retries it.

    Attributes:
        node: the guarded callable's name.
        timeout: the deadline in seconds.
    """

    def __init__(self, node: str, timeout: float) -> None:
        self.node = node
        self.timeout = timeout
        super().__init__(f"{node!r} did not finish within {timeout:.3g}s")

    def __reduce__(self) -> tuple[object, ...]:
        return (AttemptTimeoutError, (self.node, self.timeout))


class LoopLimitExceeded(ResilienceError, RecursionError):
    """A node was about to be entered beyond a ``LoopPolicy`` limit.

    Attributes:
        node: the node that was not entered.
        limit: which limit: ``"max_visits"``, ``"max_visits_per_node"`` or ``"max_depth"``.
        count: visits so far (the graph depth, for ``max_depth``).
        maximum: the limit's value.
    """

    def __init__(self, node: str, *, limit: str, count: int, maximum: int, detail: str) -> None:
        self.node = node
        self.limit = limit
        self.count = count
        self.maximum = maximum
        self.detail = detail
        super().__init__(f"loop limit reached: {detail}")

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_loop_error,
            (self.node, self.limit, self.count, self.maximum, self.detail),
        )


def _rebuild_loop_error(
    node: str, limit: str, count: int, maximum: int, detail: str
) -> LoopLimitExceeded:
    return LoopLimitExceeded(node, limit=limit, count=count, maximum=maximum, detail=detail)


class LedgerMissingError(ResilienceError, LookupError):
    """A feature that keeps per-run memory found no ledger in the graph's state.

    Add ``ResilienceState`` to the state schema (``class State(ResilienceState): ...``).
    """


class StoreTimeoutError(ResilienceError, TimeoutError):
    """A call to a checkpoint store did not return within ``SaverPolicy.timeout``.

    The call was abandoned, not cancelled (a frozen database never acknowledges a
    cancellation), and ``ResilientSaver`` failed over without retrying it.

    Attributes:
        store: ``"primary"`` or ``"standby"``.
        operation: the saver method (``"put"``, ``"aget_tuple"``, ...).
        timeout: the deadline in seconds.
    """

    def __init__(self, store: str, operation: str, timeout: float) -> None:
        self.store = store
        self.operation = operation
        self.timeout = timeout
        super().__init__(
            f"the {store} checkpoint store did not answer {operation} in {timeout:.3g}s"
        )

    def __reduce__(self) -> tuple[object, ...]:
        return (StoreTimeoutError, (self.store, self.operation, self.timeout))


class SaverUnavailableError(ResilienceError, ConnectionError):
    """No checkpoint store could take a call: the primary failed and there is no
    standby, or the standby failed too. The store's own error is ``__cause__``.

    Attributes:
        operation: the saver method that failed.
    """

    def __init__(self, operation: str, detail: str) -> None:
        self.operation = operation
        self.detail = detail
        super().__init__(f"checkpoint {operation} failed: {detail}")

    def __reduce__(self) -> tuple[object, ...]:
        return (SaverUnavailableError, (self.operation, self.detail))


class LeaseLostError(ResilienceError, RuntimeError):
    """A worker's lease on a thread expired or was claimed by another worker, so it
    stopped running the thread (the new holder resumes it from its checkpoint).

    Attributes:
        thread_id: the thread.
        owner: the worker that lost the lease.
    """

    def __init__(self, thread_id: str, owner: str) -> None:
        self.thread_id = thread_id
        self.owner = owner
        super().__init__(f"worker {owner!r} lost its lease on thread {thread_id!r}")

    def __reduce__(self) -> tuple[object, ...]:
        return (LeaseLostError, (self.thread_id, self.owner))


class LeaseHeldError(ResilienceError, RuntimeError):
    """Another worker holds the thread's run lease, so this one did not start it.

    Attributes:
        thread_id: the thread.
        holder: the worker holding the lease.
        expires_at: when that lease lapses unless renewed (seconds since the epoch).
    """

    def __init__(self, thread_id: str, holder: str, expires_at: float) -> None:
        self.thread_id = thread_id
        self.holder = holder
        self.expires_at = expires_at
        super().__init__(f"thread {thread_id!r} is being run by worker {holder!r}")

    def __reduce__(self) -> tuple[object, ...]:
        return (LeaseHeldError, (self.thread_id, self.holder, self.expires_at))
