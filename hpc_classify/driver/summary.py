"""Counters of one run and its `<output>/_summary.json` (written at the end, also after a signal)."""

from __future__ import annotations

import os
import shlex
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hpc_classify import exit_codes
from hpc_classify.driver.tally import MarkerTally
from hpc_classify.io.markers import CompletionMarker, iso_time
from hpc_classify.io.writers import write_json_atomically

SUMMARY_FILE = "_summary.json"


@dataclass
class RunStats:
    """What this invocation did. Only counters: driver memory stays flat however many files finish."""

    files_planned: int = 0
    files_skipped: int = 0  # done by an earlier run (marker present at start)
    files_processed: int = 0
    files_failed: int = 0
    pieces_processed: int = 0  # pieces of large files classified by this run
    retries: int = 0
    classified: MarkerTally = field(default_factory=MarkerTally)  # the documents this run classified
    bytes_read: int = 0
    bytes_written: int = 0
    failed: list[str] = field(default_factory=list)
    workers_lost: list[str] = field(default_factory=list)  # "name on host" of workers that left mid-run
    stop_reason: str | None = None  # why the run stopped on its own before the end (no workers, disk full)
    stop_exit_code: int | None = None
    engines: dict[str, Counter[str]] = field(default_factory=dict)  # classifier -> how it ran -> files

    def add_marker(self, marker: CompletionMarker) -> None:
        """A whole file classified by this run."""
        self.classified.add(marker)
        self.add_file(marker)

    def add_piece(self, marker: CompletionMarker) -> None:
        """A piece of a large file classified by this run: its documents."""
        self.pieces_processed += 1
        self.classified.add(marker)

    def add_file(self, marker: CompletionMarker) -> None:
        """A file finished by this run (for a file in pieces: assembled; its documents were counted with
        the pieces this run classified)."""
        self.files_processed += 1
        self.bytes_read += marker.input_size
        self.bytes_written += marker.output_size or 0
        self.count_engines(marker)

    def count_engines(self, marker: CompletionMarker) -> None:
        """How each classifier's engine ran for this file ("bf16, eager, bias attention"): files per kind."""
        for name, description in (marker.extra.get("engines") or {}).items():
            self.engines.setdefault(name, Counter())[description] += 1

    @property
    def finished_count(self) -> int:
        """Files and pieces this run finished (classified, or failed for good)."""
        return self.files_processed + self.pieces_processed + self.files_failed

    @property
    def finished_something(self) -> bool:
        """Whether this run finished a file or a piece."""
        return self.finished_count > 0

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
        "started_at": iso_time(started, "seconds"),
        "finished_at": iso_time(finished, "seconds"),
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
        "pieces_processed": stats.pieces_processed,
        "retries": stats.retries,
        "documents_in": stats.classified.documents_in,
        "documents_out": stats.classified.documents_out,
        "rows_bad": stats.classified.rows_bad,
        "labels": stats.classified.plain_labels(),
        "bytes_read": stats.bytes_read,
        "bytes_written": stats.bytes_written,
        "documents_per_second": round(stats.classified.documents_in / wall, 3),
        "files_per_second": round(stats.files_processed / wall, 3),
        "failures": list(stats.failed),
        "nodes": sorted(stats.classified.nodes),
        "num_nodes": len(stats.classified.nodes),
        "workers_lost": list(stats.workers_lost),
        "command": invocation(),
        "engines": plain_counts(
            stats.engines
        ),  # classifier -> "precision, compiled/eager, attention" -> files
        **cluster,
    }


def invocation() -> str:
    """This process's command line, for the report's provenance (a Python API run shows its script)."""
    return shlex.join(sys.argv) if sys.argv and sys.argv[0] else ""


def plain_counts(totals: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    return {name: dict(counter) for name, counter in totals.items()}


def write_summary(output_dir: str, summary: dict[str, Any]) -> str:
    path = os.path.join(output_dir, SUMMARY_FILE)
    write_json_atomically(path, summary, indent=2)
    return path
