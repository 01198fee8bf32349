"""`hpc-classify status`: where a run stands, computed from the output directory alone
(the stored plan, the completion markers, failures.jsonl and the last `_summary.json`)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.driver.failures import read_failures
from hpc_classify.driver.input_changes import describe_change
from hpc_classify.driver.pieces import partly_done
from hpc_classify.driver.plan import read_plan
from hpc_classify.driver.summary import SUMMARY_FILE
from hpc_classify.driver.tally import MarkerTally
from hpc_classify.errors import InputFileError, OutputDirectoryError
from hpc_classify.io.markers import CompletionMarker, iter_marker_relpaths, marker_path, read_marker

logger = logging.getLogger(__name__)


def compute_status(output_dir: str, *, verify_inputs: bool = False) -> dict[str, Any]:
    """Counts over the planned files: files_done + files_failed + files_remaining + files_vanished ==
    files_planned.

    A marker counts as done only while its input is unchanged (size and mtime; content hash with
    `verify_inputs`): a changed input is listed in `changed` and counted as remaining. A marker whose input
    no longer exists is listed in `vanished` (its output is kept, never deleted; `files_vanished` counts the
    planned ones). documents_in/out, labels and nodes are summed over the done files (markers of files no
    longer among the inputs are counted in `files_outside_plan` only).
    """
    plan = read_plan(output_dir)
    if plan is None:
        raise OutputDirectoryError(
            f"{output_dir} holds no run (no _plan.json)", hint="pass the --output directory of a run"
        )
    sizes = {entry["relpath"]: int(entry["size"]) for entry in plan["files"]}
    tally = tally_markers(output_dir, sizes, verify_inputs)
    # A failure whose file has a marker by now (completed by a later run) no longer counts.
    failed = [
        e for e in read_failures(output_dir) if e.get("relpath") in sizes and e["relpath"] not in tally.done
    ]
    done = len(tally.done)
    seconds = tally.markers.worker_seconds()
    totals = tally.markers
    return {
        "output": os.path.abspath(output_dir),
        "files_planned": len(sizes),
        "files_done": done,
        "files_failed": len(failed),
        "files_remaining": len(sizes) - done - len(failed) - tally.vanished_planned,
        "files_changed": len(tally.changed),
        "files_vanished": tally.vanished_planned,
        "files_outside_plan": tally.outside,
        "bytes_done": tally.bytes_done,
        "bytes_planned": sum(sizes.values()),
        "documents_in": totals.documents_in,
        "documents_out": totals.documents_out,
        "rows_bad": totals.rows_bad,
        "labels": totals.plain_labels(),
        "nodes": sorted(totals.nodes),
        "workers": len(totals.workers),
        "worker_seconds": round(seconds, 3),
        "documents_per_worker_second": round(totals.documents_in / seconds, 3) if seconds else None,
        "failed": [
            {"relpath": e["relpath"], "error_type": e.get("error_type", ""), "error": e.get("error", "")}
            for e in failed
        ],
        "changed": tally.changed,
        "vanished": tally.vanished,
        # Started in pieces, not finished: counted as remaining above; their documents are not in the sums.
        "partly_done": partly_done(output_dir, set(sizes) - tally.done),
        "last_run": _last_run(output_dir),
    }


@dataclass
class StatusTally:
    """The markers of an output directory, sorted into done / changed / vanished; the done ones tallied. The
    one place that decides which markers count: `status` and the report read the directory through it."""

    done: set[str] = field(default_factory=set)
    changed: list[dict[str, str]] = field(default_factory=list)
    vanished: list[dict[str, str]] = field(default_factory=list)
    vanished_planned: int = 0
    outside: int = 0  # markers of files no longer among the planned inputs
    bytes_done: int = 0
    markers: MarkerTally = field(default_factory=MarkerTally)
    done_markers: list[tuple[str, CompletionMarker]] = field(default_factory=list)

    def add_done(self, relpath: str, size: int, marker: CompletionMarker) -> None:
        self.done.add(relpath)
        self.bytes_done += size
        self.markers.add(marker)
        self.done_markers.append((relpath, marker))


def tally_markers(
    output_dir: str, sizes: dict[str, int], verify_inputs: bool, *, check_inputs: bool = True
) -> StatusTally:
    """`check_inputs=False`: every marker of a planned file counts as done (inputs out of reach)."""
    tally = StatusTally()
    for relpath in iter_marker_relpaths(output_dir):
        try:
            marker = read_marker(marker_path(output_dir, relpath))
        except InputFileError as exc:
            logger.warning("%s", exc)
            continue
        planned = relpath in sizes
        tally.outside += not planned
        if not check_inputs:
            if planned:
                tally.add_done(relpath, sizes[relpath], marker)
            continue
        if not os.path.exists(marker.input_path):
            tally.vanished.append(
                {"relpath": relpath, "input_path": marker.input_path, "output": marker.output_path}
            )
            tally.vanished_planned += planned
            continue
        if not planned:
            continue
        what = describe_change(marker, marker.input_path, verify=verify_inputs)
        if what is not None:
            tally.changed.append({"relpath": relpath, "input_path": marker.input_path, "change": what})
            continue
        tally.add_done(relpath, sizes[relpath], marker)
    return tally


def _last_run(output_dir: str) -> dict[str, Any] | None:
    try:
        with open(os.path.join(output_dir, SUMMARY_FILE), encoding="utf-8") as f:
            summary = json.load(f)
    except (FileNotFoundError, ValueError):
        return None
    keys = (
        "finished_at",
        "exit_code",
        "interrupted",
        "wall_seconds",
        "documents_per_second",
        "files_processed",
    )
    return {key: summary.get(key) for key in keys}


def format_status(status: dict[str, Any]) -> str:
    """Human-readable form of compute_status's dict (the CLI prints it)."""
    lines = [
        f"output:          {status['output']}",
        f"files:           {status['files_done']} done, {status['files_remaining']} remaining, "
        f"{status['files_failed']} failed (of {status['files_planned']})",
        f"documents:       {status['documents_in']} in, {status['documents_out']} out, {status['rows_bad']} bad rows",
    ]
    # Two different rates, each saying what it divides by: the first excludes start-up and idle workers.
    if status["documents_per_worker_second"] is not None:
        lines.append(
            f"throughput:      {status['documents_per_worker_second']} docs per worker-second "
            "(done files' documents / time workers spent on them, all runs)"
        )
    last = status.get("last_run")
    if last and last.get("documents_per_second") is not None:
        lines.append(
            f"last run:        {last['documents_per_second']} docs/s wall-clock over {last['wall_seconds']} s "
            f"(start-up included), exit code {last['exit_code']}"
        )
    lines.append(f"nodes:           {', '.join(status['nodes']) or '-'} ({status['workers']} workers)")
    for column, counts in status["labels"].items():
        width = max((len(str(value)) for value in counts), default=0)
        lines.append(f"{column}:")
        lines.extend(f"  {value:<{width}}  {count}" for value, count in counts.items())
    for entry in status["changed"]:
        lines.append(f"CHANGED {entry['relpath']}: {entry['change']} (rerun with --on-changed-input redo)")
    for entry in status["partly_done"]:
        of = f" of {entry['pieces']}" if entry["pieces"] is not None else ""
        lines.append(
            f"PARTLY DONE {entry['relpath']}: {entry['pieces_done']}{of} pieces, "
            f"{entry['documents_done']} documents (the rerun continues from there)"
        )
    for entry in status["vanished"]:
        lines.append(f"VANISHED {entry['relpath']}: the input is gone; its output is kept: {entry['output']}")
    for entry in status["failed"]:
        lines.append(f"FAILED {entry['relpath']}: {entry['error'].splitlines()[0] if entry['error'] else ''}")
    return "\n".join(lines)
