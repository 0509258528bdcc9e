"""``Chaos``: deterministic, seeded faults for graph nodes, chat models and tools.

Wrap a node, a chat model or a tool with a ``Chaos`` and give it ``Faults``: its calls
then fail, slow down, hang or return damaged output at the rates given, and fail for
the whole of each scripted ``Outage`` window. Every fault is drawn from a generator
seeded per target and logged in ``chaos.injected``, so a run can be replayed exactly:
the demo, the notebooks and the tests use it to show what each resilience feature does
about each kind of fault.

Each call goes through these steps, in this order:

1. **outage**: inside one of ``faults.outages`` (seconds on the chaos clock), raise the
   window's error;
2. **hang**: block until ``chaos.release()``;
3. **error**: raise one of ``faults.errors``;
4. **latency**: wait ``faults.latency`` seconds, or, on a ``FakeClock``, move the clock
   on instead (a breaker sharing the clock sees a slow call, and nothing sleeps);
5. call the real node, model or tool;
6. **malformed**, then **low confidence**: damage what it returned.

A call that raises at step 1 or 3 never reaches the real thing.

**Determinism.** Each target (by name) has its own generator, seeded from the chaos
seed and the name, and every call draws the same six numbers from it whatever happens
to the call. So the n-th call to a target meets the same fate for a given seed:
calls to other targets, an outage window, or a change to another rate do not
reshuffle it, and raising a rate only adds faults (a call that failed at
``error_rate=0.1`` still fails at ``0.2``). Two targets wrapped under one name share a
generator.

**Damaged output, exactly.** Text (a model's answer, a tool's string output, the content
of a message) is *garbled*; a dict (a node's update, a tool's dict output, the update of
a ``Command``) has its strings *replaced*:

- malformed text: its first half (rounded down) followed by ``{``, like a reply cut off
  mid-JSON: ``"Paris is lovely"`` becomes ``"Paris i{"``;
- a malformed dict: every ``str`` inside it, at any depth through dicts, lists and
  tuples, becomes :data:`MALFORMED`, and so does the text content of any message in it;
  numbers, booleans and other objects are kept;
- low-confidence text: if it is a JSON object, its ``confidence_field`` is set to
  ``low_confidence`` and the JSON is written back; otherwise ``"\\n(confidence: 0.2)"``
  is appended (with the field's name and value);
- a low-confidence dict: its ``confidence_field`` set to ``low_confidence``; dots in the
  field name reach into nested dicts (``"analysis.confidence"``), which must exist.

The result is copied, never changed in place. Any other result is passed on as it is
(the log says so).

Example:
    ```python
    from typing import TypedDict

    from langgraph.graph import START, StateGraph
    from langgraph_resilience import FakeClock, fallback_to, guard
    from langgraph_resilience.testing import Chaos, Faults, Outage

    class State(TypedDict, total=False):
        answer: str

    def search(state: State) -> dict:
        return {"answer": "fresh"}

    def cached(state: State) -> dict:
        return {"answer": "cached"}

    clock = FakeClock()
    chaos = Chaos(seed=42, clock=clock)
    down_10_to_20 = Faults(outages=(Outage(10, 20),))

    builder = StateGraph(State)
    builder.add_node("search", guard(chaos.node(search, down_10_to_20)),
                     error_handler=fallback_to("cached"))
    builder.add_node("cached", cached)
    builder.add_edge(START, "search")
    graph = builder.compile()

    assert graph.invoke({})["answer"] == "fresh"
    clock.advance(15)  # inside the outage window
    assert graph.invoke({})["answer"] == "cached"
    assert [i.kind for i in chaos.injected] == ["outage"]
    ```
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import functools
import hashlib
import json
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from types import TracebackType
from typing import Any, Literal, TypeAlias, TypeVar, cast

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForLLMRun,
    CallbackManager,
    CallbackManagerForLLMRun,
)
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult, LLMResult
from langchain_core.runnables import Runnable, RunnableBinding, RunnableConfig, RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.constants import TAG_NOSTREAM
from langgraph.types import Command
from pydantic import BaseModel, PrivateAttr

from langgraph_resilience.breaker import is_async_callable
from langgraph_resilience.core.clock import Clock, MonotonicClock, to_seconds
from langgraph_resilience.tracing import annotate

__all__ = [
    "MALFORMED",
    "Chaos",
    "ChaosChatModel",
    "ChaosTool",
    "ErrorSpec",
    "Faults",
    "Injection",
    "InjectionKind",
    "Outage",
]

logger = logging.getLogger("langgraph_resilience.chaos")

MALFORMED = "<malformed output injected by chaos>"
"""What every string in a malformed dict becomes."""

ErrorSpec: TypeAlias = type[BaseException] | BaseException | Callable[[], BaseException]
"""An error to inject: a type (called with a message), an instance (raised as a fresh
copy each time, so tracebacks do not pile up) or a factory taking no argument."""

InjectionKind: TypeAlias = Literal[
    "error", "outage", "latency", "hang", "malformed", "low_confidence"
]
"""The kinds of fault, as logged in :attr:`Injection.kind`."""

NodeT = TypeVar("NodeT")

_HANG_POLL = 0.1  # seconds an async hang waits between checks of Chaos.release()


# ---- what to inject


@dataclass(frozen=True, slots=True)
class Outage:
    """A scripted outage: calls from ``start`` (inclusive) to ``end`` (exclusive) fail.

    Times are seconds on the chaos clock, counted from when the ``Chaos`` was made.

    Example:
        ```python
        from langgraph_resilience.testing import Faults, Outage

        faults = Faults(outages=(Outage(10, 20), Outage(60, 90, error=TimeoutError)))
        ```
    """

    start: float | timedelta
    """When the outage begins (seconds, >= 0)."""

    end: float | timedelta
    """When it is over (seconds, after ``start``)."""

    error: ErrorSpec | None = field(default=None, kw_only=True)
    """What calls raise meanwhile; ``None`` for a ``ConnectionError`` naming the window."""

    def __post_init__(self) -> None:
        start = to_seconds(self.start, field="Outage.start")
        end = to_seconds(self.end, field="Outage.end")
        if not end > start:
            raise ValueError(f"Outage.end must be after Outage.start ({start:g}s), got {end:g}s")
        # Kept in seconds, so each call compares floats instead of converting again.
        object.__setattr__(self, "start", start)
        object.__setattr__(self, "end", end)
        if self.error is not None:
            _check_error_spec("Outage.error", self.error)

    def covers(self, at: float) -> bool:
        """Whether a call at ``at`` seconds falls inside the outage."""
        return cast(float, self.start) <= at < cast(float, self.end)

    def make_error(self, target: str) -> BaseException:
        """The error a call to ``target`` raises during the outage."""
        if self.error is None:
            window = f"{cast(float, self.start):g}s to {cast(float, self.end):g}s"
            return ConnectionError(f"injected outage of {target!r} ({window})")
        return _make_error(self.error, target, "Outage.error")


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Faults:
    """What to inject into one target's calls, and how often.

    Rates are probabilities per call, from 0 (never) to 1 (every call).

    Example:
        ```python
        from langgraph_resilience.testing import Faults, Outage

        flaky = Faults(
            error_rate=0.2,                       # one call in five fails...
            errors=(ConnectionError, TimeoutError),  # ...with one of these
            latency=1.5, latency_rate=0.5,        # half the calls take 1.5 s longer
            malformed_rate=0.1,                   # one answer in ten is garbled
            outages=(Outage(30, 45),),            # and it is down from 30 s to 45 s
        )
        ```
    """

    error_rate: float = 0.0
    """Share of calls that raise one of ``errors`` (0 to 1)."""

    errors: tuple[ErrorSpec, ...] = (ConnectionError,)
    """The errors to raise, picked by the seeded generator: exception types (called with
    a message), instances (raised as fresh copies) or factories taking no argument."""

    latency: float | timedelta = 0.0
    """Seconds added to a call (>= 0), on a share ``latency_rate`` of the calls."""

    latency_rate: float = 1.0
    """Share of calls that get ``latency`` (0 to 1); every call by default."""

    hang_rate: float = 0.0
    """Share of calls that block until ``Chaos.release()`` (0 to 1): a sync call blocks
    its thread, an async one only its task."""

    malformed_rate: float = 0.0
    """Share of results that are garbled (0 to 1): see the module's documentation."""

    low_confidence_rate: float = 0.0
    """Share of results whose confidence is set to ``low_confidence`` (0 to 1)."""

    confidence_field: str = "confidence"
    """The key that holds a result's confidence; dots reach into nested dicts."""

    low_confidence: float = 0.2
    """The confidence a low-confidence result reports (0 to 1)."""

    outages: tuple[Outage, ...] = ()
    """Scripted windows during which every call fails, checked before anything else."""

    def __post_init__(self) -> None:
        for name in (
            "error_rate",
            "latency_rate",
            "hang_rate",
            "malformed_rate",
            "low_confidence_rate",
        ):
            _check_probability(name, getattr(self, name))
        errors: Any = self.errors
        if isinstance(errors, BaseException) or (
            isinstance(errors, type) and issubclass(errors, BaseException)
        ):
            errors = (errors,)  # a single error is forgiven
        if not isinstance(errors, Sequence) or isinstance(errors, str) or not errors:
            raise ValueError(
                "errors must be a non-empty tuple of exception types, exceptions or "
                f"factories, got {self.errors!r}"
            )
        for spec in errors:
            _check_error_spec("errors", spec)
        object.__setattr__(self, "errors", tuple(errors))
        object.__setattr__(self, "latency", to_seconds(self.latency, field="latency"))
        field_name = self.confidence_field
        if not isinstance(field_name, str) or not all(field_name.split(".")):
            raise ValueError(
                f"confidence_field must be a key such as 'confidence' or "
                f"'analysis.confidence', got {field_name!r}"
            )
        value = self.low_confidence
        if not _is_number(value) or not 0 <= value <= 1:
            raise ValueError(f"low_confidence must be a confidence from 0 to 1, got {value!r}")
        outages: Any = self.outages
        if not isinstance(outages, Sequence) or isinstance(outages, str):
            raise TypeError(f"outages must be a tuple of Outage, got {outages!r}")
        for outage in outages:
            if not isinstance(outage, Outage):
                raise TypeError(f"outages must hold Outage(start, end) values, got {outage!r}")
        object.__setattr__(self, "outages", tuple(outages))

    def __repr__(self) -> str:
        changed = [
            f"{f.name}={getattr(self, f.name)!r}"
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != f.default
        ]
        return f"Faults({', '.join(changed)})"


