"""Bokeh figures for the run report, each built from one part of `_report.json` (never from the markers)."""

from __future__ import annotations

from typing import Any

from bokeh.models import ColumnDataSource, HoverTool
from bokeh.plotting import figure

BAR_COLOR = "#4c72b0"
DRIFT_COLOR = "#c44e52"
DRIFT_BARS = 30  # the chart shows the most drifted shards; the table and _report.json have the ranking
_ROW_HEIGHT = 22
# Pixels: thousands of workers share it (thinner rows) rather than make the page metres long.
MAX_TIMELINE_HEIGHT = 3000


def label_chart(column: str, kind: str, counts: dict[str, int]) -> Any:
    """A column's distribution: labels as horizontal bars (most frequent on top), scores as a histogram."""
    if kind == "scores":
        values = sorted(counts, key=float)
        source = ColumnDataSource({"value": values, "rows": [counts[v] for v in values]})
        fig = figure(
            x_range=values, height=260, title=f"{column}: score histogram", sizing_mode="stretch_width"
        )
        fig.vbar(x="value", top="rows", width=0.8, source=source, color=BAR_COLOR)
        fig.xaxis.axis_label, fig.yaxis.axis_label = column, "rows"
    else:
        values = sorted(counts, key=lambda v: (counts[v], v))  # bottom to top: largest on top
        source = ColumnDataSource({"value": values, "rows": [counts[v] for v in values]})
        fig = figure(
            y_range=values,
            height=80 + _ROW_HEIGHT * len(values),
            title=f"{column}: label distribution",
            sizing_mode="stretch_width",
        )
        fig.hbar(y="value", right="rows", height=0.8, source=source, color=BAR_COLOR)
        fig.xaxis.axis_label = "rows"
    fig.add_tools(HoverTool(tooltips=[("value", "@value"), ("rows", "@rows")]))
    fig.toolbar.logo = None
    return fig


def drift_chart(ranking: list[dict[str, Any]]) -> Any:
    top = list(reversed(ranking[:DRIFT_BARS]))  # bottom to top: the most drifted shard on top
    source = ColumnDataSource(
        {
            "relpath": [entry["relpath"] for entry in top],
            "distance": [entry["distance"] for entry in top],
            "column": [entry["column"] for entry in top],
            "top_value": [entry["top_value"] for entry in top],
            "top_share": [entry["top_share"] for entry in top],
        }
    )
    fig = figure(
        y_range=source.data["relpath"],
        x_range=(0, 1),
        height=80 + _ROW_HEIGHT * len(top),
        title=f"The {len(top)} shards most unlike the corpus",
        sizing_mode="stretch_width",
    )
    fig.hbar(y="relpath", right="distance", height=0.8, source=source, color=DRIFT_COLOR)
    fig.xaxis.axis_label = "Jensen-Shannon distance to the whole corpus"
    fig.add_tools(
        HoverTool(
            tooltips=[
                ("shard", "@relpath"),
                ("distance", "@distance"),
                ("column", "@column"),
                ("most frequent", "@top_value (@top_share{0.0%})"),
            ]
        )
    )
    fig.toolbar.logo = None
    return fig


def throughput_chart(throughput: dict[str, Any]) -> Any:
    import datetime as dt

    start = dt.datetime.fromisoformat(throughput["start"])
    step = dt.timedelta(seconds=throughput["bin_seconds"])
    rates = throughput["documents_per_second"]
    # The last bin's value repeated at its end edge: a step line then draws every bin full width.
    times = [start + step * i for i in range(len(rates) + 1)]
    source = ColumnDataSource({"time": times, "rate": [*rates, rates[-1]]})
    fig = figure(
        x_axis_type="datetime",
        y_range=(0, max(rates) * 1.1 or 1),
        height=260,
        title=f"Documents per second ({throughput['bin_seconds']:g} s bins, UTC)",
        sizing_mode="stretch_width",
    )
    fig.step(x="time", y="rate", source=source, mode="after", line_width=2, color=BAR_COLOR)
    fig.yaxis.axis_label = "documents/s"
    fig.add_tools(
        HoverTool(tooltips=[("from", "@time{%F %T}"), ("docs/s", "@rate")], formatters={"@time": "datetime"})
    )
    fig.toolbar.logo = None
    return fig


def timeline_chart(timeline: list[dict[str, Any]]) -> Any:
    """One row per worker, a bar per busy stretch: the white between bars is idle time."""
    workers, lefts, rights = [], [], []
    for entry in timeline:
        for start, end in entry["segments"]:
            workers.append(entry["worker"])
            lefts.append(start)
            rights.append(end)
    names = [entry["worker"] for entry in reversed(timeline)]
    source = ColumnDataSource({"worker": workers, "left": lefts, "right": rights})
    fig = figure(
        y_range=names,
        height=100 + min(_ROW_HEIGHT * len(names), MAX_TIMELINE_HEIGHT),
        title="Busy time per node/worker (gaps: idle)",
        sizing_mode="stretch_width",
    )
    fig.hbar(y="worker", left="left", right="right", height=0.7, source=source, color=BAR_COLOR)
    fig.xaxis.axis_label = "seconds since the first file started"
    fig.add_tools(HoverTool(tooltips=[("worker", "@worker"), ("busy", "@left{0.0} s to @right{0.0} s")]))
    fig.toolbar.logo = None
    return fig
