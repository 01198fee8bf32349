"""`hpc-classify status`'s text: the dict of `status.compute_status` in lines a person reads, each count saying
what it counts (the JSON form, `status --json`, is the dict itself)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hpc_classify.driver.input_changes import capped_lines
from hpc_classify.driver.stale_outputs import NO_OUTPUT, OUTSIDE_REMEDY, input_state, output_in_words


def format_status(status: dict[str, Any]) -> str:
    """Human-readable form of compute_status's dict (the CLI prints it)."""
    new = status.get("files_new", 0)
    of = f"{status['files_planned']} planned by the last run" + (f" + {new} new" if new else "")
    lines = [
        f"output:          {status['output']}",
        f"files:           {status['files_done']} done, {status['files_remaining']} remaining "
        f"({status['files_changed']} of them changed), {status['files_failed']} failed, "
        f"{status['files_vanished']} vanished (of {of})",
    ]
    if new:
        lines.append(
            f"new inputs:      {new} file(s) found since the last run's plan: the rerun classifies them"
        )
    if status.get("files_output_missing"):
        lines.append(
            f"lost outputs:    {status['files_output_missing']} file(s) marked done have no output (deleted or "
            "moved?): counted as remaining, the rerun classifies them again"
        )
    if status.get("files_other_settings"):
        lines.append(
            f"other settings:  {status['files_other_settings']} file(s) whose marker was written under other "
            "settings (a task of an earlier, killed run): counted as remaining, the rerun classifies them again"
        )
    if status.get("files_outside_plan"):
        lines.append(
            f"outside plan:    {status['files_outside_plan']} output(s) of files the last run's --input no "
            f"longer lists (kept; not counted above): {OUTSIDE_REMEDY}"
        )
    if not status.get("inputs_rechecked", True):
        why = status.get("inputs_not_rechecked_because") or "out of reach"
        lines.append(f"inputs:          not listed again ({why}): the counts are over the last run's plan")
    lines += [
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
    lines.extend(
        _capped(
            status["changed"],
            lambda e: f"CHANGED {e['relpath']}: {e['change']} (rerun with --on-changed-input redo)",
        )
    )
    for entry in status["partly_done"]:
        of = f" of {entry['pieces']}" if entry["pieces"] is not None else ""
        lines.append(
            f"PARTLY DONE {entry['relpath']}: {entry['pieces_done']}{of} pieces, "
            f"{entry['documents_done']} documents (the rerun continues from there)"
        )
    lines.extend(
        _capped(
            status.get("outside_plan", []),
            lambda e: (
                f"OUTSIDE PLAN {e['relpath']}: {output_in_words(e)}; input {e['input_path']} {input_state(e)}"
            ),
        )
    )
    outside = {e["relpath"] for e in status.get("outside_plan", [])}
    lines.extend(
        _capped(
            [e for e in status["vanished"] if e["relpath"] not in outside],
            lambda e: f"VANISHED {e['relpath']}: the input is gone{_vanished_output(e['output'])}",
        )
    )
    lines.extend(
        _capped(
            status["failed"],
            lambda e: f"FAILED {e['relpath']}: {e['error'].splitlines()[0] if e['error'] else ''}",
        )
    )
    return "\n".join(lines)


def _vanished_output(output: str | None) -> str:
    """A vanished file's output (status.py: None for a file never classified, "" for one of no output row)."""
    if output is None:
        return ", never classified (a rerun skips it)"
    return f"; its output is kept: {output}" if output else f"; {NO_OUTPUT}"


def _capped(entries: list[dict[str, Any]], line: Callable[[dict[str, Any]], str]) -> list[str]:
    return capped_lines(entries, line, more=" (--json for all)")
