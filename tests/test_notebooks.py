"""Every notebook in notebooks/ runs top to bottom in a fresh kernel from this virtualenv."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Each notebook, run once in a fresh kernel (a notebook takes a few seconds)."""
    tmp = tmp_path_factory.mktemp("jupyter")
    with pytest.MonkeyPatch.context() as monkeypatch:
        # Keep Jupyter's config, data and runtime files out of the user's home directory.
        for var in ("IPYTHONDIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
            path = tmp / var.lower()
            path.mkdir()
            monkeypatch.setenv(var, str(path))
        # Opt in to the platformdirs locations: some jupyter_core versions warn that they
        # will become the default, and pytest turns that warning into an error.
        monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        monkeypatch.setenv("LANGSMITH_TRACING", "false")
        return {path.name: run_notebook(path) for path in NOTEBOOKS}


def run_notebook(path: Path) -> Any:
    """Execute ``path`` with the python3 kernel, i.e. this interpreter (the virtualenv).

    Raises ``CellExecutionError``, with the cell's traceback, if a cell fails.
    """
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=120,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return nb


def outputs_text(cell: Any) -> str:
    """All text a code cell showed: printed streams, and plain or HTML results."""
    parts: list[str] = []
    for output in cell.get("outputs", []):
        if output["output_type"] == "stream":
            parts.append(output["text"])
        elif output["output_type"] in ("execute_result", "display_data"):
            data = output["data"]
            parts.extend(data.get(kind, "") for kind in ("text/plain", "text/html"))
    return "".join(parts)


def test_notebooks_are_committed_without_outputs() -> None:
    assert NOTEBOOKS, "no notebooks found"
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata["kernelspec"]["name"] == "python3", path.name
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [], f"{path.name}: cell {cell.id} has outputs"
                assert cell.execution_count is None, f"{path.name}: cell {cell.id} was run"


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path: Path, executed: dict[str, Any]) -> None:
    nb = executed[path.name]
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, cell.id
            assert not any(o["output_type"] == "error" for o in cell.outputs), cell.id


@pytest.mark.slow
def test_quickstart_tells_the_story(executed: dict[str, Any]) -> None:
    nb = executed["quickstart.ipynb"]
    text = {cell.id: outputs_text(cell) for cell in nb.cells if cell.cell_type == "code"}

    outage = text["outage"]
    assert "breaker closed -> open" in outage
    assert "3 consecutive failures" in outage
    assert outage.count("service NOT called (calls so far: 3)") == 2
    assert "circuit 'weather-api' is open" in outage
    assert ">open</b>" in outage  # the snapshot's HTML table shows the state

    recovery = text["recovery"]
    assert "breaker open -> half_open" in recovery
    assert "breaker half_open -> closed" in recovery
    assert "sunny in Lima (service calls so far: 6)" in recovery
    assert ">closed</b>" in recovery


@pytest.mark.slow
def test_routes_notebook_tells_the_story(executed: dict[str, Any]) -> None:
    nb = executed["routes.ipynb"]
    text = {cell.id: outputs_text(cell) for cell in nb.cells if cell.cell_type == "code"}

    fallback = text["fallback"]
    assert "last week's notes on tides (from cached research)" in fallback
    assert "<b>(degraded)</b>" in fallback  # the ledger's HTML view
    assert "CONNECTION" in fallback
    assert "TIMEOUT" in fallback

    assert "drafts written: 3" in text["loop"]
    assert "limit hit: worker max_visits_per_node=3 -> __end__" in text["loop"]

    assert "report: Tides follow the Moon." in text["gate"]
    assert "gate passed=True score=0.9 after 1 verifier round(s)" in text["gate"]


@pytest.mark.slow
def test_checkpoints_notebook_tells_the_story(executed: dict[str, Any]) -> None:
    nb = executed["checkpoints.ipynb"]
    text = {cell.id: outputs_text(cell) for cell in nb.cells if cell.cell_type == "code"}

    outage = text["outage"]
    assert "SaverFailedOver" in outage
    assert "finished: ['receive', 'charge', 'ship']" in outage
    assert "active='standby'" in outage
    assert "pending_threads=('order-1',)" in outage
    assert ">standby</b>" in outage  # the status's HTML table

    failback = text["failback"]
    assert "SaverFailedBack" in failback
    assert "same history on both: True" in failback
    assert "pending_threads=()" in failback

    recovery = text["recovery"]
    assert "order-2: stopped before ('ship',), status interrupted" in recovery
    assert "resumed: ['receive', 'charge', 'ship']" in recovery
    assert "rolled back to: ['receive']" in recovery

    assert "before the lease expires: {}" in text["leases"]
    assert "after: {'order-3': ['receive', 'charge', 'ship']}" in text["leases"]
