"""Every notebook in notebooks/ runs top to bottom in a fresh kernel, tracing to LangSmith.

Each notebook is executed once with nbclient, in a kernel started from this virtualenv,
with the environment a user would set to trace to LangSmith (``LANGSMITH_TRACING=true``,
an endpoint, a key, a project). The endpoint is ``tests/fake_langsmith.py``, an ingest
server running in this pytest process; the kernel is a subprocess, so plain environment
variables reach it and langsmith's caches start empty there. The runs each notebook sent
are kept with the executed notebook, so the tests can check both what a reader sees (the
cells' outputs) and what reached LangSmith (the runs, their tags and events).

The notebooks are committed without outputs: the repository check below reads them from
disk as they are stored.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from tests.fake_langsmith import FakeLangSmith, carriers, decision, runs_named

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PROJECT = "notebooks"
"""The LangSmith project the kernels trace to."""

Run = dict[str, Any]


@dataclasses.dataclass(frozen=True, kw_only=True)
class Executed:
    """A notebook after a run, and what its kernel sent to LangSmith."""

    nb: Any
    """The executed notebook (cells with their outputs)."""

    runs: dict[str, Run]
    """Run id -> run, as the capture server merged them."""

    server_errors: list[str]
    """What the capture server could not parse (expected: nothing)."""

    def text(self) -> dict[str, str]:
        """Cell id -> all the text that code cell showed."""
        return {cell.id: outputs_text(cell) for cell in self.nb.cells if cell.cell_type == "code"}

    def named(self, name: str) -> list[Run]:
        """The runs called ``name``, in trace order."""
        return runs_named(self.runs, name)

    def carriers(self, kind: str) -> list[str]:
        """The names of the runs tagged with the decision ``kind``, in trace order."""
        return carriers(self.runs, kind)


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Executed]:
    """Each notebook, run once in a fresh kernel (a notebook takes a few seconds)."""
    tmp = tmp_path_factory.mktemp("jupyter")
    results: dict[str, Executed] = {}
    with FakeLangSmith() as server, pytest.MonkeyPatch.context() as monkeypatch:
        # Keep Jupyter's config, data and runtime files out of the user's home directory.
        for var in ("IPYTHONDIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "JUPYTER_CONFIG_DIR"):
            path = tmp / var.lower()
            path.mkdir()
            monkeypatch.setenv(var, str(path))
        # Opt in to the platformdirs locations: some jupyter_core versions warn that they
        # will become the default, and pytest turns that warning into an error.
        monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        # What a user sets to trace to LangSmith, pointed at the capture server.
        monkeypatch.setenv("LANGSMITH_TRACING", "true")
        monkeypatch.setenv("LANGSMITH_ENDPOINT", server.url)
        monkeypatch.setenv("LANGSMITH_API_KEY", "test")
        monkeypatch.setenv("LANGSMITH_PROJECT", PROJECT)
        # The server does not offer zstd: say the client should not ask (no warning
        # in the cells' output about falling back to plain uploads).
        monkeypatch.setenv("LANGSMITH_DISABLE_RUN_COMPRESSION", "true")
        # A developer's shell must not redirect, thin out or blank the traces.
        for var in (
            "LANGCHAIN_TRACING_V2",
            "LANGSMITH_TRACING_V2",
            "LANGCHAIN_ENDPOINT",
            "LANGSMITH_RUNS_ENDPOINTS",
            "LANGSMITH_TRACING_SAMPLING_RATE",
            "LANGSMITH_HIDE_INPUTS",
            "LANGSMITH_HIDE_OUTPUTS",
            "LANGSMITH_HIDE_METADATA",
        ):
            monkeypatch.delenv(var, raising=False)
        for path in NOTEBOOKS:
            server.reset()
            nb = run_notebook(path)
            # The kernel has exited by now (nbclient shuts it down gracefully), and a
            # process that exits drains langsmith's upload queue first.
            results[path.name] = Executed(
                nb=nb, runs=server.runs, server_errors=list(server.errors)
            )
    return results


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


def request_lines(text: str) -> dict[str, str]:
    """City -> the line the quickstart's ``ask(city)`` printed (the latest for a city)."""
    lines = [line for line in text.splitlines() if line.startswith("t=")]
    return {line.split("s ", 1)[1].split()[0]: line for line in lines}


