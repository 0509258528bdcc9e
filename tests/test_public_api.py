"""The curated top-level API: sorted, complete, documented."""

from __future__ import annotations

import inspect
import types

import pytest

import langgraph_resilience
from langgraph_resilience import testing
from langgraph_resilience.cli import main


def test_all_is_sorted_and_unique() -> None:
    names = langgraph_resilience.__all__
    assert names == sorted(names)
    assert len(names) == len(set(names))


def test_every_public_name_is_exported_and_documented() -> None:
    public = {
        name
        for name, value in vars(langgraph_resilience).items()
        if not name.startswith("_") and not inspect.ismodule(value)
    }
    assert public == set(langgraph_resilience.__all__)
    for name in langgraph_resilience.__all__:
        obj = getattr(langgraph_resilience, name)
        if isinstance(obj, types.GenericAlias):  # type aliases such as Listener
            continue
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_design_contract_names() -> None:
    """Names that DESIGN.md commits to."""
    for name in ("BreakerPolicy", "CircuitBreaker", "CircuitOpenError", "BreakerState", "guard"):
        assert name in langgraph_resilience.__all__
    assert testing.FakeClock is langgraph_resilience.FakeClock
    assert issubclass(langgraph_resilience.CircuitOpenError, RuntimeError)
    assert issubclass(langgraph_resilience.CircuitOpenError, langgraph_resilience.ResilienceError)
    assert [s.value for s in langgraph_resilience.BreakerState] == ["closed", "open", "half_open"]


def test_cli_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    assert (
        capsys.readouterr().out.strip()
        == f"langgraph-resilience {langgraph_resilience.__version__}"
    )


def test_cli_without_command_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "usage: langgraph-resilience" in capsys.readouterr().out
