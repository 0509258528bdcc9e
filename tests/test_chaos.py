"""Chaos: seeded fault injection for nodes, chat models and tools.

Every fault kind on each target, sync and async; determinism; outage windows and
latency on a ``FakeClock`` (and a slow-call breaker opening because of it); hangs and
``release()``; and chaos inside real ``StateGraph``s with ``guard`` and ``fallback_to``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import json
import re
import textwrap
import threading
from datetime import timedelta
from typing import Any, TypedDict

import pytest
from langchain_core.language_models import BaseChatModel, FakeListChatModel
from langchain_core.language_models.fake_chat_models import FakeMessagesListChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.runnables import RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool, tool
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command
from pydantic import Field

from langgraph_resilience import (
    BreakerPolicy,
    BreakerState,
    CircuitBreaker,
    CircuitOpenError,
    CountWindow,
    FakeClock,
    InMemoryBreakerStore,
    MonotonicClock,
    ResilienceState,
    fallback_to,
    guard,
    quality_below,
)
from langgraph_resilience import testing as testing_module
from langgraph_resilience.testing import (
    MALFORMED,
    Chaos,
    ChaosChatModel,
    ChaosTool,
    Faults,
    Injection,
    Outage,
)
from langgraph_resilience.testing import chaos as chaos_module

MODES = ["sync", "async"]
ANSWER = "Paris is lovely"  # 15 characters: malformed, it is "Paris i{"
WAIT = 5.0  # seconds a test waits for another thread before failing (never reached)


@pytest.fixture
def chaos(clock: FakeClock) -> Chaos:
    """A Chaos on the test's fake clock: latency moves the clock, nothing sleeps."""
    return Chaos(seed=11, clock=clock)


class Calls:
    """Counts the real calls that got through the chaos."""

    def __init__(self) -> None:
        self.n = 0


def answer_node(calls: Calls | None = None, result: Any = None) -> tuple[Any, Any]:
    """A sync and an async node returning ``result`` (a small answer by default)."""
    value = {"answer": ANSWER, "score": 3} if result is None else result

    def answer(state: Any) -> Any:
        if calls is not None:
            calls.n += 1
        return value

    async def aanswer(state: Any) -> Any:
        return answer(state)

    return answer, aanswer


async def call_node(chaos: Chaos, faults: Faults, mode: str, **kwargs: Any) -> Any:
    """Wrap the answer node (sync or async) under the name "answer" and call it once."""
    calls = kwargs.pop("calls", None)
    sync_node, async_node = answer_node(calls, kwargs.pop("result", None))
    if mode == "sync":
        return chaos.node(sync_node, faults, name="answer")({})
    return await chaos.node(async_node, faults, name="answer")({})


async def ask(model: BaseChatModel, mode: str, prompt: str = "where?") -> Any:
    return model.invoke(prompt) if mode == "sync" else await model.ainvoke(prompt)


async def use(t: BaseTool, mode: str, tool_input: Any) -> Any:
    return t.invoke(tool_input) if mode == "sync" else await t.ainvoke(tool_input)


@tool
def lookup(city: str) -> str:
    """Look up what a city is like."""
    return f"{city} is lovely"


@tool
def rate(city: str) -> dict[str, Any]:
    """Rate a city."""
    return {"city": city, "confidence": 0.9}


def kinds(chaos: Chaos) -> list[str]:
    return [i.kind for i in chaos.injected]


def outcome(node: Any) -> Any:
    """Call a sync node once: its result, or the type of the error it raised."""
    try:
        return node({})
    except Exception as exc:
        return type(exc)


def run_many(chaos: Chaos, faults: Faults, n: int, *, name: str = "answer") -> list[Any]:
    """Call a chaos node ``n`` times; each outcome is the result or the error's type."""
    node = chaos.node(answer_node()[0], faults, name=name)
    return [outcome(node) for _ in range(n)]


MIXED = Faults(
    error_rate=0.3,
    errors=(ConnectionError, TimeoutError),
    latency=1.0,
    latency_rate=0.5,
    malformed_rate=0.2,
    low_confidence_rate=0.2,
)


# ---- validation


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"error_rate": True}, "error_rate"),
        ({"latency_rate": -0.1}, "latency_rate"),
        ({"hang_rate": float("nan")}, "hang_rate"),
        ({"malformed_rate": "often"}, "malformed_rate"),
        ({"low_confidence_rate": 2}, "low_confidence_rate"),
        ({"errors": ()}, "errors"),
        ({"errors": ("boom",)}, "errors"),
        ({"errors": (int,)}, "errors"),
        ({"latency": -1}, "latency"),
        ({"latency": "1s"}, "latency"),
        ({"confidence_field": ""}, "confidence_field"),
        ({"confidence_field": "analysis..confidence"}, "confidence_field"),
        ({"low_confidence": 1.2}, "low_confidence"),
        ({"outages": ((10, 20),)}, "outages"),
        ({"outages": 5}, "outages"),
    ],
)
def test_faults_validation_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    """A bad Faults value fails at construction with a message naming the field."""
    with pytest.raises((ValueError, TypeError), match=rf"^{field} "):
        Faults(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((-1, 5), {}, "Outage.start"),
        ((5, 5), {}, "Outage.end"),
        ((10, 2), {}, "Outage.end"),
        ((0, "soon"), {}, "Outage.end"),
        ((0, 1), {"error": "down"}, "Outage.error"),
    ],
)
def test_outage_validation_names_the_field(
    args: tuple[Any, ...], kwargs: dict[str, Any], field: str
) -> None:
    """A bad Outage fails at construction with a message naming the field."""
    with pytest.raises((ValueError, TypeError), match=rf"^{re.escape(field)} "):
        Outage(*args, **kwargs)


