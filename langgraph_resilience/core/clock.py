"""Clocks: the only module that reads the system time.

Everything time-dependent takes a :class:`Clock`, so tests drive breakers with a
:class:`FakeClock` instead of sleeping::

    >>> clock = FakeClock()
    >>> clock.advance(30)
    >>> clock.now()
    30.0
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FakeClock", "MonotonicClock", "WallClock", "to_seconds"]


@runtime_checkable
class Clock(Protocol):
    """A source of time in seconds. Only differences between readings are used."""

    def now(self) -> float:
        """The current reading, in seconds."""
        ...


class MonotonicClock:
    """The default clock: ``time.monotonic``, immune to wall-clock jumps."""

    __slots__ = ()

    # A staticmethod bound straight to the C function keeps a reading at ~40 ns.
    now = staticmethod(time.monotonic)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MonotonicClock)

    def __hash__(self) -> int:
        return hash(MonotonicClock)

    def __repr__(self) -> str:
        return "MonotonicClock()"


class WallClock:
    """Seconds since the epoch (``time.time``): for times that several processes must
    agree on, such as a run lease's expiry. Breakers use :class:`MonotonicClock`."""

    __slots__ = ()

    now = staticmethod(time.time)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WallClock)

    def __hash__(self) -> int:
        return hash(WallClock)

    def __repr__(self) -> str:
        return "WallClock()"


class FakeClock:
    """A clock that moves only when told to, for tests and notebooks.

    Example:
        ```python
        from langgraph_resilience import BreakerPolicy, CircuitBreaker, FakeClock

        clock = FakeClock()
        breaker = CircuitBreaker("demo", BreakerPolicy(recovery_timeout=60), clock=clock)
        breaker.force_open()
        clock.advance(60)  # no sleeping: the breaker sees a minute go by
        ```
    """

    __slots__ = ("_lock", "_now")

    def __init__(self, start: float = 0.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float | timedelta) -> None:
        """Move the clock forward; negative steps are refused."""
        step = to_seconds(seconds, field="seconds")
        with self._lock:
            self._now += step

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now:g})"


def to_seconds(value: float | timedelta, *, field: str, allow_zero: bool = True) -> float:
    """Normalise a duration given as seconds or a ``timedelta``; reject negatives."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(f"{field} must be seconds (a number) or a timedelta, got {value!r}")
    if seconds != seconds:  # NaN
        raise ValueError(f"{field} must be a number of seconds, got NaN")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{field} must be {bound} seconds, got {seconds:g}")
    return seconds
