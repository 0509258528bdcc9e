"""Checkpointer resilience: ``ResilientSaver`` and its policy.

The only package besides ``graph/`` that imports LangGraph, and only
``langgraph.checkpoint``.
"""

from langgraph_resilience.checkpoint.policy import SaverPolicy, is_transient
from langgraph_resilience.checkpoint.recovery import StoredRun
from langgraph_resilience.checkpoint.saver import (
    ReconcileReport,
    ResilientSaver,
    SaverListener,
    SaverStatus,
)

__all__ = [
    "ReconcileReport",
    "ResilientSaver",
    "SaverListener",
    "SaverPolicy",
    "SaverStatus",
    "StoredRun",
    "is_transient",
]
