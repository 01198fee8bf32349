"""`hpc-classify status`: where a run stands, computed from the output directory alone
(the stored plan, the completion markers, _failures.ndjson and the last `_summary.json`)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.driver.failures import read_failures
from hpc_classify.driver.input_changes import VANISHED, describe_change
from hpc_classify.driver.legacy_outputs import as_migrated, laid_out
from hpc_classify.driver.lost_outputs import OutputListing, has_output_of
from hpc_classify.driver.pieces import partly_done
from hpc_classify.driver.plan import PlannedFile, read_plan, relpaths_by_path, stored_files
from hpc_classify.driver.run_owner import stored_fingerprint, written_under_other_settings
from hpc_classify.driver.stale_outputs import outside_entry
from hpc_classify.driver.summary import SUMMARY_FILE
from hpc_classify.driver.tally import MarkerTally
from hpc_classify.errors import HpcClassifyError, OutputDirectoryError
from hpc_classify.io.discovery import InputFile, expand_inputs
from hpc_classify.io.markers import CompletionMarker, MarkerFiles, read_marker_files
from hpc_classify.io.threaded_map import METADATA_THREADS

logger = logging.getLogger(__name__)


def compute_status(output_dir: str, *, verify_inputs: bool = False) -> dict[str, Any]:
    """What a rerun of the same command would do, counted: files_done + files_failed + files_remaining +
    files_vanished == files_planned + files_new.

    The files are the last run's plan plus `files_new`: inputs found since, by expanding the plan's --input
    specs again as the driver does (`inputs_rechecked` is False where that is impossible: then the counts
    are over the last run's plan). A marker counts as done only while the file's current input is unchanged
    (size and mtime; content hash with `verify_inputs`): a changed input, or an unreadable marker, is listed
    in `changed` and counted as remaining. A planned input that no longer exists is listed in `vanished`
    (its output is kept, never deleted; `files_vanished` counts the planned ones), and so is a planned file
    without a marker that the inputs listed again no longer have (its `output` None: a rerun does not plan
    it, so it is neither remaining nor failed). documents_in/out, labels and nodes are summed over the done
    files (markers of files no longer among the inputs are counted in `files_outside_plan` only, and listed
    in `outside_plan` with their outputs: a renamed input's old output duplicates the new one's documents).
    """
    plan = read_plan(output_dir)
    if plan is None and not os.path.exists(output_dir):
        raise OutputDirectoryError(
            f"{output_dir} does not exist", hint="pass the --output directory of a run"
        )
    if plan is None:
        raise OutputDirectoryError(
            f"{output_dir} holds no run (no _plan.json)", hint="pass the --output directory of a run"
        )
    rerun = files_of_a_rerun(plan)
    planned, new = rerun.planned, rerun.new
    tally = tally_markers(output_dir, planned, verify_inputs, gone=rerun.gone)
    failed = failures_of_a_rerun(output_dir, planned, tally)
    done = len(tally.done)
    seconds = tally.markers.worker_seconds()
    totals = tally.markers
    return {
        "output": os.path.abspath(output_dir),
        "files_planned": len(planned) - new,
        "files_new": new,
        "inputs_rechecked": rerun.rechecked,
        "inputs_not_rechecked_because": rerun.not_rechecked_because,
        "files_done": done,
        "files_failed": len(failed),
        "files_remaining": len(planned) - done - len(failed) - tally.vanished_planned,
        "files_changed": len(tally.changed),
        "files_vanished": tally.vanished_planned,
        "files_outside_plan": tally.outside,
        "outside_plan": sorted(tally.outside_plan, key=lambda e: e["relpath"]),  # kept: a rerun skips them
        "files_output_missing": len(tally.output_missing),
        "files_other_settings": len(tally.other_settings),
        "bytes_done": tally.bytes_done,
        "bytes_planned": sum(f.size for f in planned.values()),
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
        "partly_done": partly_done(output_dir, set(planned) - tally.done - tally.vanished_relpaths()),
        "last_run": _last_run(output_dir),
    }


@dataclass(frozen=True)
class RerunFiles:
    """`planned`: the stored plan's files, at their current paths, plus the inputs added since (`new` of
    them), by relpath. `rechecked`: whether the inputs were listed again (if not, the stored plan's files
    alone, and `not_rechecked_because` says why). `gone`: the stored plan's files that listing no longer has
    (a rerun does not plan them; kept in `planned` so that the counts still add up to the last run's plan)."""

    planned: dict[str, PlannedFile]
    new: int
    rechecked: bool
    gone: frozenset[str]
    not_rechecked_because: str | None = None


def files_of_a_rerun(plan: dict[str, Any], *, relist: bool = True) -> RerunFiles:
    """The files a rerun would plan (`relist` False: the inputs are not listed again, for a plan the caller
    knows is current)."""
    planned = stored_files(plan)
    current, why_not = _current_inputs(plan) if relist else (None, "the run's own plan is current")
    if current is None:
        return RerunFiles(planned, 0, False, frozenset(), why_not)
    gone = set(planned)
    new = 0
    for f in current:
        gone.discard(f.relpath)
        new += f.relpath not in planned
        size = planned[f.relpath].size if f.relpath in planned else _size(f.path)
        planned[f.relpath] = PlannedFile(f.path, f.relpath, size)
    return RerunFiles(planned, new, True, frozenset(gone))


def _current_inputs(plan: dict[str, Any]) -> tuple[list[InputFile] | None, str | None]:
    """The plan's --input specs expanded now (the driver's discovery), or None and why that is impossible:
    inputs out of reach (the listing's error, which a rerun would stop on), or relative specs of an older
    plan (relative to a cwd no longer known)."""
    specs = plan.get("inputs") or []
    if not specs:
        return None, "the plan names no inputs"
    if not all(os.path.isabs(spec) for spec in specs):
        return None, "the plan's inputs are relative paths of an older version, their directory unknown"
    try:
        return expand_inputs(specs, relpaths_by_path(plan)), None
    except (HpcClassifyError, OSError) as error:
        return None, f"out of reach: {error}"


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@dataclass
class StatusTally:
    """The markers of an output directory, sorted into done / changed / vanished; the done ones tallied. The
    one place that decides which markers count: `status` and the report read the directory through it."""

    done: set[str] = field(default_factory=set)
    changed: list[dict[str, str]] = field(default_factory=list)
    vanished: list[dict[str, str]] = field(default_factory=list)
    vanished_planned: int = 0
    output_missing: list[dict[str, str]] = field(default_factory=list)  # marked done, output gone: remaining
    # Marked done under another fingerprint than _run.json's (a killed run's task, late): remaining.
    other_settings: list[dict[str, str]] = field(default_factory=list)
    outside: int = 0  # markers of files no longer among the planned inputs
    outside_plan: list[dict[str, Any]] = field(default_factory=list)  # their stale_outputs.outside_entry
    bytes_done: int = 0
    inputs_checked: bool = True
    markers: MarkerTally = field(default_factory=MarkerTally)
    done_markers: list[tuple[str, CompletionMarker]] = field(default_factory=list)

    def add_done(self, relpath: str, size: int, marker: CompletionMarker) -> None:
        self.done.add(relpath)
        self.bytes_done += size
        self.markers.add(marker)
        self.done_markers.append((relpath, marker))

    def add_vanished(self, relpath: str, input_path: str, output: str | None) -> None:
        """A planned file whose input is gone; `output` None: it has no marker that says it was classified."""
        self.vanished.append({"relpath": relpath, "input_path": input_path, "output": output})
        self.vanished_planned += 1

    def vanished_relpaths(self) -> set[str]:
        return {e["relpath"] for e in self.vanished}


def tally_markers(
    output_dir: str,
    planned: Mapping[str, PlannedFile],
    verify_inputs: bool,
    *,
    check_inputs: bool | None = True,
    gone: Collection[str] = (),
    markers: MarkerFiles | None = None,
) -> StatusTally:
    """Each marker of a planned file is compared with the planned file's path, as the driver does (the
    marker's own input_path only where an older plan has no paths): after the corpus moved, a rerun finds
    the same files done. `check_inputs=False`: every readable marker of a planned file counts as done;
    None: so only where no planned input can be reached (a copy of the output directory elsewhere).
    `gone` (RerunFiles.gone): planned files the inputs listed again lack; those without a marker that
    counts are vanished, not remaining. A marker written under another fingerprint than `_run.json`'s
    counts as none (`other_settings`: the rerun classifies the file again, driver/run_owner.py). A directory
    an earlier release left is read as the rerun's migration leaves it (driver/legacy_outputs.py).
    `markers`: every marker of `output_dir`, read already (a run's end); None: read here, a few at a time (each
    a metadata round trip on a parallel file system)."""
    tally = StatusTally()
    fingerprint = stored_fingerprint(output_dir) or None  # none, or unreadable: no marker set aside
    layout_current = laid_out(output_dir)
    if markers is None:
        markers = read_marker_files(output_dir, METADATA_THREADS)
    read = [(r, as_migrated(m, fingerprint, laid_out=layout_current)) for r, m in markers.found.items()]
    for relpath, exc in markers.unreadable.items():
        if relpath not in planned:
            logger.warning("%s", exc)
        # As the driver: a changed input (exit 2, or redone with --on-changed-input redo).
        elif relpath not in gone:
            tally.changed.append(
                {"relpath": relpath, "input_path": planned[relpath].path, "change": exc.reason}
            )

    def input_path(relpath: str, marker: CompletionMarker) -> str:
        return planned[relpath].path or marker.input_path

    outputs = OutputListing(output_dir)

    def add_done(relpath: str, marker: CompletionMarker) -> None:
        if has_output_of(outputs, relpath, marker):
            tally.add_done(relpath, planned[relpath].size, marker)
        else:  # deleted or moved: a rerun classifies it again (lost_outputs.py)
            tally.output_missing.append({"relpath": relpath, "output": marker.output_path})

    if check_inputs is None:
        check_inputs = any(os.path.exists(f.path) for f in planned.values() if f.path) or any(
            os.path.exists(input_path(r, m)) for r, m in read if r in planned
        )
    tally.inputs_checked = check_inputs
    for relpath, marker in read:
        if (
            relpath in planned
            and fingerprint
            and written_under_other_settings(marker.fingerprint, fingerprint)
        ):
            if relpath not in gone:
                tally.other_settings.append({"relpath": relpath, "fingerprint": marker.fingerprint})
            continue
        if relpath not in planned:
            tally.outside += 1
            exists = os.path.exists(marker.input_path) if check_inputs else None
            tally.outside_plan.append(outside_entry(os.path.abspath(output_dir), relpath, marker, exists))
            if exists is False:
                tally.vanished.append(
                    {"relpath": relpath, "input_path": marker.input_path, "output": marker.output_path}
                )
            continue
        if not check_inputs:
            add_done(relpath, marker)
            continue
        path = input_path(relpath, marker)
        what = describe_change(marker, path, verify=verify_inputs)
        if what == VANISHED:
            tally.add_vanished(relpath, path, marker.output_path)
        elif what is not None:
            tally.changed.append({"relpath": relpath, "input_path": path, "change": what})
        else:
            add_done(relpath, marker)
    # The rerun lists the inputs again and never plans these: not remaining, whatever the stored plan says.
    counted = (
        tally.done | tally.vanished_relpaths() | {e["relpath"] for e in tally.changed + tally.output_missing}
    )
    for relpath in sorted(set(gone) - counted):
        tally.add_vanished(relpath, planned[relpath].path, None)
    return tally


def failures_of_a_rerun(
    output_dir: str, planned: Mapping[str, PlannedFile], tally: StatusTally
) -> list[dict[str, Any]]:
    """The entries of _failures.ndjson that a rerun retries: of planned files with no marker that counts by
    now (a later run completed them) and whose input is still there (a vanished one is not retried)."""
    settled = tally.done | tally.vanished_relpaths()
    return [
        e for e in read_failures(output_dir) if e.get("relpath") in planned and e["relpath"] not in settled
    ]


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
