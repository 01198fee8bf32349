"""One tally of completion markers, for the run's summary and for `status` alike: documents in and out, bad
rows, labels per output column, nodes and workers, and the time the workers spent (a file in pieces
counts each piece under the worker that classified it)."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from hpc_classify.io.markers import CompletionMarker


@dataclass
class MarkerTally:
    documents_in: int = 0
    documents_out: int = 0
    rows_bad: int = 0
    labels: dict[str, Counter[str]] = field(default_factory=dict)  # per output column, first-seen order
    nodes: set[str] = field(default_factory=set)
    busy: dict[str, list[tuple[float, float]]] = field(default_factory=dict)  # "node/worker" -> intervals

    def add(self, marker: CompletionMarker) -> None:
        self.documents_in += marker.rows_in
        self.documents_out += marker.rows_out
        self.rows_bad += marker.rows_bad
        for column, values in marker.label_counts.items():
            self.labels.setdefault(column, Counter()).update(values)
        for piece in marker.extra.get("pieces") or [marker.work_summary()]:
            worker = f"{piece['node']}/{piece['worker']}"
            self.nodes.add(str(piece["node"]))
            self.busy.setdefault(worker, []).append(_interval(piece))

    @property
    def workers(self) -> set[str]:
        return set(self.busy)

    def plain_labels(self) -> dict[str, dict[str, int]]:
        """The label counts as JSON-ready dicts, each column's values in the order first counted."""
        return {column: dict(counter) for column, counter in self.labels.items()}

    def worker_seconds(self) -> float:
        """Time the workers spent. Files classified together in one task overlap in time: each worker's
        intervals are merged, so that a group's time is counted once, not once per file."""
        return sum(_merged_length(intervals) for intervals in self.busy.values())


def _interval(marker: dict) -> tuple[float, float]:
    started, finished = marker.get("started_at"), marker.get("finished_at")
    if started and finished:
        try:
            start = dt.datetime.fromisoformat(started).timestamp()
            return start, max(start, dt.datetime.fromisoformat(finished).timestamp())
        except ValueError:
            pass
    return 0.0, float(marker.get("seconds") or 0.0)  # an older marker without times: its own duration


def _merged_length(intervals: list[tuple[float, float]]) -> float:
    total, reach = 0.0, float("-inf")
    for start, end in sorted(intervals):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return total