@dataclass(frozen=True, slots=True)
class Injection:
    """One fault injected into one call, as logged in ``Chaos.injected``.

    ``at`` is informational and left out of comparisons, so the logs of two runs with
    one seed compare equal even on a real clock.
    """

    target: str
    """The name of the node, model or tool."""

    kind: InjectionKind
    """``"outage"``, ``"hang"``, ``"error"``, ``"latency"``, ``"malformed"`` or
    ``"low_confidence"``."""

    at: float = field(compare=False)
    """When, in seconds on the chaos clock since the ``Chaos`` was made."""

    detail: str
    """What exactly: the error's ``repr``, the seconds added, what was damaged."""


# ---- the chaos


class Chaos:
    """Seeded fault injection for nodes, chat models and tools.

    Example:
        ```python
        from langchain_core.language_models import FakeListChatModel
        from langgraph_resilience import FakeClock
        from langgraph_resilience.testing import Chaos, Faults

        clock = FakeClock()
        chaos = Chaos(seed=7, clock=clock)
        model = chaos.chat_model(
            FakeListChatModel(responses=["The tide is high."]),
            Faults(latency=3.0, malformed_rate=1.0),
        )
        assert model.invoke("tides?").content == "The tide{"  # cut in half, then "{"
        assert clock.now() == 3.0  # the latency moved the fake clock: no sleeping
        assert [i.kind for i in chaos.injected] == ["latency", "malformed"]
        ```

    Args:
        seed: the seed every target's generator is derived from (an int or a str).
        clock: where time is read: outage windows, ``Injection.at``. Defaults to the
            monotonic clock, on which latency is waited for. A clock with an
            ``advance(seconds)`` method (``FakeClock``) is moved on instead.

    Hangs block until :meth:`release`: in a test, release in a ``finally`` (or use the
    ``Chaos`` as a context manager, which releases on exit).
    """

    def __init__(self, seed: int | str = 0, *, clock: Clock | None = None) -> None:
        if not isinstance(seed, (int, str)) or isinstance(seed, bool):
            raise TypeError(f"seed must be an int or a str, got {seed!r}")
        if clock is not None and not callable(getattr(clock, "now", None)):
            raise TypeError(f"clock must have a now() method returning seconds, got {clock!r}")
        self.seed = seed
        """The seed the targets' generators are derived from."""
        self.clock: Clock = MonotonicClock() if clock is None else clock
        """The clock outage windows and ``Injection.at`` are read on."""
        self.injected: list[Injection] = []
        """Every fault injected so far, in order."""
        self.hanging = threading.Event()
        """Set once a call hangs; cleared by :meth:`release`."""
        self._epoch = self.clock.now()
        self._lock = threading.Lock()
        self._rngs: dict[str, random.Random] = {}
        self._gate = threading.Event()

    # ---- wrappers

    def node(self, fn: NodeT, faults: Faults, *, name: str | None = None) -> NodeT:
        """Wrap a graph node (sync or async function, or runnable) for ``add_node``.

        The wrapper keeps the node's signature (``functools.wraps``), so LangGraph still
        injects ``config`` and ``runtime``, and its sync or async nature, so ``guard()``
        still picks the right front. Put it *inside* ``guard()``, so that the breaker
        sees the faults.

        Example:
            ```python
            from langgraph_resilience.testing import MALFORMED, Chaos, Faults

            chaos = Chaos(seed=1)
            def writer(state: dict) -> dict:
                return {"report": "All clear.", "pages": 3}

            broken = chaos.node(writer, Faults(malformed_rate=1.0))
            assert broken({}) == {"report": MALFORMED, "pages": 3}
            ```

        Args:
            fn: the node.
            faults: what to inject.
            name: the target's name in the log (and its generator's seed); defaults to
                the function's name.
        """
        _check_faults(faults)
        if isinstance(fn, Runnable):
            runnable: Runnable[Any, Any] = fn
            target = self._target(runnable.get_name() if name is None else name, faults)

            def invoke(state: Any, config: RunnableConfig) -> Any:
                fate = target.enter()
                return target.damage(fate, runnable.invoke(state, config))

            async def ainvoke(state: Any, config: RunnableConfig) -> Any:
                fate = await target.aenter()
                return target.damage(fate, await runnable.ainvoke(state, config))

            return cast(NodeT, RunnableLambda(invoke, afunc=ainvoke, name=target.name))
        if not callable(fn):
            raise TypeError(f"node() wraps a node function or a runnable, got {fn!r}")
        func: Callable[..., Any] = fn
        default = getattr(func, "__name__", None) or type(func).__name__
        target = self._target(default if name is None else name, faults)
        if is_async_callable(func):

            @functools.wraps(func)
            async def chaotic_async(*args: Any, **kwargs: Any) -> Any:
                fate = await target.aenter()
                return target.damage(fate, await func(*args, **kwargs))

            return cast(NodeT, chaotic_async)

        @functools.wraps(func)
        def chaotic(*args: Any, **kwargs: Any) -> Any:
            fate = target.enter()
            return target.damage(fate, func(*args, **kwargs))

        return cast(NodeT, chaotic)

    def chat_model(
        self, model: BaseChatModel, faults: Faults, *, name: str | None = None
    ) -> ChaosChatModel:
        """Wrap a LangChain chat model; see :class:`ChaosChatModel`.

        Args:
            model: the real model.
            faults: what to inject.
            name: the target's name; defaults to the model's ``name``, else its class name.
        """
        if not isinstance(model, BaseChatModel):
            raise TypeError(f"chat_model() wraps a LangChain BaseChatModel, got {model!r}")
        _check_faults(faults)
        default = model.name or type(model).__name__
        target = self._target(default if name is None else name, faults)
        return ChaosChatModel(inner=model, target=target)

    def tool(self, tool: BaseTool, faults: Faults, *, name: str | None = None) -> ChaosTool:
        """Wrap a LangChain tool; see :class:`ChaosTool`.

        Args:
            tool: the real tool (decorate a plain function with ``@tool`` first).
            faults: what to inject.
            name: the target's name in the log; defaults to the tool's name (which the
                wrapper keeps either way, as the model calls it by that name).
        """
        if not isinstance(tool, BaseTool):
            raise TypeError(
                f"tool() wraps a LangChain BaseTool (decorate functions with @tool), got {tool!r}"
            )
        _check_faults(faults)
        target = self._target(tool.name if name is None else name, faults)
        return ChaosTool(inner=tool, target=target)

    # ---- control and inspection

    def release(self) -> None:
        """Let every hanging call go on. Calls that hang later wait for the next release."""
        with self._lock:
            gate, self._gate = self._gate, threading.Event()
            self.hanging.clear()
        gate.set()

    def now(self) -> float:
        """Seconds on the chaos clock since this ``Chaos`` was made."""
        return self.clock.now() - self._epoch

    def count(self, kind: InjectionKind | None = None, *, target: str | None = None) -> int:
        """How many faults were injected, of one kind and/or into one target."""
        return sum(
            1
            for i in self.injected
            if (kind is None or i.kind == kind) and (target is None or i.target == target)
        )

    def __enter__(self) -> Chaos:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        head = f"<Chaos seed={self.seed!r} on {self.clock!r}"
        injected = list(self.injected)
        if not injected:
            return f"{head}: nothing injected yet>"
        kinds = Counter(i.kind for i in injected)
        targets = ", ".join(sorted({repr(i.target) for i in injected}))
        counts = ", ".join(f"{kind} {n}" for kind, n in kinds.items())
        return f"{head}: {len(injected)} injected into {targets} ({counts})>"

    # ---- plumbing

    def _target(self, name: str, faults: Faults) -> _Target:
        if not isinstance(name, str) or not name:
            raise ValueError(f"name must be a non-empty string, got {name!r}")
        with self._lock:
            rng = self._rngs.get(name)
            if rng is None:
                rng = self._rngs[name] = random.Random(_derive_seed(self.seed, name))
        return _Target(self, name, faults, rng, self._lock, self._hang_gate)

    def _hang_gate(self) -> threading.Event:
        with self._lock:
            self.hanging.set()
            return self._gate


