"""Benchmarks for langgraph_resilience: ``make bench`` (``python -m benchmarks.run``).

See ``benchmarks/README.md`` for the method and the latest results.
"""
