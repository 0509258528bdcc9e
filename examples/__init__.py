"""Runnable examples for langgraph-resilience (``python -m examples.<name>``)."""
