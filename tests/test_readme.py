"""Every Python block in the README runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_readme_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    # dont_inherit: the block runs without this module's `from __future__ import annotations`,
    # as it would in a user's file (string annotations could not be resolved here).
    code = compile(BLOCKS[index], f"README.md block {index}", "exec", dont_inherit=True)
    exec(code, {"__name__": "readme"})
    capsys.readouterr()
