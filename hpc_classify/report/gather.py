"""The numbers behind the run report (`_report.json`), from the output directory's bookkeeping alone:
the completion markers, `_plan.json`, `_run.json`, `_summary.json` and `_failures.ndjson` (outputs and
quarantine files are never read, so 100,000 files take seconds).

One pass over the markers that count (driver/status.tally_markers: of planned files whose input is unchanged,
as `status` counts them) collects per-shard label counts (drift), per-column totals, the files' intervals
(throughput, timeline) and the bad rows; the other files add the failures and the provenance.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from hpc_classify._version import __version__
from hpc_classify.driver.fingerprint import read_run_file
from hpc_classify.driver.plan import read_plan
from hpc_classify.driver.status import failures_of_a_rerun, files_of_a_rerun, tally_markers
from hpc_classify.driver.summary import SUMMARY_FILE
from hpc_classify.driver.tally import MarkerTally
from hpc_classify.errors import OutputDirectoryError
from hpc_classify.io.markers import CompletionMarker, MarkerFiles
from hpc_classify.report.drift import DISTANCE_NAME, rank_drift
from hpc_classify.report.files import DASK_REPORT_HTML
from hpc_classify.report.timeline import Interval, marker_interval, throughput_series, worker_timeline

logger = logging.getLogger(__name__)

UNKNOWN_KIND = "unknown (marker written before kinds were recorded)"


@dataclass
class _MarkerScan:
    """What one pass over the markers collects (per-shard counts are kept: drift needs them)."""

    relpaths: list[str] = field(default_factory=list)
    shard_counts: dict[str, list[dict[str, int]]] = field(default_factory=dict)
    tally: MarkerTally = field(default_factory=MarkerTally)  # documents and labels, as summary and status
    intervals: list[Interval] = field(default_factory=list)
    without_times: int = 0
    bad_kinds: Counter[str] = field(default_factory=Counter)
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    fingerprints: Counter[str] = field(default_factory=Counter)

    def add(self, relpath: str, marker: CompletionMarker) -> None:
        shard = len(self.relpaths)
        self.relpaths.append(relpath)
        for column, counts in marker.label_counts.items():
            if column not in self.shard_counts:
                # A column first seen at shard k (markers of an earlier classifier set) is empty before it.
                self.shard_counts[column] = [{} for _ in range(shard)]
            self.shard_counts[column].append(counts)
        for per_shard in self.shard_counts.values():
            if len(per_shard) == shard:
                per_shard.append({})
        self.tally.add(marker)
        self.fingerprints[marker.fingerprint] += 1
        # A file in pieces: each piece on the worker that classified it.
        for part in marker.extra.get("pieces") or [marker.work_summary()]:
            interval = marker_interval(
                f"{part['node']}/{part['worker']}",
                part["started_at"],
                part["finished_at"],
                part["seconds"],
                part["rows_in"],
            )
            if interval is None:
                self.without_times += 1
            else:
                self.intervals.append(interval)
        if marker.rows_bad:
            kinds = marker.bad_rows_by_kind or {UNKNOWN_KIND: marker.rows_bad}
            self.bad_kinds.update(kinds)
            self.quarantined.append(
                {
                    "relpath": relpath,
                    "rows_bad": marker.rows_bad,
                    "kinds": dict(kinds),
                    "quarantine_path": marker.quarantine_path,
                }
            )


def collect_report(
    output_dir: str, *, relist_inputs: bool = True, markers: MarkerFiles | None = None
) -> dict[str, Any]:
    """The report's numbers as one JSON-ready dict (see docs/report.md for its keys). `relist_inputs` False:
    count over the stored plan without listing the inputs again (a run's own report: it just listed them).
    `markers`: every marker of `output_dir`, read already (a run's end that read them); None: read here."""
    output_dir = os.path.abspath(output_dir)
    plan = read_plan(output_dir)
    if plan is None:
        raise OutputDirectoryError(
            f"{output_dir} holds no run (no _plan.json)", hint="pass the --output directory of a run"
        )
    # The markers that count, as `status` counts them: of planned files whose input is unchanged. A report
    # of a copy of OUT, where no planned input can be reached, cannot look at them: then every marker counts.
    rerun = files_of_a_rerun(plan, relist=relist_inputs)
    planned, new = rerun.planned, rerun.new
    counted = tally_markers(
        output_dir, planned, verify_inputs=False, check_inputs=None, gone=rerun.gone, markers=markers
    )
    scan = _MarkerScan()
    for relpath, marker in counted.done_markers:
        scan.add(relpath, marker)
    failures = failures_of_a_rerun(output_dir, planned, counted)  # as `status` counts them
    run_file = read_run_file(output_dir) or {}
    summary = _read_summary(output_dir)
    return {
        "report_version": 1,
        "generated_at": dt.datetime.now(tz=dt.UTC).isoformat(timespec="seconds"),
        "output": output_dir,
        "files": {
            "planned": len(planned) - new,
            "new": new,  # inputs found since the last run's plan: remaining
            "done": len(counted.done),
            "done_outside_plan": counted.outside,
            "changed": len(counted.changed),
            "other_settings": len(counted.other_settings),  # a late task of an earlier run's: remaining
            "vanished": counted.vanished_planned,
            "failed": len(failures),
            "remaining": len(planned) - len(counted.done) - len(failures) - counted.vanished_planned,
            "without_times": scan.without_times,
            "inputs_checked": counted.inputs_checked,
        },
        "documents": {
            "in": scan.tally.documents_in,
            "out": scan.tally.documents_out,
            "bad": scan.tally.rows_bad,
        },
        "classifiers": _classifier_columns(run_file, scan.tally.labels),
        "labels": scan.tally.plain_labels(),
        "drift": {
            "distance": DISTANCE_NAME,
            "ranking": rank_drift(scan.relpaths, scan.shard_counts),
        },
        "throughput": throughput_series(scan.intervals),
        "timeline": worker_timeline(scan.intervals),
        "failures": _group_failures(failures),
        "quarantine": {
            "rows": scan.tally.rows_bad,
            "by_kind": dict(scan.bad_kinds.most_common()),
            "files": sorted(scan.quarantined, key=lambda q: (-q["rows_bad"], q["relpath"])),
        },
        "provenance": _provenance(run_file, summary, plan, scan.fingerprints),
        "dask_report": _dask_report(output_dir),
    }


def _dask_report(output_dir: str) -> dict[str, str] | None:
    """The `run --dask-report` page (of the last run that asked for one), with its time, or None."""
    path = os.path.join(output_dir, DASK_REPORT_HTML)
    try:
        written = os.stat(path).st_mtime
    except FileNotFoundError:
        return None
    return {
        "file": DASK_REPORT_HTML,
        "written_at": dt.datetime.fromtimestamp(written, tz=dt.UTC).isoformat(timespec="seconds"),
    }


def _read_summary(output_dir: str) -> dict[str, Any]:
    """The last run's summary, or {} while the first run is still going (or after a crash)."""
    path = os.path.join(output_dir, SUMMARY_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return {}
    except ValueError as exc:
        logger.warning("%s is not valid JSON (%s): the report leaves the last run's summary out", path, exc)
        return {}


def column_kind(counts: dict[str, int]) -> str:
    """ "scores" when every value is a number (a regressor's histogram bins, an integer score), else "labels"."""
    try:
        for value in counts:
            float(value)
    except ValueError:
        return "labels"
    return "scores" if counts else "labels"


def _classifier_columns(run_file: dict[str, Any], labels: dict[str, Counter[str]]) -> list[dict[str, Any]]:
    """Each classifier of the run with its output columns (and their kind); columns that the markers hold
    but no classifier of `_run.json` names (an older run's) are listed under "(other columns)"."""
    classifiers = []
    named: set[str] = set()
    for fingerprint in run_file.get("details", {}).get("classifiers", []):
        columns = [c for c in fingerprint.get("columns", []) if c in labels]
        named.update(columns)
        name = fingerprint.get("class", "").rsplit(".", 1)[-1] or "classifier"
        classifiers.append({"name": name, "columns": _kinds(columns, labels)})
    others = [c for c in labels if c not in named]
    if others:
        classifiers.append({"name": "(other columns)", "columns": _kinds(others, labels)})
    return classifiers


def _kinds(columns: list[str], labels: dict[str, Counter[str]]) -> list[dict[str, str]]:
    return [{"column": c, "kind": column_kind(labels[c])} for c in columns]


def _group_failures(failures: list[dict[str, Any]]) -> dict[str, Any]:
    """_failures.ndjson grouped by error type, largest group first."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for entry in failures:
        first_line = (entry.get("error") or "").splitlines()[:1]
        groups.setdefault(entry.get("error_type") or "(unknown)", []).append(
            {
                "relpath": entry.get("relpath", ""),
                "input_path": entry.get("input_path", ""),
                "attempts": entry.get("attempts"),
                "error": first_line[0] if first_line else "",
            }
        )
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return {
        "files": len(failures),
        "by_type": [{"error_type": kind, "count": len(files), "files": files} for kind, files in ordered],
    }


def _provenance(
    run_file: dict[str, Any], summary: dict[str, Any], plan: dict[str, Any], fingerprints: Counter[str]
) -> dict[str, Any]:
    details = run_file.get("details", {})
    models = []
    for fingerprint in details.get("classifiers", []):
        models.append(
            {
                "class": fingerprint.get("class"),
                "model": fingerprint.get("model"),
                "precision": fingerprint.get("precision"),
                "columns": fingerprint.get("columns"),
            }
        )
    settings = {k: v for k, v in details.items() if k not in ("classifiers", "package_version")}
    last_run_keys = ("started_at", "finished_at", "wall_seconds", "exit_code", "exit_meaning", "workers")
    return {
        "report_by": __version__,
        "package_version": details.get("package_version"),
        "fingerprint": run_file.get("fingerprint"),
        "marker_fingerprints": dict(fingerprints.most_common()),
        "models": models,
        "settings": settings,
        "inputs": plan.get("inputs", []),
        "command": summary.get("command"),
        "last_run": {key: summary.get(key) for key in last_run_keys} if summary else None,
    }
