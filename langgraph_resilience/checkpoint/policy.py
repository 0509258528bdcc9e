"""``SaverPolicy``: how ``ResilientSaver`` retries, times out and gives up on a store,
and ``is_transient``: which store errors are worth retrying and failing over for.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import tenacity
from tenacity.wait import wait_base

from langgraph_resilience.core.clock import to_seconds
from langgraph_resilience.core.policy import BreakerPolicy
from langgraph_resilience.errors import CircuitOpenError, StoreTimeoutError

__all__ = ["SaverPolicy", "is_transient"]

# Error classes, by module prefix and class name, that mean "the store is unreachable
# or busy", not "the request is wrong". Matched on the MRO so the drivers stay optional.
_TRANSIENT_BY_DRIVER = {
    # OperationalError covers AdminShutdown, a closed or broken connection, a refused
    # connect and psycopg_pool.PoolTimeout; IntegrityError and friends are not here.
    "psycopg": frozenset({"OperationalError", "InterfaceError"}),
    "psycopg_pool": frozenset({"PoolTimeout", "TooManyRequests"}),
    # redis.exceptions.ConnectionError is not the builtin ConnectionError.
    "redis": frozenset({"ConnectionError", "TimeoutError", "BusyLoadingError"}),
}
_SQLITE_BUSY = ("database is locked", "database table is locked", "database is busy")


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` says the store is unreachable or busy (retry, then fail over)
    rather than that the call itself is wrong (raise to the caller).

    Transient: psycopg's ``OperationalError`` family (a dropped connection, a shutdown
    server, a refused connect, ``PoolTimeout``) and ``InterfaceError``; redis-py's
    ``ConnectionError`` and ``TimeoutError``; sqlite3's "database is locked"; the
    builtin ``ConnectionError`` and ``TimeoutError`` (which includes
    ``StoreTimeoutError``); and ``CircuitOpenError`` (the primary is known to be down).

    Example:
        >>> import sqlite3
        >>> is_transient(sqlite3.OperationalError("database is locked"))
        True
        >>> is_transient(sqlite3.IntegrityError("UNIQUE constraint failed"))
        False
    """
    if isinstance(error, (ConnectionError, TimeoutError, CircuitOpenError)):
        return True
    if isinstance(error, sqlite3.OperationalError):
        return any(phrase in str(error) for phrase in _SQLITE_BUSY)
    for cls in type(error).__mro__:
        names = _TRANSIENT_BY_DRIVER.get(cls.__module__.partition(".")[0])
        if names is not None and cls.__name__ in names:
            return True
    return False


def _default_wait() -> wait_base:
    return tenacity.wait_exponential_jitter(multiplier=0.05, max=1.0, jitter=0.05)


def _default_breaker() -> BreakerPolicy:
    return BreakerPolicy(failure_threshold=3, recovery_timeout=30.0, success_threshold=1)


@dataclass(frozen=True, kw_only=True)
class SaverPolicy:
    """How ``ResilientSaver`` treats its primary store.

    Example:
        ```python
        import tenacity
        from langgraph_resilience import BreakerPolicy, SaverPolicy

        policy = SaverPolicy(
            timeout=2.0,                                # give up on a frozen database
            attempts=3,                                 # then fail over to the standby
            wait=tenacity.wait_exponential(max=0.5),
            breaker=BreakerPolicy(failure_threshold=2, recovery_timeout=15),
        )
        ```
    """

    timeout: float | timedelta | None = 10.0
    """Deadline for each call to the primary, in seconds (``None``: wait forever).

    At the deadline the call is abandoned, not cancelled (a frozen server never
    acknowledges a cancellation), and the saver fails over without retrying it. An
    abandoned call keeps its connection until it returns: size a pool for that.
    Savers that run in this process (``InMemorySaver``, the SQLite savers) are called
    directly, without a deadline: they cannot hang on a server, and SQLite waits at
    most its busy timeout.

    The deadline has a price: to be abandoned, a call runs in a worker thread (sync) or
    its own task (async), a hand-over of a few hundred microseconds per call on a busy
    machine, about a tenth of a Postgres step (``make bench``, part 6). ``None`` calls
    the store directly and leaves time limits to the driver (a pool's ``timeout``
    catches a dead server, not a frozen one)."""

    attempts: int = 3
    """Tries per call when the primary's error is transient (1 = no retry)."""

    wait: wait_base = field(default_factory=_default_wait)
    """A tenacity wait strategy between tries (exponential with jitter, 50 ms to 1 s)."""

    transient: Callable[[BaseException], bool] = is_transient
    """Which errors are retried and fail over. Others (a serialisation error, a
    constraint violation) reach the caller: the standby would fail the same way."""

    breaker: BreakerPolicy = field(default_factory=_default_breaker)
    """The primary's circuit breaker: after 3 failed tries in a row, calls go straight
    to the standby for 30 s; then one trial (a fail-back) decides."""

    failback: bool = True
    """Once the breaker lets a trial through, copy what only the standby holds to the
    primary and go back to it, without waiting for ``reconcile()`` to be called."""

    mirror_lag: int = 1000
    """Writes the standby may be behind before a writer waits for it to catch up
    (standby writes run in a background thread, off the step's critical path)."""

    def __post_init__(self) -> None:
        if self.timeout is not None:
            to_seconds(self.timeout, field="SaverPolicy.timeout", allow_zero=False)
        _check_count("SaverPolicy.attempts", self.attempts)
        _check_count("SaverPolicy.mirror_lag", self.mirror_lag)
        if not isinstance(self.wait, wait_base) and not callable(self.wait):
            raise TypeError(f"SaverPolicy.wait must be a tenacity wait strategy, got {self.wait!r}")
        if not callable(self.transient):
            raise TypeError(
                f"SaverPolicy.transient must be a function of an exception, got {self.transient!r}"
            )
        if not isinstance(self.breaker, BreakerPolicy):
            raise TypeError(f"SaverPolicy.breaker must be a BreakerPolicy, got {self.breaker!r}")
        if not isinstance(self.failback, bool):
            raise TypeError(f"SaverPolicy.failback must be True or False, got {self.failback!r}")

    @property
    def deadline(self) -> float | None:
        """``timeout`` in seconds."""
        return None if self.timeout is None else to_seconds(self.timeout, field="timeout")

    def retries(self, error: BaseException) -> bool:
        """Whether a failed try is tried again: transient, and not a call that already
        waited out its whole deadline or met an open breaker."""
        return not isinstance(error, (StoreTimeoutError, CircuitOpenError)) and self.transient(
            error
        )


def _check_count(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
