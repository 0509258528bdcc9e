"""The seed pipeline example (``make demo``, second part): fallbacks, degraded mode, the
gate and the bounded delegation loop, sync and async."""

from __future__ import annotations

from typing import Any

import pytest

from examples import research_pipeline
from examples.research_pipeline import MAX_DRAFTS, OUTAGE_ENDS_AT, build_pipeline, scripted_models
from langgraph_resilience import FakeClock, InMemoryBreakerStore, ledger
from langgraph_resilience.cli import main as cli_main


class Pipeline:
    def __init__(self, clock: FakeClock, store: InMemoryBreakerStore) -> None:
        self.clock = clock
        self.models = scripted_models(clock)
        self.graph = build_pipeline(self.models, clock=clock, store=store)


@pytest.fixture
def pipeline(clock: FakeClock, store: InMemoryBreakerStore) -> Pipeline:
    return Pipeline(clock, store)


def check_outage_request(final: dict[str, Any]) -> None:
    view = ledger(final)
    assert view.path[:3] == ("research_api", "research_mirror", "cached_research")
    assert view.status("research_api") == "failed"
    assert view.status("research_mirror") == "failed"
    assert view.outcomes["research_api"]["error_code"] == "CONNECTION"
    assert view.fallbacks == ("research_api", "research_mirror")
    assert view.degraded
    assert final["notes"] == research_pipeline.CACHED_NOTES
    assert "Written from cached research" in final["answer"]  # degraded mode reached the writer


def check_unsure_request(final: dict[str, Any]) -> None:
    view = ledger(final)
    assert not view.degraded
    gate = view.verdicts["gate"]
    assert gate["passed"]
    assert gate["rounds"] == 1
    assert final["analysis"]["verified"] is True  # the fact-checker's revision replaced it
    assert view.visits_of("writer") == MAX_DRAFTS
    (limit,) = view.limits
    assert limit["node"] == "writer"
    assert limit["routed_to"] == "publish_best_draft"
    assert view.path[-1] == "publish_best_draft"


def check_unverified_request(final: dict[str, Any]) -> None:
    view = ledger(final)
    assert not view.verdicts["gate"]["passed"]
    assert view.status("gate") == "partial"
    assert "flag_unverified" in view.path
    assert "could not be verified" in final["answer"]


def test_pipeline_sync(pipeline: Pipeline) -> None:
    check_outage_request(pipeline.graph.invoke({"question": "q1"}))
    pipeline.clock.advance(OUTAGE_ENDS_AT)
    check_unsure_request(pipeline.graph.invoke({"question": "q2"}))
    check_unverified_request(pipeline.graph.invoke({"question": "q3"}))
    assert pipeline.models.writer.calls == 1 + MAX_DRAFTS + 1
    assert pipeline.models.fact_checker.calls == 2


async def test_pipeline_async(pipeline: Pipeline) -> None:
    check_outage_request(await pipeline.graph.ainvoke({"question": "q1"}))
    pipeline.clock.advance(OUTAGE_ENDS_AT)
    check_unsure_request(await pipeline.graph.ainvoke({"question": "q2"}))
    check_unverified_request(await pipeline.graph.ainvoke({"question": "q3"}))


def test_demo_tells_the_story(capsys: pytest.CaptureFixture[str]) -> None:
    research_pipeline.main()
    out = capsys.readouterr().out
    milestones = [
        "research_api: failed [CONNECTION]",
        "degraded: yes",
        "(Written from cached research",
        "gate: passed (score 0.85, 1 fact-check round(s))",
        "loop limit: writer reached max_visits_per_node=3, went to publish_best_draft",
        "gate: failed: confidence 0.60 is below 0.75",
        "could not be verified",
    ]
    positions = [out.find(text) for text in milestones]
    assert -1 not in positions, [m for m, p in zip(milestones, positions, strict=True) if p == -1]
    assert positions == sorted(positions), "the story is told out of order"
    research_pipeline.main()
    assert capsys.readouterr().out == out  # deterministic, fresh each run


def test_cli_demo_runs_every_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "The breaker is closed again" in out  # research_team
    assert "loop limit: writer" in out  # research_pipeline
    assert "the HealthMonitor's table:" in out  # multi_agent, last
    assert out.rindex("the HealthMonitor's table:") > out.rindex("loop limit: writer")