def test_faults_accepts_a_list_or_a_single_error() -> None:
    """Lists become tuples and a lone error type is wrapped, so Faults stay hashable."""
    assert Faults(errors=[TimeoutError]).errors == (TimeoutError,)  # type: ignore[arg-type]
    assert Faults(errors=TimeoutError).errors == (TimeoutError,)  # type: ignore[arg-type]
    assert Faults(outages=[Outage(1, 2)]).outages == (Outage(1, 2),)  # type: ignore[arg-type]
    assert hash(Faults(error_rate=0.5)) == hash(Faults(error_rate=0.5))


def test_wrappers_refuse_what_they_cannot_wrap(chaos: Chaos) -> None:
    """Each wrapper says what it takes; a Chaos refuses a bad seed or clock."""
    with pytest.raises(TypeError, match="node function or a runnable"):
        chaos.node(42, Faults())
    with pytest.raises(TypeError, match="BaseChatModel"):
        chaos.chat_model("gpt", Faults())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="@tool"):
        chaos.tool(lookup.func, Faults())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="faults must be a Faults"):
        chaos.node(answer_node()[0], {"error_rate": 1.0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="name must be"):
        chaos.node(answer_node()[0], Faults(), name="")
    with pytest.raises(TypeError, match="seed"):
        Chaos(1.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="clock"):
        Chaos(clock=object())  # type: ignore[arg-type]


def test_reprs_read_well(chaos: Chaos) -> None:
    """Faults show only what differs from the defaults; Chaos sums up its log."""
    assert repr(Faults()) == "Faults()"
    assert repr(Faults(error_rate=0.2, latency=1.5)) == "Faults(error_rate=0.2, latency=1.5)"
    assert repr(chaos) == "<Chaos seed=11 on FakeClock(now=0): nothing injected yet>"
    run_many(chaos, Faults(error_rate=1.0, latency=1.0), 2, name="search")
    assert repr(chaos) == (
        "<Chaos seed=11 on FakeClock(now=0): 2 injected into 'search' (error 2)>"
    )
    model = chaos.chat_model(FakeListChatModel(responses=["a"]), Faults(hang_rate=0.5))
    assert "faults=Faults(hang_rate=0.5)" in repr(model)
    assert "target='FakeListChatModel'" in repr(model)


def test_testing_exports_are_sorted_and_documented() -> None:
    """The chaos names are exported from langgraph_resilience.testing, documented."""
    names = testing_module.__all__
    assert names == sorted(names, key=lambda n: (not n.isupper(), n))  # ruff's RUF022 order
    for name in ("Chaos", "Faults", "Injection", "Outage", "MALFORMED"):
        assert name in names
    for obj in (Chaos, Faults, Injection, Outage, ChaosChatModel, ChaosTool):
        assert inspect.getdoc(obj)


BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)
EXAMPLES = [
    (f"{getattr(obj, '__qualname__', 'chaos')} example {i}", textwrap.dedent(block))
    for obj in (chaos_module, Chaos, Chaos.node, Faults, Outage)
    for i, block in enumerate(BLOCK.findall(inspect.getdoc(obj) or ""))
]


@pytest.mark.parametrize(("label", "code"), EXAMPLES, ids=[label for label, _ in EXAMPLES])
def test_docstring_examples_run(label: str, code: str) -> None:
    """The module's and each public object's ```python example runs as written."""
    exec(compile(code, label, "exec"), {"__name__": "docstring"})


# ---- determinism


def test_same_seed_same_injections_different_seed_different() -> None:
    """Two runs with one seed inject the same faults in the same order; another seed
    does not."""

    def log(seed: int) -> list[Injection]:
        chaos = Chaos(seed, clock=FakeClock())
        run_many(chaos, MIXED, 60)
        return chaos.injected

    first, second = log(5), log(5)
    assert first == second
    assert {i.kind for i in first} == {"error", "latency", "malformed", "low_confidence"}
    assert log(6) != first


def test_same_seed_same_injections_on_a_real_clock() -> None:
    """``Injection.at`` is left out of comparisons, so logs of runs on the monotonic
    clock (times differ) still compare equal."""
    faults = Faults(error_rate=0.5, malformed_rate=0.5)
    first, second = Chaos(3), Chaos(3)
    assert run_many(first, faults, 30) == run_many(second, faults, 30)
    assert first.injected == second.injected
    assert first.count("error") > 0


def test_targets_draw_from_their_own_generators() -> None:
    """Calls to another target, even interleaved, do not change a target's faults, and
    two targets with the same faults do not fail together."""
    alone, crowded = Chaos(9, clock=FakeClock()), Chaos(9, clock=FakeClock())
    run_many(alone, MIXED, 30, name="a")
    other = crowded.node(answer_node()[0], MIXED, name="b")
    a = crowded.node(answer_node()[0], MIXED, name="a")
    for _ in range(30):
        outcome(other)
        outcome(a)
    assert [i for i in crowded.injected if i.target == "a"] == alone.injected

    def fates(target: str) -> list[str]:
        return [i.kind for i in crowded.injected if i.target == target]

    assert fates("b")
    assert fates("b") != fates("a")  # seeded per name: targets do not fail in lockstep


