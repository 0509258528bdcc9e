"""Every example in a public docstring runs: ``>>>`` doctests and ```python blocks."""

from __future__ import annotations

import doctest
import inspect
import re
import textwrap

import pytest

import langgraph_resilience
from langgraph_resilience.core import failures, ledger, letters, loops, verdicts
from langgraph_resilience.stores import urls

BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _public_objects() -> list[tuple[str, object]]:
    found = []
    for name in langgraph_resilience.__all__:
        obj = getattr(langgraph_resilience, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            found.append((name, obj))
    return found


BLOCKS = [
    (f"{name} example {i}", textwrap.dedent(block))
    for name, obj in _public_objects()
    for i, block in enumerate(BLOCK.findall(inspect.getdoc(obj) or ""))
]


def test_there_are_examples() -> None:
    assert len(BLOCKS) >= 6


@pytest.mark.parametrize(("label", "code"), BLOCKS, ids=[label for label, _ in BLOCKS])
def test_docstring_block_runs(label: str, code: str) -> None:
    exec(compile(code, label, "exec"), {"__name__": "docstring"})


@pytest.mark.parametrize(
    "module", [failures, ledger, letters, loops, verdicts, urls], ids=lambda m: m.__name__
)
def test_doctests_pass(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.failed == 0
