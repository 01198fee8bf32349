"""Counters of one run and its `<output>/_summary.json` (written at the end, also after a signal)."""

from __future__ import annotations

import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.driver import exit_codes
from hpc_classify.io.writers import write_json_atomically

SUMMARY_FILE = "_summary.json"


@dataclass
class RunStats:
    """What this invocation did. Only counters: driver memory stays flat however many files finish."""

    files_planned: int = 0
    files_skipped: int = 0  # done by an earlier run (marker present at start)
    files_processed: int = 0
    files_failed: int = 0
    retries: int = 0
    documents_in: int = 0
    documents_out: int = 0
    rows_bad: int = 0
    labels: dict[str, Counter[str]] = field(default_factory=dict)  # per output column
    bytes_read: int = 0
    bytes_written: int = 0
    nodes: set[str] = field(default_factory=set)
    failed: list[str] = field(default_factory=list)
    workers_lost: list[str] = field(default_factory=list)  # "name on host" of workers that left mid-run
    stop_reason: str | None = None  # why the run stopped on its own before the end (no workers, disk full)
    stop_exit_code: int | None = None
    engines: dict[str, Counter[str]] = field(default_factory=dict)  # classifier -> how it ran -> files

    def add_marker(self, marker: dict[str, Any]) -> None:
        self.files_processed += 1
        self.documents_in += int(marker["rows_in"])
        self.documents_out += int(marker["rows_out"])
        self.rows_bad += int(marker["rows_bad"])
        add_counts(self.labels, marker["label_counts"])
        self.bytes_read += int(marker.get("input_size") or 0)
        self.bytes_written += int(marker.get("output_size") or 0)
        self.nodes.add(str(marker["node"]))
        engines = marker.get("engines") or (marker.get("extra") or {}).get("engines") or {}
        add_counts(self.engines, {name: {description: 1} for name, description in engines.items()})

    @property
    def files_remaining(self) -> int:
        return self.files_planned - self.files_skipped - self.files_processed - self.files_failed


def build_summary(
    stats: RunStats,
    *,
    started: float,
    finished: float,
    exit_code: int,
    interrupted_by: str | None,
    fingerprint: str,
    cluster: dict[str, Any],
) -> dict[str, Any]:
    """`cluster`: scheduler_address, protocol, workers (and dashboard) as the driver saw them."""
    wall = max(finished - started, 1e-9)
    return {
        "started_at": _iso(started),
        "finished_at": _iso(finished),
        "wall_seconds": round(wall, 3),
        "exit_code": exit_code,
        "exit_meaning": exit_codes.DESCRIPTIONS.get(exit_code, ""),
        "interrupted": interrupted_by is not None,
        "signal": interrupted_by,
        "stop_reason": stats.stop_reason,
        "fingerprint": fingerprint,
        "files_planned": stats.files_planned,
        "files_skipped": stats.files_skipped,
        "files_processed": stats.files_processed,
        "files_failed": stats.files_failed,
        "files_remaining": stats.files_remaining,
        "retries": stats.retries,
        "documents_in": stats.documents_in,
        "documents_out": stats.documents_out,
        "rows_bad": stats.rows_bad,
        "labels": plain_counts(stats.labels),
        "bytes_read": stats.bytes_read,
        "bytes_written": stats.bytes_written,
        "documents_per_second": round(stats.documents_in / wall, 3),
        "files_per_second": round(stats.files_processed / wall, 3),
        "failures": list(stats.failed),
        "nodes": sorted(stats.nodes),
        "num_nodes": len(stats.nodes),
        "workers_lost": list(stats.workers_lost),
        "engines": plain_counts(
            stats.engines
        ),  # classifier -> "precision, compiled/eager, attention" -> files
        **cluster,
    }


def add_counts(totals: dict[str, Counter[str]], counts: dict[str, dict[str, int]]) -> None:
    """Add one marker's per-column counts into running totals."""
    for column, values in counts.items():
        totals.setdefault(column, Counter()).update(values)


def plain_counts(totals: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    """Totals as JSON-ready dicts, each column's values in the order they were first counted."""
    return {column: dict(counter) for column, counter in totals.items()}


def write_summary(output_dir: str, summary: dict[str, Any]) -> str:
    path = os.path.join(output_dir, SUMMARY_FILE)
    write_json_atomically(path, summary, indent=2)
    return path


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="seconds")