def test_a_calls_fate_depends_only_on_its_index() -> None:
    """Every call draws the same numbers: an outage window does not reshuffle the calls
    after it, and raising a rate only adds faults."""
    faults = Faults(error_rate=0.3, malformed_rate=0.3)
    clocks = FakeClock(), FakeClock()
    plain = Chaos(4, clock=clocks[0])
    scripted = Chaos(4, clock=clocks[1])
    plain_node = plain.node(answer_node()[0], faults, name="n")
    with_outage = dataclasses.replace(faults, outages=(Outage(3, 6),))
    scripted_node = scripted.node(answer_node()[0], with_outage, name="n")
    outcomes: list[tuple[Any, Any]] = []
    for _ in range(12):
        outcomes.append((outcome(plain_node), outcome(scripted_node)))
        for c in clocks:
            c.advance(1)
    for index, (without, with_) in enumerate(outcomes):
        if 3 <= index < 6:
            assert with_ is ConnectionError  # the outage
        else:
            assert with_ == without
    low = run_many(Chaos(4, clock=FakeClock()), Faults(error_rate=0.2), 50)
    high = run_many(Chaos(4, clock=FakeClock()), Faults(error_rate=0.6), 50)
    failed_low = {i for i, o in enumerate(low) if o is ConnectionError}
    failed_high = {i for i, o in enumerate(high) if o is ConnectionError}
    assert failed_low
    assert failed_low < failed_high


def test_errors_are_picked_from_the_list_and_raised_fresh(chaos: Chaos) -> None:
    """Types, instances and factories are all raised; an instance as a fresh copy each
    time, so tracebacks do not pile up on the template."""
    template = ValueError("bad input")
    faults = Faults(error_rate=1.0, errors=(TimeoutError, template, lambda: KeyError("k")))
    node = chaos.node(answer_node()[0], faults, name="picky")
    raised: list[BaseException] = []
    for _ in range(30):
        with pytest.raises(Exception) as info:
            node({})
        raised.append(info.value)
    assert {type(e) for e in raised} == {TimeoutError, ValueError, KeyError}
    values = [e for e in raised if isinstance(e, ValueError)]
    assert all(e is not template and e.args == ("bad input",) for e in values)
    assert template.__traceback__ is None
    assert "injected into 'picky' by chaos" in str(
        next(e for e in raised if type(e) is TimeoutError)
    )


def test_a_factory_that_returns_no_exception_is_reported(chaos: Chaos) -> None:
    """A factory returning something else fails with a TypeError naming ``errors``."""
    node = chaos.node(answer_node()[0], Faults(error_rate=1.0, errors=(lambda: "oops",)))  # type: ignore[arg-type, return-value]
    with pytest.raises(TypeError, match=r"^errors: the factory"):
        node({})


# ---- nodes


@pytest.mark.parametrize("mode", MODES)
async def test_node_error_stops_the_call(chaos: Chaos, mode: str) -> None:
    """An injected error is raised before the node runs, and logged."""
    calls = Calls()
    with pytest.raises(ConnectionError, match="injected into 'answer'"):
        await call_node(chaos, Faults(error_rate=1.0), mode, calls=calls)
    assert calls.n == 0
    [injection] = chaos.injected
    assert (injection.target, injection.kind) == ("answer", "error")
    assert injection.detail.startswith("ConnectionError(")


@pytest.mark.parametrize("mode", MODES)
async def test_node_outage_window_follows_the_fake_clock(
    chaos: Chaos, clock: FakeClock, mode: str
) -> None:
    """Calls fail from the window's start (inclusive) to its end (exclusive), with the
    window's error, and succeed on both sides of it."""
    faults = Faults(outages=(Outage(10, 20), Outage(30, timedelta(seconds=40), error=TimeoutError)))
    outcomes = []
    for at in (0, 9.99, 10, 19.99, 20, 29.99, 30, 39.99, 40):
        clock.advance(at - clock.now())
        try:
            await call_node(chaos, faults, mode)
            outcomes.append("ok")
        except (ConnectionError, TimeoutError) as exc:
            outcomes.append(type(exc).__name__)
    assert outcomes == [
        "ok", "ok", "ConnectionError", "ConnectionError", "ok",
        "ok", "TimeoutError", "TimeoutError", "ok",
    ]  # fmt: skip
    assert [(i.kind, i.at) for i in chaos.injected] == [
        ("outage", 10),
        ("outage", 19.99),
        ("outage", 30),
        ("outage", 39.99),
    ]
    assert "injected outage of 'answer' (10s to 20s)" in chaos.injected[0].detail


async def test_outage_times_count_from_when_the_chaos_was_made() -> None:
    """A clock that already reads 1000 s does not put the calls inside Outage(0, 10)
    forever: windows are measured from the Chaos's creation."""
    clock = FakeClock(start=1000)
    chaos = Chaos(clock=clock)
    faults = Faults(outages=(Outage(0, 10),))
    with pytest.raises(ConnectionError):
        await call_node(chaos, faults, "sync")
    clock.advance(10)
    assert await call_node(chaos, faults, "sync") == {"answer": ANSWER, "score": 3}
    assert chaos.now() == 10


