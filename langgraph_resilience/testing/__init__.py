"""Public test aids: a clock you move by hand, and a checkpointer that fails on demand."""

from langgraph_resilience.core.clock import FakeClock
from langgraph_resilience.testing.faults import FaultySaver

__all__ = ["FakeClock", "FaultySaver"]