@dataclass(frozen=True, slots=True)
class _Fate:
    """What happens to one call, drawn when it starts."""

    hang: bool
    error: ErrorSpec | None
    latency: float
    malformed: bool
    low_confidence: bool


class _Target:
    """One wrapped node, model or tool: its faults, its generator and a call's steps.

    ``enter``/``aenter`` run steps 1 to 4 (they raise or return the call's fate), the
    wrapper calls the real thing, and ``damage`` runs step 6 on its result.
    """

    __slots__ = ("_advance", "_chaos", "_gate", "_lock", "_rng", "faults", "name")

    def __init__(
        self,
        chaos: Chaos,
        name: str,
        faults: Faults,
        rng: random.Random,
        lock: threading.Lock,
        gate: Callable[[], threading.Event],
    ) -> None:
        self.name = name
        self.faults = faults
        self._chaos = chaos
        self._rng = rng
        self._lock = lock
        self._gate = gate
        advance = getattr(chaos.clock, "advance", None)
        self._advance: Callable[[float], object] | None = advance if callable(advance) else None

    def enter(self) -> _Fate:
        fate = self._draw()
        if fate.hang:
            self._hang().wait()  # an injected hang: until Chaos.release()
        self._raise_error(fate)
        wait = self._add_latency(fate)
        if wait:
            threading.Event().wait(wait)  # injected latency, on a real clock
        return fate

    async def aenter(self) -> _Fate:
        fate = self._draw()
        if fate.hang:
            gate = self._hang()
            # An injected hang, until Chaos.release(): polled on the event loop, so a hung
            # call holds no worker thread (LangGraph runs sync nodes on those) and a
            # cancellation takes effect at once.
            while not gate.is_set():  # noqa: ASYNC110 - a threading.Event, set from any thread
                await asyncio.sleep(_HANG_POLL)
        self._raise_error(fate)
        wait = self._add_latency(fate)
        if wait:
            await asyncio.sleep(wait)  # injected latency, on a real clock
        return fate

    def damage(self, fate: _Fate, result: Any) -> Any:
        faults = self.faults
        if fate.malformed:
            result, detail = _on_result(result, _malform)
            self._record("malformed", detail)
        if fate.low_confidence:
            lower = functools.partial(
                _lower_confidence, path=faults.confidence_field, low=faults.low_confidence
            )
            result, detail = _on_result(result, lower)
            self._record("low_confidence", detail)
        return result

    def _draw(self) -> _Fate:
        """Step 1, and the call's fate: always the same count of numbers drawn."""
        faults = self.faults
        with self._lock:
            draw = self._rng.random
            hang, error, pick, latency, malformed, low = (
                draw(),
                draw(),
                draw(),
                draw(),
                draw(),
                draw(),
            )
        if faults.outages:
            at = self._chaos.now()
            for outage in faults.outages:
                if outage.covers(at):
                    exc = outage.make_error(self.name)
                    self._record("outage", repr(exc))
                    raise exc
        return _Fate(
            hang=hang < faults.hang_rate,
            error=faults.errors[int(pick * len(faults.errors))]
            if error < faults.error_rate
            else None,
            latency=cast(float, faults.latency) if latency < faults.latency_rate else 0.0,
            malformed=malformed < faults.malformed_rate,
            low_confidence=low < faults.low_confidence_rate,
        )

    def _hang(self) -> threading.Event:
        """Step 2: log the hang; the event to wait on."""
        self._record("hang", "until Chaos.release()")
        return self._gate()

    def _raise_error(self, fate: _Fate) -> None:
        """Step 3."""
        if fate.error is not None:
            exc = _make_error(fate.error, self.name, "errors")
            self._record("error", repr(exc))
            raise exc

    def _add_latency(self, fate: _Fate) -> float:
        """Step 4: log the latency and move a fake clock on; the seconds left to wait."""
        if not fate.latency:
            return 0.0
        self._record("latency", f"{fate.latency:g}s")
        if self._advance is None:
            return fate.latency
        self._advance(fate.latency)
        return 0.0

    def _record(self, kind: InjectionKind, detail: str) -> None:
        injection = Injection(self.name, kind, self._chaos.now(), detail)
        with self._lock:
            self._chaos.injected.append(injection)
        logger.debug("chaos: %s into %r: %s", kind, self.name, detail)
        annotate("chaos", {"target": self.name, "kind": kind, "detail": detail})


