"""The seed pipeline: research, analysis and writing that hold up when parts fail.

::

    START -> research_api -(fails)-> research_mirror -(fails)-> cached_research
                  |                        |                          |
                  +------------------------+--------> analyst <-------+
                                                         |
                           flag_unverified <-(unsure)-- gate
                                  |                      | (verified)
                                  +---------------> supervisor --(approved)--> publish
                                                      ^    |
                                                      |    +--(3 drafts)--> publish_best_draft
                                                      |    v
                                                      writer

- **A fallback chain for research**, declared once with ``fallback_to``: the research
  API, then a mirror, then cached notes. Each failure is recorded in the run's ledger.
- **Degraded mode reaches the writer**: the ledger's ``degraded`` flag tells the writer
  its input came from a fallback, and the answer says so.
- **A verification gate on the analysis**: a low-confidence analysis goes to a
  fact-checker (a second model) before anyone builds on it; if it still falls short the
  answer carries a caveat.
- **A bounded delegation loop**: the supervisor hands the draft back to the writer until
  it approves, at most three drafts (``loop_guard``); then the best draft is published.

The models are scripted fakes (no network, no key) and time is a ``FakeClock``.
Run it with ``make demo`` or ``python -m examples.research_pipeline``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, cast

from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.runnables import Runnable, RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from examples.research_team import ScriptedChatModel
from langgraph_resilience import (
    BreakerPolicy,
    CircuitBreaker,
    FakeClock,
    InMemoryBreakerStore,
    LedgerView,
    LoopPolicy,
    ResilienceState,
    VerifiedOutput,
    fallback_to,
    guard,
    ledger,
    loop_guard,
    verification_gate,
)

__all__ = ["PipelineModels", "PipelineState", "build_pipeline", "main", "scripted_models"]

QUESTIONS = [
    "Why is the sky blue?",
    "How do vaccines train the immune system?",
    "What causes ocean tides?",
]

OUTAGE_ENDS_AT = 30.0
"""The research API and its mirror are down until this clock reading (seconds)."""
MAX_DRAFTS = 3
"""The supervisor may send the draft back to the writer this many times in all."""
CACHED_NOTES = "Cached notes from last week's research run."


def _analysis(content: str, confidence: float, *sources: str) -> str:
    return json.dumps({"content": content, "confidence": confidence, "sources": list(sources)})


# One scripted reply per call, in the order the three requests make them.
RESEARCH_NOTES = ["Two recent reviews and a textbook agree.", "Three sources agree on the Moon."]
ANALYSES = [
    _analysis("Rayleigh scattering favours short (blue) wavelengths.", 0.9, "textbook"),
    _analysis("Vaccines may train memory cells.", 0.55),  # unsure: the gate steps in
    _analysis("The Sun alone causes tides.", 0.4),  # wrong and unsure
]
FACT_CHECKS = [
    json.dumps(
        {
            "verified_content": "Vaccines show the immune system a harmless antigen; "
            "memory B and T cells remember it.",
            "revised_confidence": 0.85,
        }
    ),
    json.dumps(
        {"verified_content": "Tides: mostly the Moon, partly the Sun.", "revised_confidence": 0.6}
    ),
]
DRAFTS = [
    "Air scatters blue light most, so the sky looks blue.",
    "Vaccines teach your body to spot a germ.",
    "Vaccines let memory cells learn a germ's look-alike.",
    "A vaccine is a rehearsal: memory cells learn a harmless copy of the germ.",
    "The Moon's pull raises the tides, with a little help from the Sun.",
]
REVIEWS = ["APPROVE", "REVISE", "REVISE", "REVISE", "APPROVE"]


class PipelineState(ResilienceState, total=False):
    """What the agents share. A request starts with just ``question``."""

    question: str
    notes: str
    analysis: dict[str, Any]
    """The analyst's output: ``VerifiedOutput`` fields as plain JSON."""
    caveat: str
    draft: str
    approved: bool
    answer: str


@dataclass(frozen=True)
class PipelineModels:
    """The chat model behind each agent."""

    research_api: ScriptedChatModel
    research_mirror: ScriptedChatModel
    analyst: ScriptedChatModel
    fact_checker: ScriptedChatModel
    writer: ScriptedChatModel
    reviewer: ScriptedChatModel


def scripted_models(clock: FakeClock) -> PipelineModels:
    """Fake agents; the research API and its mirror are down until ``OUTAGE_ENDS_AT``."""

    def model(replies: list[str], *, down_until: float = 0.0, name: str = "") -> ScriptedChatModel:
        return ScriptedChatModel(
            responses=replies,
            clock=clock,
            down_until=down_until,
            outage_message=f"{name} unreachable",
        )

    return PipelineModels(
        research_api=model(RESEARCH_NOTES, down_until=OUTAGE_ENDS_AT, name="research API"),
        research_mirror=model(RESEARCH_NOTES, down_until=OUTAGE_ENDS_AT, name="research mirror"),
        analyst=model(ANALYSES),
        fact_checker=model(FACT_CHECKS),
        writer=model(DRAFTS),
        reviewer=model(REVIEWS),
    )


# ---- nodes ---------------------------------------------------------------------------


def ask(model: ScriptedChatModel, role: str, prompt: str) -> str:
    reply = model.invoke([SystemMessage(role), HumanMessage(prompt)])
    return reply.text


def research_with(model: ScriptedChatModel) -> Runnable[PipelineState, dict[str, Any]]:
    def research(state: PipelineState) -> dict[str, Any]:
        return {"notes": ask(model, "You are a researcher.", state["question"])}

    return RunnableLambda(research)


