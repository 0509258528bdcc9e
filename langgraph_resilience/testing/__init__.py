"""Public test aids: a clock you move by hand, for tests and notebooks."""

from langgraph_resilience.core.clock import FakeClock

__all__ = ["FakeClock"]