@pytest.mark.parametrize("mode", MODES)
async def test_node_latency_advances_the_fake_clock(
    chaos: Chaos, clock: FakeClock, mode: str
) -> None:
    """On a FakeClock, latency moves the clock instead of sleeping; latency_rate=0
    turns it off."""
    await call_node(chaos, Faults(latency=timedelta(seconds=2)), mode)
    assert clock.now() == 2.0
    await call_node(chaos, Faults(latency=5, latency_rate=0.0), mode)
    assert clock.now() == 2.0
    assert [(i.kind, i.detail) for i in chaos.injected] == [("latency", "2s")]


@pytest.mark.parametrize("mode", MODES)
async def test_latency_waits_on_a_real_clock(mode: str) -> None:
    """On the monotonic clock, the latency is really waited for (sync and async)."""
    chaos = Chaos()
    stopwatch = MonotonicClock()
    started = stopwatch.now()
    await call_node(chaos, Faults(latency=0.02), mode)  # a real 20 ms wait: the point
    assert stopwatch.now() - started >= 0.02
    assert kinds(chaos) == ["latency"]


@pytest.mark.parametrize("mode", MODES)
async def test_node_malformed_replaces_every_string(chaos: Chaos, mode: str) -> None:
    """Every string in the update, at any depth, becomes MALFORMED; other values stay,
    and the node's own dict is not touched."""
    result = {
        "answer": ANSWER,
        "meta": {"sources": ["a", "b"], "pages": 2},
        "pair": ("x", 1),
        "messages": [AIMessage("hello")],
        "ok": True,
    }
    got = await call_node(chaos, Faults(malformed_rate=1.0), mode, result=result)
    assert got == {
        "answer": MALFORMED,
        "meta": {"sources": [MALFORMED, MALFORMED], "pages": 2},
        "pair": (MALFORMED, 1),
        "messages": [AIMessage(MALFORMED)],
        "ok": True,
    }
    assert result["answer"] == ANSWER
    assert result["meta"] == {"sources": ["a", "b"], "pages": 2}
    assert chaos.injected[0].detail == "5 strings replaced by MALFORMED"


@pytest.mark.parametrize("mode", MODES)
async def test_node_low_confidence_sets_the_field(chaos: Chaos, mode: str) -> None:
    """The confidence field is set (added if absent); a dotted field reaches into a
    nested dict; a path that does not exist leaves the result as it is."""
    top = await call_node(chaos, Faults(low_confidence_rate=1.0), mode)
    assert top == {"answer": ANSWER, "score": 3, "confidence": 0.2}
    nested = {"analysis": {"content": "Tides follow the Moon.", "confidence": 0.9}}
    faults = Faults(
        low_confidence_rate=1.0, confidence_field="analysis.confidence", low_confidence=0.1
    )
    got = await call_node(chaos, faults, mode, result=nested)
    assert got == {"analysis": {"content": "Tides follow the Moon.", "confidence": 0.1}}
    assert nested["analysis"]["confidence"] == 0.9
    missing = await call_node(chaos, faults, mode, result={"answer": "x"})
    assert missing == {"answer": "x"}
    assert [i.detail for i in chaos.injected] == [
        "confidence=0.2",
        "analysis.confidence=0.1",
        "left as is: no 'analysis.confidence' to set",
    ]


async def test_node_returning_a_command_has_its_update_damaged(chaos: Chaos) -> None:
    """A Command keeps its goto; its update is malformed and lowered like a dict."""
    command = Command(update={"answer": ANSWER}, goto="writer")
    faults = Faults(malformed_rate=1.0, low_confidence_rate=1.0)
    got = await call_node(chaos, faults, "sync", result=command)
    assert got == Command(update={"answer": MALFORMED, "confidence": 0.2}, goto="writer")
    assert kinds(chaos) == ["malformed", "low_confidence"]


def test_node_keeps_signature_and_nature(chaos: Chaos) -> None:
    """The wrapper has the node's signature and name, and is async iff the node is."""

    def plain(state: dict[str, Any], config: RunnableConfig) -> dict[str, Any]:
        return {}

    async def coroutine(state: dict[str, Any]) -> dict[str, Any]:
        return {}

    wrapped, awrapped = chaos.node(plain, Faults()), chaos.node(coroutine, Faults())
    assert inspect.signature(wrapped) == inspect.signature(plain)
    assert wrapped.__name__ == "plain"
    assert not inspect.iscoroutinefunction(wrapped)
    assert inspect.iscoroutinefunction(awrapped)


class Seen(TypedDict, total=False):
    seen: str


@pytest.mark.parametrize("mode", MODES)
async def test_langgraph_still_injects_config_into_a_chaos_node(
    chaos: Chaos, clock: FakeClock, mode: str
) -> None:
    """In a real graph, a chaos node asking for ``config`` still gets it, and latency
    still moves the clock."""

    def sync_node(state: Seen, config: RunnableConfig) -> Seen:
        return {"seen": config["configurable"]["thread_id"]}

    async def async_node(state: Seen, config: RunnableConfig) -> Seen:
        return sync_node(state, config)

    node = sync_node if mode == "sync" else async_node
    builder = StateGraph(Seen)
    builder.add_node("n", chaos.node(node, Faults(latency=1.0)))
    builder.add_edge(START, "n")
    graph = builder.compile()
    config: RunnableConfig = {"configurable": {"thread_id": "t-7"}}
    final = graph.invoke({}, config) if mode == "sync" else await graph.ainvoke({}, config)
    assert final == {"seen": "t-7"}
    assert clock.now() == 1.0


