"""Public test aids: a clock you move by hand, a checkpointer that fails on demand, and
seeded chaos for nodes, chat models and tools."""

from langgraph_resilience.core.clock import FakeClock
from langgraph_resilience.testing.chaos import (
    MALFORMED,
    Chaos,
    ChaosChatModel,
    ChaosTool,
    Faults,
    Injection,
    Outage,
)
from langgraph_resilience.testing.faults import FaultySaver

__all__ = [
    "MALFORMED",
    "Chaos",
    "ChaosChatModel",
    "ChaosTool",
    "FakeClock",
    "Faults",
    "FaultySaver",
    "Injection",
    "Outage",
]