def cached_research(state: PipelineState) -> dict[str, Any]:
    return {"notes": CACHED_NOTES}


def build_pipeline(
    models: PipelineModels, *, clock: FakeClock, store: InMemoryBreakerStore
) -> CompiledStateGraph[PipelineState, None, PipelineState, PipelineState]:
    """Research (with fallbacks) -> analyst -> gate -> supervisor <-> writer."""

    def breaker(name: str) -> CircuitBreaker:
        return CircuitBreaker(name, BreakerPolicy(failure_threshold=3), clock=clock, store=store)

    def analyst(state: PipelineState) -> dict[str, Any]:
        text = ask(models.analyst, "You are an analyst.", f"Notes: {state['notes']}")
        return {"analysis": json.loads(text)}

    def fact_check(output: VerifiedOutput) -> dict[str, Any]:
        """The verifier: a second model re-reads a shaky analysis."""
        return cast(
            dict[str, Any], json.loads(ask(models.fact_checker, "Fact-check.", str(output.content)))
        )

    def flag_unverified(state: PipelineState) -> dict[str, Any]:
        return {"caveat": "The analysis could not be verified; treat it with care."}

    def supervisor(state: PipelineState) -> dict[str, Any]:
        if "draft" not in state:
            return {}  # nothing to review yet: delegate the first draft
        verdict = ask(models.reviewer, "Approve or revise.", state["draft"])
        return {"approved": verdict == "APPROVE"}

    def next_step(state: PipelineState) -> str:
        return "publish" if state.get("approved") else "writer"

    def writer(state: PipelineState) -> dict[str, Any]:
        draft = ask(models.writer, "Answer in one sentence.", state["analysis"]["content"])
        if ledger(state).degraded:  # research came from a fallback: say so
            draft += " (Written from cached research: the live sources were unavailable.)"
        if state.get("caveat"):
            draft += f" ({state['caveat']})"
        return {"draft": draft}

    def publish(state: PipelineState) -> dict[str, Any]:
        return {"answer": state["draft"]}

    research_chain = fallback_to("research_mirror", "cached_research")
    builder = StateGraph(PipelineState)
    builder.add_node(
        "research_api",
        guard(research_with(models.research_api), breaker=breaker("research_api")),
        error_handler=cast(Any, research_chain),
    )
    builder.add_node(
        "research_mirror",
        guard(research_with(models.research_mirror), breaker=breaker("research_mirror")),
        error_handler=cast(Any, research_chain),
    )
    builder.add_node("cached_research", guard(cached_research))
    builder.add_node("analyst", guard(analyst))
    builder.add_node(
        "gate",
        verification_gate(
            field="analysis", verifier=fact_check, on_pass="supervisor", on_fail="flag_unverified"
        ),
    )
    builder.add_node("flag_unverified", guard(flag_unverified))
    builder.add_node("supervisor", guard(supervisor))
    builder.add_node("writer", guard(writer))
    builder.add_node("publish", guard(publish))
    builder.add_node("publish_best_draft", guard(publish))

    builder.add_edge(START, "research_api")
    for source in ("research_api", "research_mirror", "cached_research"):
        builder.add_edge(source, "analyst")
    builder.add_edge("analyst", "gate")
    builder.add_edge("flag_unverified", "supervisor")
    builder.add_conditional_edges(
        "supervisor",
        loop_guard(
            next_step,
            policy=LoopPolicy(max_visits_per_node={"writer": MAX_DRAFTS}),
            on_exceeded="publish_best_draft",
        ),
        ["writer", "publish", "publish_best_draft"],
    )
    builder.add_edge("writer", "supervisor")
    builder.add_edge("publish", END)
    builder.add_edge("publish_best_draft", END)
    return builder.compile()


# ---- the demo ------------------------------------------------------------------------


def describe(view: LedgerView) -> list[str]:
    """What the ledger says about one request, as short lines."""
    lines = [f"path: {' -> '.join(view.path)}"]
    for node in view.failed:
        outcome = view.outcomes[node]
        lines.append(f"{node}: {outcome['status']} [{outcome['error_code']}] {outcome['error']}")
    if view.degraded:
        lines.append("degraded: yes (a fallback stood in for live research)")
    for gate, verdict in view.verdicts.items():
        result = "passed" if verdict["passed"] else "failed: " + "; ".join(verdict["reasons"])
        lines.append(
            f"{gate}: {result} (score {verdict['score']:.2f}, "
            f"{verdict['rounds']} fact-check round(s))"
        )
    lines.extend(
        f"loop limit: {limit['node']} reached {limit['limit']}={limit['maximum']}, "
        f"went to {limit['routed_to']}"
        for limit in view.limits
    )
    lines.append(f"writer visits: {view.visits_of('writer')}")
    return lines


def main() -> None:
    clock = FakeClock()
    models = scripted_models(clock)
    graph = build_pipeline(models, clock=clock, store=InMemoryBreakerStore())

    print("The seed pipeline: research (API -> mirror -> cache) -> analyst -> gate ->")
    print(f"supervisor <-> writer (at most {MAX_DRAFTS} drafts). Scripted models, no network.")
    for number, question in enumerate(QUESTIONS, start=1):
        if number == 2:
            clock.advance(OUTAGE_ENDS_AT)  # the research API comes back
        print()
        print(f"Request {number}: {question}")
        final = graph.invoke({"question": question})
        for line in describe(ledger(final)):
            print(f"  {line}")
        print(f"  answer: {final['answer']}")


if __name__ == "__main__":
    main()
