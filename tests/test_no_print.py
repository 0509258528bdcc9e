"""Library code logs through ``logging`` under ``langgraph_resilience.*`` and never prints:
only the command line (``cli.py``) writes to the terminal."""

from __future__ import annotations

import ast
import logging
from pathlib import Path

import pytest

import langgraph_resilience

PACKAGE = Path(langgraph_resilience.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.name != "cli.py")


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_library_code_never_prints(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    prints = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "print"
    ]
    assert prints == [], f"{path.name} calls print() on lines {prints}: use logging"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_loggers_live_under_the_package_name(path: Path) -> None:
    """Every ``logging.getLogger("...")`` names a logger under ``langgraph_resilience``,
    so one ``logging.getLogger("langgraph_resilience")`` configures them all."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "getLogger"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            name = node.args[0].value
            assert name == "langgraph_resilience" or name.startswith("langgraph_resilience."), (
                f"{path.name}: logger {name!r}"
            )


def test_the_package_logger_is_quiet_until_configured() -> None:
    handlers = logging.getLogger("langgraph_resilience").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