@pytest.mark.parametrize("mode", MODES)
async def test_a_runnable_node_is_wrapped_too(chaos: Chaos, mode: str) -> None:
    """A runnable (here a RunnableLambda) is wrapped for both invoke and ainvoke."""
    runnable = RunnableLambda(lambda state: {"seen": "runnable"}, name="lam")
    builder = StateGraph(Seen)
    builder.add_node("n", chaos.node(runnable, Faults(malformed_rate=1.0)))
    builder.add_edge(START, "n")
    graph = builder.compile()
    final = graph.invoke({}) if mode == "sync" else await graph.ainvoke({})
    assert final == {"seen": MALFORMED}
    assert chaos.injected[0].target == "lam"


# ---- chat models


@pytest.mark.parametrize("mode", MODES)
async def test_model_error_is_raised_from_the_call(chaos: Chaos, mode: str) -> None:
    """An injected error is raised by invoke/ainvoke and the real model is not asked."""
    inner = FakeListChatModel(responses=[ANSWER])
    model = chaos.chat_model(inner, Faults(error_rate=1.0, errors=(TimeoutError,)))
    with pytest.raises(TimeoutError, match="injected into 'FakeListChatModel'"):
        await ask(model, mode)
    assert inner.i == 0  # the fake did not move to its next response
    assert kinds(chaos) == ["error"]


@pytest.mark.parametrize("mode", MODES)
async def test_model_malformed_cuts_the_answer_in_half(chaos: Chaos, mode: str) -> None:
    """Malformed text is its first half followed by "{"; the message stays an AIMessage."""
    model = chaos.chat_model(FakeListChatModel(responses=[ANSWER]), Faults(malformed_rate=1.0))
    reply = await ask(model, mode)
    assert isinstance(reply, AIMessage)
    assert reply.content == "Paris i{"
    assert chaos.injected[0].detail == "message text cut in half + '{'"


@pytest.mark.parametrize("mode", MODES)
async def test_model_low_confidence_marks_the_answer(chaos: Chaos, mode: str) -> None:
    """Plain text gets "(confidence: 0.2)" appended; a JSON object gets its field set."""
    as_json = json.dumps({"answer": "Paris", "confidence": 0.95})
    inner = FakeListChatModel(responses=[ANSWER, as_json])
    model = chaos.chat_model(inner, Faults(low_confidence_rate=1.0))
    assert (await ask(model, mode)).content == f"{ANSWER}\n(confidence: 0.2)"
    assert json.loads((await ask(model, mode)).content) == {"answer": "Paris", "confidence": 0.2}


@pytest.mark.parametrize("mode", MODES)
async def test_model_latency_and_outage_follow_the_fake_clock(
    chaos: Chaos, clock: FakeClock, mode: str
) -> None:
    """Latency moves the shared clock; during an outage the model call fails."""
    faults = Faults(latency=3.0, outages=(Outage(5, 10),))
    model = chaos.chat_model(FakeListChatModel(responses=[ANSWER]), faults, name="llm")
    assert (await ask(model, mode)).content == ANSWER
    assert clock.now() == 3.0
    clock.advance(3)
    with pytest.raises(ConnectionError, match="outage of 'llm'"):
        await ask(model, mode)
    assert kinds(chaos) == ["latency", "outage"]


def test_model_is_a_chat_model_that_bypasses_the_cache(chaos: Chaos) -> None:
    """The wrapper is a BaseChatModel of type "chaos", with caching off (a cached
    answer would skip the chaos)."""
    model = chaos.chat_model(FakeListChatModel(responses=["a"]), Faults())
    assert isinstance(model, BaseChatModel)
    assert isinstance(model, ChaosChatModel)
    assert model._llm_type == "chaos"
    assert model.cache is False
    assert model.target == "FakeListChatModel"
    assert model.faults == Faults()