# ---- the LangChain wrappers


class ChaosChatModel(BaseChatModel):
    """A chat model whose calls go through a ``Chaos``: made by ``Chaos.chat_model``.

    It works wherever the real model does (``invoke``, ``ainvoke``, ``stream``, inside
    a node); injected errors are raised from the call. The real model runs through its
    public ``generate``/``agenerate``, so its own cache, rate limiter and callbacks still
    apply and traces show it as a child run. Its tokens are not streamed (the child
    run is tagged ``nostream``): in ``stream_mode="messages"`` you get the answer the
    graph got, damaged or not, in one piece. ``bind_tools`` and
    ``with_structured_output`` work when the real model supports ``bind_tools``.
    """

    inner: BaseChatModel
    """The real model."""

    target: str
    """The name faults are logged under."""

    _target: _Target = PrivateAttr()

    def __init__(self, *, inner: BaseChatModel, target: _Target, **kwargs: Any) -> None:
        # cache=False: a cached answer would skip the chaos (the real model may cache)
        fields: dict[str, Any] = {"inner": inner, "target": target.name, "cache": False}
        super().__init__(**fields, **kwargs)
        self._target = target

    @property
    def faults(self) -> Faults:
        """What is injected into this model's calls."""
        return self._target.faults

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return [("inner", self.inner), ("target", self.target), ("faults", self.faults)]

    @property
    def _llm_type(self) -> str:
        return "chaos"

    @property
    def _identifying_params(self) -> dict[str, Any]:
        return {"target": self.target, "inner": type(self.inner).__name__}

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        fate = self._target.enter()
        callbacks = _child_callbacks(CallbackManager, run_manager)
        result = self.inner.generate([messages], stop=stop, callbacks=callbacks, **kwargs)
        return cast(ChatResult, self._target.damage(fate, _chat_result(result)))

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        fate = await self._target.aenter()
        callbacks = _child_callbacks(AsyncCallbackManager, run_manager)
        result = await self.inner.agenerate([messages], stop=stop, callbacks=callbacks, **kwargs)
        return cast(ChatResult, self._target.damage(fate, _chat_result(result)))

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind tools the way the real model does, keeping the chaos in front of it."""
        if tool_choice is not None:
            kwargs["tool_choice"] = tool_choice
        bound = self.inner.bind_tools(tools, **kwargs)
        if isinstance(bound, RunnableBinding) and bound.bound is self.inner:
            return self.bind(**bound.kwargs)
        raise NotImplementedError(
            f"{type(self.inner).__name__}.bind_tools() does not return a plain binding of "
            "the model, so its tools cannot be moved to the chaos wrapper"
        )


class ChaosTool(BaseTool):
    """A tool whose calls go through a ``Chaos``: made by ``Chaos.tool``.

    It has the real tool's name, description and argument schema, so a model binds it
    and ``ToolNode`` calls it just the same. The whole call (``invoke``, ``ainvoke``,
    ``run``) is handed to the real tool, which parses the input and formats the output
    (a ``ToolMessage`` for a tool call) as it always does. An injected error is raised
    from the call before the real tool starts, as a real failure would be raised; the
    tool's ``handle_tool_error`` is not applied to it (``ToolNode`` still turns it into
    an error ``ToolMessage`` if told to handle errors).
    """

    inner: BaseTool
    """The real tool."""

    _target: _Target = PrivateAttr()

    def __init__(self, *, inner: BaseTool, target: _Target) -> None:
        super().__init__(
            inner=inner,
            name=inner.name,
            description=inner.description,
            args_schema=inner.args_schema,
            return_direct=inner.return_direct,
            response_format=inner.response_format,
            extras=inner.extras,
        )
        self._target = target

    @property
    def faults(self) -> Faults:
        """What is injected into this tool's calls."""
        return self._target.faults

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        return [("inner", self.inner), ("target", self._target.name), ("faults", self.faults)]

    def run(self, tool_input: str | dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        fate = self._target.enter()
        return self._target.damage(fate, self.inner.run(tool_input, *args, **kwargs))

    async def arun(self, tool_input: str | dict[str, Any], *args: Any, **kwargs: Any) -> Any:
        fate = await self._target.aenter()
        return self._target.damage(fate, await self.inner.arun(tool_input, *args, **kwargs))

    def _run(self, *args: Any, **kwargs: Any) -> Any:
        # Never reached: run() and arun() hand the whole call to the real tool.
        raise NotImplementedError("ChaosTool runs through run()/arun()")


# ---- damage


def _on_result(result: Any, change: Callable[[Any], tuple[Any, str]]) -> tuple[Any, str]:
    """Apply ``change`` to a result: to each answer of a chat result, to a command's
    update, or to the result itself."""
    if isinstance(result, ChatResult):
        details = []
        generations = []
        for generation in result.generations:
            message, detail = change(generation.message)
            details.append(detail)
            generations.append(
                ChatGeneration(message=message, generation_info=generation.generation_info)
            )
        changed = ChatResult(generations=generations, llm_output=result.llm_output)
        return changed, "; ".join(details)
    if isinstance(result, Command) and isinstance(result.update, Mapping):
        update, detail = change(result.update)
        return dataclasses.replace(result, update=update), f"Command update: {detail}"
    return change(result)


def _malform(value: Any) -> tuple[Any, str]:
    if isinstance(value, str):
        return _garble(value), f"text cut from {len(value)} to {len(value) // 2} chars + '{{'"
    if isinstance(value, BaseMessage):
        content = _garble_content(value.content)
        return value.model_copy(update={"content": content}), "message text cut in half + '{'"
    if isinstance(value, (Mapping, list, tuple)):
        replaced, count = _replace_strings(value)
        return replaced, f"{count} strings replaced by MALFORMED"
    return value, f"left as is: nothing to garble in {type(value).__name__}"


def _garble(text: str) -> str:
    return text[: len(text) // 2] + "{"


def _garble_content(content: str | list[str | dict[Any, Any]]) -> str | list[str | dict[Any, Any]]:
    if isinstance(content, str):
        return _garble(content)
    blocks: list[str | dict[Any, Any]] = []
    for block in content:
        if isinstance(block, str):
            blocks.append(_garble(block))
        elif block.get("type") == "text" and isinstance(block.get("text"), str):
            blocks.append({**block, "text": _garble(block["text"])})
        else:
            blocks.append(block)
    return blocks


def _replace_strings(value: Any) -> tuple[Any, int]:
    if isinstance(value, str):
        return MALFORMED, 1
    if isinstance(value, BaseMessage):
        if isinstance(value.content, str):
            return value.model_copy(update={"content": MALFORMED}), 1
        return value, 0
    if isinstance(value, Mapping):
        pairs = [(key, _replace_strings(item)) for key, item in value.items()]
        return {key: item for key, (item, _) in pairs}, sum(n for _, (_, n) in pairs)
    if isinstance(value, (list, tuple)):
        items = [_replace_strings(item) for item in value]
        replaced = [item for item, _ in items]
        return (replaced if isinstance(value, list) else tuple(replaced)), sum(n for _, n in items)
    return value, 0


def _lower_confidence(value: Any, path: str, low: float) -> tuple[Any, str]:
    if isinstance(value, str):
        return _lower_text(value, path, low)
    if isinstance(value, BaseMessage) and isinstance(value.content, str):
        text, detail = _lower_text(value.content, path, low)
        return value.model_copy(update={"content": text}), f"message {detail}"
    if isinstance(value, (Mapping, BaseModel)):
        changed = _set_path(value, path.split("."), low)
        if changed is None:
            return value, f"left as is: no {path!r} to set"
        return changed, f"{path}={low:g}"
    return value, f"left as is: no confidence in {type(value).__name__}"


def _lower_text(text: str, path: str, low: float) -> tuple[str, str]:
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        changed = _set_path(parsed, path.split("."), low)
        if changed is not None:
            return json.dumps(changed, ensure_ascii=False), f"JSON {path}={low:g}"
    key = path.rsplit(".", 1)[-1]
    return f"{text}\n({key}: {low:g})", f"text ends with '({key}: {low:g})'"


def _set_path(container: Any, keys: list[str], low: float) -> Any:
    """A copy of ``container`` with the value at ``keys`` set to ``low``; ``None`` if the
    dicts (or pydantic models) along the way are missing."""
    head, rest = keys[0], keys[1:]
    if isinstance(container, Mapping):
        if not rest:
            return {**container, head: low}
        inner = _set_path(container.get(head), rest, low)
        return None if inner is None else {**container, head: inner}
    if isinstance(container, BaseModel) and head in type(container).model_fields:
        if not rest:
            return container.model_copy(update={head: low})
        inner = _set_path(getattr(container, head), rest, low)
        return None if inner is None else container.model_copy(update={head: inner})
    return None


# ---- small helpers


ManagerT = TypeVar("ManagerT", CallbackManager, AsyncCallbackManager)


def _child_callbacks(
    kind: type[ManagerT],
    run_manager: CallbackManagerForLLMRun | AsyncCallbackManagerForLLMRun | None,
) -> ManagerT | None:
    """Callbacks for the real model's run, nested under the wrapper's run (what a
    chain's ``get_child()`` gives), and tagged ``nostream``."""
    if run_manager is None:
        return None
    manager = kind(handlers=[], parent_run_id=run_manager.run_id)
    manager.set_handlers(run_manager.inheritable_handlers)
    manager.add_tags(run_manager.inheritable_tags)
    manager.add_tags([TAG_NOSTREAM])
    manager.add_metadata(run_manager.inheritable_metadata)
    return manager


def _chat_result(result: LLMResult) -> ChatResult:
    generations = [cast(ChatGeneration, g) for g in result.generations[0]]
    return ChatResult(generations=generations, llm_output=result.llm_output)


def _make_error(spec: ErrorSpec, target: str, field_name: str) -> BaseException:
    if isinstance(spec, BaseException):
        try:
            return copy.copy(spec)  # a fresh copy: tracebacks do not pile up
        except Exception:
            return spec.with_traceback(None)
    if isinstance(spec, type):
        exc: BaseException = spec(f"injected into {target!r} by chaos")
        return exc
    made = spec()
    if not isinstance(made, BaseException):
        raise TypeError(f"{field_name}: the factory {spec!r} returned {made!r}, not an exception")
    return made


def _check_error_spec(field_name: str, spec: object) -> None:
    if isinstance(spec, BaseException):
        return
    if isinstance(spec, type):
        if issubclass(spec, BaseException):
            try:
                spec("probe")  # raised as spec(message): refuse a type that cannot be
            except Exception:
                raise TypeError(
                    f"{field_name}: {spec.__name__} cannot be built from a message alone; "
                    f"pass an instance or a factory (e.g. lambda: {spec.__name__}(...))"
                ) from None
            return
    elif callable(spec):
        return
    raise TypeError(
        f"{field_name} takes exception types, exceptions or factories returning one, got {spec!r}"
    )


def _check_faults(faults: object) -> None:
    if not isinstance(faults, Faults):
        raise TypeError(f"faults must be a Faults(...), got {faults!r}")


def _check_probability(name: str, value: object) -> None:
    if not _is_number(value) or not 0 <= value <= 1:  # type: ignore[operator]
        raise ValueError(f"{name} must be a rate from 0 to 1, e.g. 0.2 for 20%, got {value!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _derive_seed(seed: int | str, name: str) -> int:
    """A target's seed: stable across processes and Python versions (unlike ``hash``)."""
    digest = hashlib.sha256(f"{seed!r}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")