# ---- the repository: notebooks are stored clean ------------------------------------------

CELL_OUTPUT_METADATA = {"execution", "ExecuteTime", "collapsed", "scrolled"}
"""Cell metadata that Jupyter writes when a cell runs or its output is folded."""


def test_every_notebook_is_collected() -> None:
    names = {path.name for path in NOTEBOOKS}
    assert {
        "quickstart.ipynb",
        "breaker_anatomy.ipynb",
        "recovery.ipynb",
        "routes.ipynb",
        "checkpoints.ipynb",
    } <= names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)  # v4 with cell ids, unique
    assert (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    # Only the kernel and the language: no widget state, no signature, no language
    # version (which a run writes).
    assert set(nb.metadata) <= {"kernelspec", "language_info"}, sorted(nb.metadata)
    assert set(nb.metadata.get("language_info", {})) <= {"name"}, nb.metadata["language_info"]
    for cell in nb.cells:
        where = f"{path.name}: cell {cell.id}"
        assert not CELL_OUTPUT_METADATA & set(cell.metadata), f"{where}: {dict(cell.metadata)}"
        assert "attachments" not in cell, where
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{where} has outputs"
            assert cell.execution_count is None, f"{where} was run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_stories(path: Path) -> None:
    """A title first, and words between the code: no two code cells in a row."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown", path.name
    assert first.source.startswith("# "), path.name
    for before, cell in zip(nb.cells, nb.cells[1:], strict=False):
        kinds = (before.cell_type, cell.cell_type)
        assert kinds != ("code", "code"), f"{path.name}: no words before {cell.id}"


# ---- every notebook runs and traces -----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_and_traces(path: Path, executed: dict[str, Executed]) -> None:
    done = executed[path.name]
    for cell in done.nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is not None, cell.id
            assert not any(o["output_type"] == "error" for o in cell.outputs), cell.id
            # a warning or a traceback printed to stderr would end up in the reader's view
            assert not [o for o in cell.outputs if o.get("name") == "stderr"], (
                f"{path.name}: cell {cell.id} wrote to stderr: {outputs_text(cell)}"
            )
    assert done.server_errors == []
    runs = list(done.runs.values())
    roots = [run for run in runs if run.get("parent_run_id") is None]
    assert roots, f"{path.name}: no run reached LangSmith"
    assert {run.get("session_name") for run in runs} == {PROJECT}
    # the graphs' runs: LangGraph names a graph's root run after the graph
    assert any(run["name"] == "LangGraph" for run in roots), sorted({r["name"] for r in roots})


# ---- what each notebook shows -----------------------------------------------------------


@pytest.mark.slow
def test_quickstart_tells_the_story(executed: dict[str, Executed]) -> None:
    done = executed["quickstart.ipynb"]
    text = done.text()

    assert "t= 10s Paris  sunny in Paris" in text["ask"]
    assert ">closed</b>" in text["ask"]  # the breaker's HTML table

    outage = text["outage"]
    requests = request_lines(outage)
    for city in ("Lima", "Cairo", "Quito"):  # the API fails, the cache answers
        assert f"yesterday's forecast for {city}" in requests[city]
        assert requests[city].endswith("[forecast failed, cached_forecast success]")
    assert "breaker closed -> open: 3 consecutive failures" in outage
    for city in ("Rome", "Delhi"):  # the breaker is open: the API is not called
        assert requests[city].endswith("[forecast skipped, cached_forecast success]")
    assert "NO ANSWER: filed as a dead letter" in requests["Tokyo"]
    assert requests["Tokyo"].endswith("[forecast skipped, cached_forecast failed]")
    assert "requests during the outage: 6; calls that reached the API: 3" in outage
    assert ">open</b>" in outage

    letter = text["letter"]
    assert "cached_forecast failed: CONNECTION injected outage of 'cache'" in letter
    assert "input: city='Tokyo'" in letter
    assert "<b>DeadLetterQueue</b>" in letter
    assert "<tr><td>pending</td><td>1</td></tr>" in letter  # the queue's HTML table

    recovery = text["recovery"]
    assert "breaker open -> half_open" in recovery
    assert "breaker half_open -> closed: 2 successful trial calls" in recovery
    assert "t=120s Lima   sunny in Lima" in recovery
    assert ">closed</b>" in recovery

    replay = text["replay"]
    assert "replayed Tokyo: yesterday's forecast for Tokyo" in replay
    assert "visits on the thread: {'forecast': 1, 'cached_forecast': 1}" in replay
    assert "letter status: resolved" in replay
    assert "<tr><td>resolved</td><td>1</td></tr>" in replay


@pytest.mark.slow
def test_quickstart_decisions_reach_langsmith(executed: dict[str, Executed]) -> None:
    done = executed["quickstart.ipynb"]
    # the breaker's decisions land on the guarded node's runs
    assert done.carriers("breaker_opened") == ["forecast"]
    opened = decision(done.named("forecast")[4], "breaker_opened")  # Quito, the 5th request
    assert opened["breaker"] == "weather-api"
    assert opened["reason"] == "3 consecutive failures"
    assert done.carriers("call_rejected") == ["forecast"] * 3  # Rome, Tokyo, Delhi
    assert done.carriers("breaker_half_opened") == ["forecast"]
    assert done.carriers("breaker_closed") == ["forecast"]
    # fallbacks and the dead letter land on the error handlers' runs
    assert done.carriers("fallback_taken") == ["__error_handler__forecast"] * 6
    taken = decision(done.named("__error_handler__forecast")[0], "fallback_taken")
    assert taken == {"node": "forecast", "target": "cached_forecast", "error": "ConnectionError"}
    assert done.carriers("fallbacks_spent") == ["__error_handler__cached_forecast"]
    assert done.carriers("dead_lettered") == ["__error_handler__cached_forecast"]
    (handler,) = done.named("__error_handler__cached_forecast")
    lettered = decision(handler, "dead_lettered")
    assert lettered["node"] == "cached_forecast"
    assert lettered["error_code"] == "CONNECTION"


@pytest.mark.slow
def test_breaker_anatomy_tells_the_story(executed: dict[str, Executed]) -> None:
    done = executed["breaker_anatomy.ipynb"]
    text = done.text()

    assert "<CircuitBreaker 'search-api' closed, failures 0/3>" in text["setup"]

    traffic = text["traffic"]
    # the first outage: open, a failed trial re-opens it, then two good trials close it;
    # the second: open, then a clean recovery
    transitions = [line.split(": ", 1)[1] for line in traffic.splitlines() if line.startswith("t=")]
    assert transitions == [
        "closed -> open (3 consecutive failures)",
        "open -> half_open (recovery timeout of 30s elapsed)",
        "half_open -> open (a trial call failed)",
        "open -> half_open (recovery timeout of 30s elapsed)",
        "half_open -> closed (2 successful trial calls)",
        "closed -> open (3 consecutive failures)",
        "open -> half_open (recovery timeout of 30s elapsed)",
        "half_open -> closed (2 successful trial calls)",
    ]
    assert traffic.count("[high] breaker 'search-api' opened") == 2  # the monitor's alerts
    assert "[low] slow call at 'search'" in traffic
    assert "{'answered': 36, 'failed': 9, 'rejected by the breaker': 15}" in traffic
    assert "the API was called 45 times" in traffic

    (plot,) = [cell for cell in done.nb.cells if cell.get("id") == "plot"]
    (figure,) = [o for o in plot.outputs if o["output_type"] in ("execute_result", "display_data")]
    assert figure["data"]["image/png"]  # plot_timeline's figure, shown as a PNG
    assert "with 2 Axes" in figure["data"]["text/plain"]  # the bands and the latencies

    numbers = text["numbers"]
    assert "breaker: opened 3 times, available 71% of the time" in numbers
    assert "node:    60 calls, 15 rejected" in numbers
    assert "10 alerts" in numbers  # the monitor's HTML table

    assert done.carriers("breaker_opened") == ["search"] * 3
    assert done.carriers("call_rejected") == ["search"] * 15
    assert done.carriers("breaker_closed") == ["search"] * 2


@pytest.mark.slow
def test_recovery_notebook_tells_the_story(executed: dict[str, Executed]) -> None:
    done = executed["recovery.ipynb"]
    text = done.text()

    # a worker process ran up to ship, where it hung, and was killed
    assert "the worker has started: ['receive', 'charge', 'ship']" in text["kill"]
    assert "killed, exit code -9" in text["kill"]  # SIGKILL

    # the checkpoint it left, read from the notebook's process
    inspect = text["inspect"]
    assert "next: ('ship',)" in inspect
    assert "log: ['received an order for a teapot', 'charged the card']" in inspect
    assert "<b>Ledger</b>: 2 visits" in inspect  # the ledger's HTML view

    # resumed with graph.invoke(None, config): only ship ran again
    resume = text["resume"]
    assert "'shipped with a parcel label for the teapot']" in resume
    assert "the killed worker started: ['receive', 'charge', 'ship']" in resume
    assert "this notebook started:    ['ship']" in resume
    assert "visits: {'receive': 1, 'charge': 1, 'ship': 1}" in resume

    # a standby RunWorker takes over once the dead worker's lease expires
    leases = text["leases"]
    assert "killed, exit code -9" in leases
    assert "order-2 is held by the dead worker: True" in leases
    assert "recovered while the lease is live: {}" in leases
    assert (
        "recovered after it expired: {'order-2': 'shipped with a parcel label for the kettle'}"
        in leases
    )
    assert "the killed worker started: ['receive', 'charge', 'ship']" in leases
    assert "the standby started:       ['ship']" in leases
    assert "the lease is free again: True" in leases

    # both resumed runs were traced to the end (the killed workers' runs never end)
    finished = [
        run["outputs"]["log"][-1]
        for run in done.named("LangGraph")
        if run.get("end_time") and (run.get("outputs") or {}).get("log")
    ]
    assert finished == [
        "shipped with a parcel label for the teapot",
        "shipped with a parcel label for the kettle",
    ]


@pytest.mark.slow
def test_routes_notebook_tells_the_story(executed: dict[str, Executed]) -> None:
    done = executed["routes.ipynb"]
    text = done.text()

    fallback = text["fallback"]
    assert "last week's notes on tides (from cached research)" in fallback
    assert "<b>(degraded)</b>" in fallback  # the ledger's HTML view
    assert "CONNECTION" in fallback
    assert "TIMEOUT" in fallback

    assert "drafts written: 3" in text["loop"]
    assert "limit hit: worker max_visits_per_node=3 -> __end__" in text["loop"]

    assert "report: Tides follow the Moon." in text["gate"]
    assert "gate passed=True score=0.9 after 1 verifier round(s)" in text["gate"]

    assert done.carriers("fallback_taken") == [
        "__error_handler__search_api",
        "__error_handler__search_mirror",
    ]
    assert done.carriers("loop_limit") == ["loop_guard_next_step"]
    assert done.carriers("gate_verdict") == ["gate"]


@pytest.mark.slow
def test_checkpoints_notebook_tells_the_story(executed: dict[str, Executed]) -> None:
    done = executed["checkpoints.ipynb"]
    text = done.text()

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

    # the failover happened outside every run: it got a short run of its own
    assert done.named("langgraph_resilience.saver_failed_over")