class ToolCallingFake(FakeMessagesListChatModel):
    """A fake model that supports bind_tools the way provider models do."""

    seen: list[dict[str, Any]] = Field(default_factory=list)

    def bind_tools(self, tools: Any, *, tool_choice: str | None = None, **kwargs: Any) -> Any:
        names = [t.name for t in tools]
        return self.bind(tools=names, tool_choice=tool_choice, **kwargs)

    def _generate(
        self, messages: Any, stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> Any:
        self.seen.append(kwargs)
        return super()._generate(messages, stop, run_manager, **kwargs)


@pytest.mark.parametrize("mode", MODES)
async def test_model_bind_tools_keeps_the_chaos_in_front(chaos: Chaos, mode: str) -> None:
    """bind_tools binds the tools the real model's way onto the chaos wrapper: the call
    still goes through the chaos, and the real model receives the tools."""
    call = AIMessage("", tool_calls=[{"name": "lookup", "args": {"city": "Oslo"}, "id": "c1"}])
    inner = ToolCallingFake(responses=[call], seen=[])
    model = chaos.chat_model(inner, Faults(latency=1.0)).bind_tools([lookup], tool_choice="any")
    reply = await ask(model, mode)
    assert reply.tool_calls[0]["args"] == {"city": "Oslo"}
    assert inner.seen == [{"tools": ["lookup"], "tool_choice": "any"}]
    assert kinds(chaos) == ["latency"]
    with pytest.raises(NotImplementedError):
        chaos.chat_model(FakeListChatModel(responses=["a"]), Faults()).bind_tools([lookup])


class Question(TypedDict, total=False):
    question: str
    answer: str


@pytest.mark.parametrize("mode", MODES)
async def test_model_in_a_node_streams_the_damaged_answer(chaos: Chaos, mode: str) -> None:
    """Inside a graph node, stream_mode="messages" shows the answer the graph got (the
    garbled one), once; the real model's own run is not streamed."""
    model = chaos.chat_model(FakeListChatModel(responses=[ANSWER]), Faults(malformed_rate=1.0))

    def answer(state: Question) -> Question:
        return {"answer": str(model.invoke(state["question"]).content)}

    async def aanswer(state: Question) -> Question:
        return {"answer": str((await model.ainvoke(state["question"])).content)}

    builder = StateGraph(Question)
    builder.add_node("answer", answer if mode == "sync" else aanswer)
    builder.add_edge(START, "answer")
    graph = builder.compile()
    question: Question = {"question": "where?"}
    if mode == "sync":
        chunks = list(graph.stream(question, stream_mode="messages"))
    else:
        chunks = [chunk async for chunk in graph.astream(question, stream_mode="messages")]
    assert [message.content for message, _ in chunks] == ["Paris i{"]


class Answer(ResilienceState, total=False):
    question: str
    answer: str


@pytest.mark.parametrize("mode", MODES)
async def test_model_failure_in_a_guarded_node_falls_back(
    chaos: Chaos, clock: FakeClock, store: InMemoryBreakerStore, mode: str
) -> None:
    """A node calling a chaos model fails over to a cached answer through guard() and
    fallback_to(), and its breaker counts the failures until it opens."""
    model = chaos.chat_model(FakeListChatModel(responses=[ANSWER]), Faults(error_rate=1.0))
    breaker = CircuitBreaker("llm", BreakerPolicy(failure_threshold=2), clock=clock, store=store)

    def answer(state: Answer) -> dict[str, Any]:
        return {"answer": model.invoke(state["question"]).content}

    async def aanswer(state: Answer) -> dict[str, Any]:
        return {"answer": (await model.ainvoke(state["question"])).content}

    builder = StateGraph(Answer)
    builder.add_node(
        "answer",
        guard(answer if mode == "sync" else aanswer, breaker=breaker),
        error_handler=fallback_to("cached"),
    )
    builder.add_node("cached", lambda state: {"answer": "from the cache"})
    builder.add_edge(START, "answer")
    graph = builder.compile()
    for _ in range(3):
        question: Answer = {"question": "where?"}
        final = graph.invoke(question) if mode == "sync" else await graph.ainvoke(question)
        assert final["answer"] == "from the cache"
        assert final["resilience"]["degraded"]
    assert breaker.state is BreakerState.OPEN
    assert chaos.count("error") == 2  # the third call was rejected by the open breaker


# ---- tools


def test_tool_keeps_name_description_and_schema(chaos: Chaos) -> None:
    """A model binds the chaos tool exactly as it would the real one."""
    wrapped = chaos.tool(lookup, Faults(error_rate=0.5))
    assert isinstance(wrapped, ChaosTool)
    assert (wrapped.name, wrapped.description) == (lookup.name, lookup.description)
    assert wrapped.args == lookup.args
    assert (
        wrapped.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
        == lookup.tool_call_schema.model_json_schema()  # type: ignore[union-attr]
    )
    assert wrapped.faults == Faults(error_rate=0.5)


@pytest.mark.parametrize("mode", MODES)
async def test_tool_error_is_raised_even_for_a_tool_call(chaos: Chaos, mode: str) -> None:
    """An injected error is raised as the exception, with plain args or a tool call,
    not turned into a ToolMessage."""
    wrapped = chaos.tool(lookup, Faults(error_rate=1.0))
    with pytest.raises(ConnectionError, match="injected into 'lookup'"):
        await use(wrapped, mode, {"city": "Oslo"})
    tool_call = {"type": "tool_call", "name": "lookup", "args": {"city": "Oslo"}, "id": "c1"}
    with pytest.raises(ConnectionError):
        await use(wrapped, mode, tool_call)
    assert kinds(chaos) == ["error", "error"]


@pytest.mark.parametrize("mode", MODES)
async def test_tool_output_is_damaged(chaos: Chaos, clock: FakeClock, mode: str) -> None:
    """Text output is cut in half + "{" (inside a ToolMessage too, which keeps its call
    id); dict output gets its confidence lowered; latency moves the clock."""
    wrapped = chaos.tool(lookup, Faults(malformed_rate=1.0, latency=0.5))
    assert await use(wrapped, mode, {"city": "Paris"}) == "Paris i{"
    tool_call = {"type": "tool_call", "name": "lookup", "args": {"city": "Paris"}, "id": "c1"}
    message = await use(wrapped, mode, tool_call)
    assert isinstance(message, ToolMessage)
    assert (message.content, message.tool_call_id) == ("Paris i{", "c1")
    assert clock.now() == 1.0
    rated = chaos.tool(rate, Faults(low_confidence_rate=1.0))
    assert await use(rated, mode, {"city": "Oslo"}) == {"city": "Oslo", "confidence": 0.2}


@pytest.mark.parametrize("mode", MODES)
async def test_tool_error_in_a_tool_node_becomes_an_error_message(chaos: Chaos, mode: str) -> None:
    """ToolNode(handle_tool_errors=True) turns an injected error into an error
    ToolMessage, as it would a real failure."""
    builder = StateGraph(MessagesState)
    builder.add_node(
        "tools", ToolNode([chaos.tool(lookup, Faults(error_rate=1.0))], handle_tool_errors=True)
    )
    builder.add_edge(START, "tools")
    graph = builder.compile()
    call = AIMessage("", tool_calls=[{"name": "lookup", "args": {"city": "Oslo"}, "id": "c1"}])
    state = {"messages": [call]}
    final = graph.invoke(state) if mode == "sync" else await graph.ainvoke(state)
    reply = final["messages"][-1]
    assert isinstance(reply, ToolMessage)
    assert reply.status == "error"
    assert "ConnectionError" in str(reply.content)


# ---- hangs


def test_sync_hang_blocks_until_release(chaos: Chaos) -> None:
    """A hanging call blocks its thread until release(); then it completes."""
    node = chaos.node(answer_node()[0], Faults(hang_rate=1.0), name="answer")
    results: list[Any] = []
    worker = threading.Thread(target=lambda: results.append(node({})))
    worker.start()
    try:
        assert chaos.hanging.wait(WAIT)
        assert worker.is_alive()
        assert results == []
        assert kinds(chaos) == ["hang"]
    finally:
        chaos.release()
        worker.join(WAIT)
    assert not worker.is_alive()
    assert results == [{"answer": ANSWER, "score": 3}]
    assert not chaos.hanging.is_set()


async def test_async_hang_blocks_until_release(chaos: Chaos) -> None:
    """An async hang suspends its task (not the event loop) until release()."""
    node = chaos.node(answer_node()[1], Faults(hang_rate=1.0), name="answer")
    task = asyncio.create_task(node({}))
    try:
        assert await asyncio.to_thread(chaos.hanging.wait, WAIT)
        # A yield, not a wait (no breaker timing): the loop is free, so other work runs
        # while the hung task stays suspended.
        await asyncio.sleep(0)
        assert not task.done()
    finally:
        chaos.release()
    assert await asyncio.wait_for(task, WAIT) == {"answer": ANSWER, "score": 3}


def test_a_hang_then_an_error_in_that_order(chaos: Chaos) -> None:
    """After a hang is released the call goes on to its next steps: here, an error."""
    node = chaos.node(answer_node()[0], Faults(hang_rate=1.0, error_rate=1.0), name="answer")
    errors: list[BaseException] = []

    def call() -> None:
        try:
            node({})
        except ConnectionError as exc:
            errors.append(exc)

    with chaos:  # releases on exit, whatever happens
        worker = threading.Thread(target=call)
        worker.start()
        assert chaos.hanging.wait(WAIT)
    worker.join(WAIT)
    assert len(errors) == 1
    assert kinds(chaos) == ["hang", "error"]


def test_later_hangs_wait_for_the_next_release(chaos: Chaos) -> None:
    """release() frees the calls hanging now; a call that hangs afterwards waits again."""
    node = chaos.node(answer_node()[0], Faults(hang_rate=1.0), name="answer")
    chaos.release()  # nothing hangs yet: this must not pre-release later hangs
    worker = threading.Thread(target=lambda: node({}))
    worker.start()
    try:
        assert chaos.hanging.wait(WAIT)
        assert worker.is_alive()
    finally:
        chaos.release()
        worker.join(WAIT)
    assert not worker.is_alive()


# ---- breakers and graphs


class Step(ResilienceState, total=False):
    answer: str


@pytest.mark.parametrize("mode", MODES)
async def test_latency_opens_a_slow_call_breaker(
    chaos: Chaos, clock: FakeClock, store: InMemoryBreakerStore, mode: str
) -> None:
    """Injected latency advances the breaker's clock, so its slow-call rule opens it,
    with no real sleeping; then the node is not called at all."""
    policy = BreakerPolicy(
        failure_threshold=None,
        slow_call_duration=1.0,
        slow_call_rate_threshold=1.0,
        window=CountWindow(2),
        minimum_calls=2,
    )
    breaker = CircuitBreaker("slow-search", policy, clock=clock, store=store)
    calls = Calls()
    sync_node, async_node = answer_node(calls, {"answer": "fresh"})
    slow = chaos.node(sync_node if mode == "sync" else async_node, Faults(latency=2.0))
    builder = StateGraph(Step)
    builder.add_node("search", guard(slow, breaker=breaker))
    builder.add_edge(START, "search")
    graph = builder.compile()
    for _ in range(2):
        final = graph.invoke({}) if mode == "sync" else await graph.ainvoke({})
        assert final["answer"] == "fresh"
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpenError):
        graph.invoke({}) if mode == "sync" else await graph.ainvoke({})
    assert calls.n == 2
    assert clock.now() == 4.0


