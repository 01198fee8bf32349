"""`status` rates: files classified together in one task overlap in time, and a worker's time is counted once."""

from __future__ import annotations

import datetime as dt
import os

from hpc_classify.driver.plan import PlannedFile, write_plan
from hpc_classify.driver.status import compute_status, format_status
from hpc_classify.driver.summary import write_summary
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _iso(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat(timespec="milliseconds")


def _done(tmp_path, output, relpath: str, rows: int, worker: str, start: float, end: float) -> PlannedFile:
    path = tmp_path / "in" / relpath
    path.parent.mkdir(exist_ok=True)
    path.write_text("x" * rows)
    stat = os.stat(path)
    marker = CompletionMarker(
        input_path=str(path),
        input_size=stat.st_size,
        input_mtime=stat.st_mtime,
        output_path=str(output / relpath),
        rows_in=rows,
        rows_out=rows,
        rows_bad=0,
        label_counts={},
        seconds=end - start,
        node="n1",
        worker=worker,
        fingerprint="f",
        started_at=_iso(start),
        finished_at=_iso(end),
    )
    write_marker(marker_path(str(output), relpath), marker)
    return PlannedFile(str(path), relpath, stat.st_size, stat.st_mtime)


def test_overlapping_files_of_one_worker_count_once_and_both_rates_say_what_they_measure(tmp_path):
    output = tmp_path / "out"
    output.mkdir()
    files = [
        # One task of two files on worker a (read together, written one after the other): 0-10 s in all.
        _done(tmp_path, output, "a.jsonl", 30, "a", 0.0, 9.0),
        _done(tmp_path, output, "b.jsonl", 20, "a", 1.0, 10.0),
        # Then a file alone, after a gap that is no work: 12-14 s.
        _done(tmp_path, output, "c.jsonl", 10, "a", 12.0, 14.0),
        # Another worker at the same time: its time adds up (worker-seconds), 5-9 s.
        _done(tmp_path, output, "d.jsonl", 20, "b", 5.0, 9.0),
    ]
    write_plan(str(output), [str(tmp_path / "in")], files)
    write_summary(str(output), {"documents_per_second": 4.0, "wall_seconds": 20.0, "exit_code": 0})

    status = compute_status(str(output))

    assert status["worker_seconds"] == 10.0 + 2.0 + 4.0
    assert status["documents_per_worker_second"] == round(80 / 16.0, 3)
    lines = format_status(status).splitlines()
    assert lines[3] == (
        "throughput:      5.0 docs per worker-second (done files' documents / time workers spent on them, all runs)"
    )
    assert lines[4] == "last run:        4.0 docs/s wall-clock over 20.0 s (start-up included), exit code 0"
