"""Notebook views: the health monitor's timeline as a matplotlib figure.

Needs matplotlib (the ``notebook`` extra: ``pip install 'langgraph-resilience[notebook]'``),
imported only when a plot is drawn. The figure is built without ``pyplot``, so no
global figure state is touched and it works under any backend (``Agg`` included);
in Jupyter it displays as a PNG when it is the cell's result.

Example:
    ```python
    from langgraph_resilience import BreakerPolicy, CircuitBreaker, FakeClock, HealthMonitor
    from langgraph_resilience.notebook import plot_timeline

    clock = FakeClock()
    with HealthMonitor(clock=clock, sinks=[]) as monitor:
        api = CircuitBreaker("plot-doc", BreakerPolicy(recovery_timeout=30), clock=clock)
        monitor.watch(api)
        clock.advance(10)
        api.force_open()
        clock.advance(20)
        api.reset()
        clock.advance(10)
    fig = plot_timeline(monitor)  # or monitor.plot(); fig.savefig("timeline.png")
    ```
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast

from .core.events import BreakerState
from .core.health import Timeline

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["STATE_COLOURS", "plot_timeline"]

STATE_COLOURS = {
    BreakerState.CLOSED: "#2da44e",
    BreakerState.HALF_OPEN: "#d4a72c",
    BreakerState.OPEN: "#cf222e",
}
"""Band colours: closed green, half-open amber, open red."""

_INSTALL = "pip install 'langgraph-resilience[notebook]'"


class _HasTimeline(Protocol):
    def timeline(self) -> Timeline: ...


def _axes_pair(ax: Any) -> tuple[Axes, Axes]:
    """``ax`` as a pair of Axes (e.g. ``plt.subplots(2)[1]``, a numpy array), or a
    ``ValueError`` saying what it got instead."""
    try:
        pair: tuple[Any, ...] = tuple(ax)
    except TypeError:
        raise ValueError(f"ax takes one Axes or a pair (bands, latencies), got {ax!r}") from None
    if len(pair) != 2:
        raise ValueError(f"ax takes one Axes or a pair (bands, latencies), got {len(pair)}")
    for item in pair:
        if not hasattr(item, "twinx"):
            raise ValueError(
                f"ax takes one Axes or a pair (bands, latencies), got a pair holding {item!r}"
            )
    return pair[0], pair[1]


def plot_timeline(
    monitor_or_timeline: _HasTimeline | Timeline, *, ax: Axes | Iterable[Axes] | None = None
) -> Figure:
    """Draw breaker states as coloured bands over time (one row per breaker) and each
    node's attempt latencies as points below (failures as crosses, rejected calls as
    ticks at zero).

    Args:
        monitor_or_timeline: a ``HealthMonitor`` (its ``timeline()`` is taken) or a
            ``Timeline``.
        ax: ``None`` for a new figure with two panels; a pair of ``Axes`` for the bands
            and the latencies (a list, a tuple, or ``plt.subplots(2)``'s array); or one
            ``Axes``, which gets the bands, with the latencies on a second y-axis over them.

    Returns:
        The matplotlib ``Figure`` (save it with ``fig.savefig(path)``).

    Raises:
        ImportError: matplotlib is not installed (the message says how to install it).
        ValueError: ``ax`` is neither one Axes nor a pair of them.
    """
    try:
        from matplotlib.figure import Figure
        from matplotlib.patches import Patch
    except ImportError as exc:
        raise ImportError(
            f"plot_timeline needs matplotlib, from the notebook extra: {_INSTALL}"
        ) from exc
    if isinstance(monitor_or_timeline, Timeline):
        timeline = monitor_or_timeline
    elif callable(getattr(monitor_or_timeline, "timeline", None)):
        timeline = monitor_or_timeline.timeline()
    else:
        raise TypeError(
            f"plot_timeline takes a HealthMonitor or a Timeline, got {monitor_or_timeline!r}"
        )

    names = timeline.breakers()
    if ax is None:
        fig = Figure(figsize=(10, 1.6 + 0.45 * max(1, len(names)) + 3), layout="constrained")
        bands_ax, calls_ax = fig.subplots(2, 1, sharex=True, height_ratios=[max(1, len(names)), 3])
    elif not hasattr(ax, "twinx"):  # not one Axes: a pair (a list, a tuple, a numpy array)
        bands_ax, calls_ax = _axes_pair(ax)
        fig = _figure_of(bands_ax)
    else:
        bands_ax = cast("Axes", ax)
        calls_ax = bands_ax.twinx()
        fig = _figure_of(bands_ax)

    start, end = timeline.start, max(timeline.end, timeline.start + 1e-9)
    _draw_bands(bands_ax, timeline, names)
    bands_ax.legend(
        handles=[
            Patch(color=colour, label=state.value.replace("_", "-"))
            for state, colour in STATE_COLOURS.items()
        ],
        loc="upper left",
        bbox_to_anchor=(1.0, 1.0),
        fontsize="small",
        frameon=False,
    )
    _draw_calls(calls_ax, timeline)
    for axes in (bands_ax, calls_ax):
        axes.set_xlim(start, end)
    calls_ax.set_xlabel("time (s)")
    _display_in_jupyter(Figure)
    return fig


def _figure_of(ax: Axes) -> Figure:
    fig = ax.get_figure(root=True)
    if fig is None:
        raise ValueError("ax belongs to no figure")
    return fig


def _draw_bands(ax: Axes, timeline: Timeline, names: list[str]) -> None:
    ax.set_title("breakers", loc="left", fontsize="medium")
    if not names:
        ax.set_yticks([])
        ax.text(0.5, 0.5, "no breakers seen", ha="center", va="center", transform=ax.transAxes)
        return
    bands = timeline.bands()
    for row, name in enumerate(names):
        for start, end, state in bands.get(name, ()):
            ax.broken_barh(
                [(start, end - start)], (row - 0.4, 0.8), facecolors=STATE_COLOURS[state]
            )
    ax.set_yticks(range(len(names)), labels=names)
    ax.set_ylim(len(names) - 0.5, -0.5)  # the first breaker on top


def _draw_calls(ax: Axes, timeline: Timeline) -> None:
    ax.set_ylabel("latency (s)")
    nodes = timeline.nodes()
    if not nodes:
        ax.text(0.5, 0.5, "no guarded calls yet", ha="center", va="center", transform=ax.transAxes)
        return
    colours = _cycle(len(nodes))
    rejected_label = "rejected"
    for node, colour in zip(nodes, colours, strict=True):
        ok: tuple[list[float], list[float]] = ([], [])
        failed: tuple[list[float], list[float]] = ([], [])
        rejected: list[float] = []
        for call in timeline.calls:
            if call.node != node:
                continue
            if call.duration is None:
                rejected.append(call.at)
            else:
                points = ok if call.error is None else failed
                points[0].append(call.at)
                points[1].append(call.duration)
        ax.scatter(*ok, s=14, color=colour, marker="o", label=node)
        if failed[0]:
            ax.scatter(*failed, s=36, color=colour, marker="x", label=f"{node} failed")
        if rejected:
            ax.scatter(
                rejected,
                [0.0] * len(rejected),
                s=30,
                color="#6e7781",
                marker="|",
                label=rejected_label,
            )
            rejected_label = "_nolegend_"  # one legend entry for every node's rejections
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize="small", frameon=False)


def _cycle(count: int) -> list[Any]:
    from matplotlib import colormaps

    palette = colormaps["tab10"]
    return [palette(i % 10) for i in range(count)]


def _display_in_jupyter(figure_type: type) -> None:
    """Make IPython show a pyplot-free ``Figure`` as a PNG (pyplot's inline backend
    registers this only once pyplot is imported)."""
    ipython_module = sys.modules.get("IPython")
    if ipython_module is None:
        return
    shell: Any = ipython_module.get_ipython()
    if shell is None:
        return
    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(figure_type)
    except KeyError:
        pylabtools: Any = importlib.import_module("IPython.core.pylabtools")
        formatter.for_type(
            figure_type, lambda fig: pylabtools.print_figure(fig, "png", bbox_inches="tight")
        )