def test_low_confidence_opens_a_quality_breaker(
    chaos: Chaos, clock: FakeClock, store: InMemoryBreakerStore
) -> None:
    """Low-confidence output counts as failure under record_result=quality_below(...)."""
    policy = BreakerPolicy(failure_threshold=2, record_result=quality_below(0.7, field="analysis"))
    breaker = CircuitBreaker("analyst", policy, clock=clock, store=store)
    result = {"analysis": {"content": "Tides follow the Moon.", "confidence": 0.9}}
    faults = Faults(low_confidence_rate=1.0, confidence_field="analysis.confidence")
    analyst = guard(chaos.node(answer_node(result=result)[0], faults), breaker=breaker)
    for _ in range(2):
        assert analyst({})["analysis"]["confidence"] == 0.2
    assert breaker.state is BreakerState.OPEN


def search_graph(
    chaos: Chaos, faults: Faults, clock: FakeClock, store: InMemoryBreakerStore, mode: str
) -> Any:
    """search (chaos, guarded) -> on failure, cached."""
    calls = Calls()
    sync_node, async_node = answer_node(calls, {"answer": "fresh"})
    primary = chaos.node(sync_node if mode == "sync" else async_node, faults, name="search")
    breaker = CircuitBreaker(
        "search", BreakerPolicy(failure_threshold=10), clock=clock, store=store
    )
    builder = StateGraph(Step)
    builder.add_node("search", guard(primary, breaker=breaker), error_handler=fallback_to("cached"))
    builder.add_node("cached", lambda state: {"answer": "cached"})
    builder.add_edge(START, "search")
    return builder.compile()


@pytest.mark.parametrize("mode", MODES)
async def test_scripted_outage_falls_back_during_the_window(
    chaos: Chaos, clock: FakeClock, store: InMemoryBreakerStore, mode: str
) -> None:
    """A StateGraph whose primary is down from 10 s to 20 s answers from the cache then,
    and from the primary before and after."""
    graph = search_graph(chaos, Faults(outages=(Outage(10, 20),)), clock, store, mode)
    answers = []
    for at in (0, 15, 25):
        clock.advance(at - clock.now())
        final = graph.invoke({}) if mode == "sync" else await graph.ainvoke({})
        answers.append((final["answer"], bool(final["resilience"].get("degraded"))))
    assert answers == [("fresh", False), ("cached", True), ("fresh", False)]
    assert kinds(chaos) == ["outage"]


@pytest.mark.parametrize("mode", MODES)
async def test_random_errors_fall_back_exactly_when_injected(
    chaos: Chaos, clock: FakeClock, store: InMemoryBreakerStore, mode: str
) -> None:
    """With a 50% error rate, a run answers from the cache exactly when an error was
    injected into it, and a second chaos with the same seed picks the same runs."""

    async def answers(chaos: Chaos) -> list[str]:
        graph = search_graph(chaos, Faults(error_rate=0.5), clock, store, mode)
        got = []
        for _ in range(8):
            before = chaos.count("error")
            final = graph.invoke({}) if mode == "sync" else await graph.ainvoke({})
            assert (final["answer"] == "cached") == (chaos.count("error") > before)
            got.append(final["answer"])
        return got

    first = await answers(chaos)
    assert set(first) == {"fresh", "cached"}
    assert await answers(Chaos(seed=11, clock=clock)) == first


async def test_async_hangs_hold_no_worker_thread(chaos: Chaos) -> None:
    """Proves: hung async calls wait on the event loop, not in the default executor's
    threads (which LangGraph uses for sync nodes), so other work is not held up."""
    node = chaos.node(answer_node()[1], Faults(hang_rate=1.0), name="answer")
    before = {t.name for t in threading.enumerate()}
    tasks = [asyncio.create_task(node({})) for _ in range(40)]
    try:
        assert await asyncio.to_thread(chaos.hanging.wait, WAIT)
        for _ in range(5):
            # A yield, not a wait (no breaker timing): lets every hung task start.
            await asyncio.sleep(0)
        assert await asyncio.wait_for(asyncio.to_thread(lambda: "free"), WAIT) == "free"
        new = {t.name for t in threading.enumerate()} - before
        assert len(new) <= 1, new  # at most the one thread to_thread above needed
        assert not any(task.done() for task in tasks)
    finally:
        chaos.release()
    assert all(result == {"answer": ANSWER, "score": 3} for result in await asyncio.gather(*tasks))


def test_durations_are_kept_in_seconds() -> None:
    outage = Outage(timedelta(seconds=10), timedelta(minutes=1))
    assert (outage.start, outage.end) == (10.0, 60.0)
    assert "10s to 60s" in str(outage.make_error("search"))
    assert Faults(latency=timedelta(milliseconds=250)).latency == 0.25


def test_an_exception_type_that_needs_more_than_a_message_is_refused() -> None:
    with pytest.raises(TypeError, match=r"errors: UnicodeDecodeError cannot be built from a"):
        Faults(errors=(UnicodeDecodeError,))
    with pytest.raises(TypeError, match=r"Outage.error: UnicodeDecodeError"):
        Outage(0, 1, error=UnicodeDecodeError)
