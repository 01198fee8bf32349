"""`status`: rates (files classified together in one task overlap in time, and a worker's time is counted
once), and counts that say what a rerun would do (moved corpus, new inputs, corrupt markers)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path

import pytest

from hpc_classify.driver.plan import PlannedFile, list_input_files, pending_files, write_plan
from hpc_classify.driver.stale_outputs import warn_outside_plan
from hpc_classify.driver.status import compute_status
from hpc_classify.driver.status_text import format_status
from hpc_classify.driver.summary import write_summary
from hpc_classify.errors import OutputDirectoryError
from hpc_classify.io.markers import CompletionMarker, MarkerListing, marker_path, read_marker, write_marker

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
    (output / relpath).parent.mkdir(parents=True, exist_ok=True)
    (output / relpath).write_text("")  # its output: a marker without one is not done (lost_outputs.py)
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


def _finished_run(tmp_path, output, names) -> list[PlannedFile]:
    """A run over tmp_path/in that classified every file in `names`."""
    output.mkdir()
    files = [_done(tmp_path, output, name, 3, "a", 0.0, 1.0) for name in names]
    write_plan(str(output), [str(tmp_path / "in")], files)
    return files


def test_after_the_corpus_moved_status_counts_what_the_rerun_found_done(tmp_path):
    output = tmp_path / "out"
    _finished_run(tmp_path, output, ["a.jsonl", "b.jsonl"])
    (tmp_path / "in").rename(tmp_path / "moved")
    moved = str(tmp_path / "moved")
    write_plan(str(output), [moved], list_input_files([moved], str(output), "jsonl"))  # as the rerun does

    status = compute_status(str(output))

    assert (status["files_done"], status["files_remaining"], status["files_vanished"]) == (2, 0, 0)
    assert status["vanished"] == []


def test_status_counts_inputs_added_since_the_last_run_as_remaining(tmp_path):
    output = tmp_path / "out"
    _finished_run(tmp_path, output, ["a.jsonl", "b.jsonl"])
    (tmp_path / "in" / "c.jsonl").write_text('{"text": "new"}\n')

    status = compute_status(str(output))

    assert (status["files_done"], status["files_remaining"]) == (2, 1)
    assert (status["files_planned"], status["files_new"], status["inputs_rechecked"]) == (2, 1, True)
    lines = format_status(status).splitlines()
    assert lines[1] == (
        "files:           2 done, 1 remaining (0 of them changed), 0 failed, 0 vanished "
        "(of 2 planned by the last run + 1 new)"
    )
    assert lines[2].startswith("new inputs:      1 file(s) found since the last run's plan")


def test_status_says_when_the_inputs_cannot_be_listed_again(tmp_path):
    output = tmp_path / "out"
    _finished_run(tmp_path, output, ["a.jsonl"])
    plan = json.loads((output / "_plan.json").read_text())
    plan["inputs"] = ["in"]  # a plan of an older version: the spec as given, relative to a cwd unknown now
    (output / "_plan.json").write_text(json.dumps(plan))

    status = compute_status(str(output))

    assert status["inputs_rechecked"] is False and status["files_done"] == 1
    assert (
        "inputs:          not listed again (the plan's inputs are relative paths of an older version, their "
        "directory unknown): the counts are over the last run's plan"
    ) in format_status(status)


def test_a_corrupt_marker_is_a_changed_input_as_the_rerun_finds_it(tmp_path):
    output = tmp_path / "out"
    _finished_run(tmp_path, output, ["a.jsonl", "b.jsonl"])
    Path(marker_path(str(output), "b.jsonl")).write_text("{")

    status = compute_status(str(output))

    assert (status["files_done"], status["files_remaining"], status["files_changed"]) == (1, 1, 1)
    [changed] = status["changed"]
    assert changed["relpath"] == "b.jsonl" and changed["change"].startswith("corrupt completion marker")
    assert "CHANGED b.jsonl: corrupt completion marker" in format_status(status)
    assert "--on-changed-input redo" in format_status(status)


def test_the_files_line_adds_up_and_detail_lines_are_capped(tmp_path):
    output = tmp_path / "out"
    names = [f"f{n:02}.jsonl" for n in range(25)]
    _finished_run(tmp_path, output, [*names, "changed.jsonl", "kept.jsonl"])
    for name in names:
        (tmp_path / "in" / name).unlink()
    (tmp_path / "in" / "changed.jsonl").write_text("longer than before\n")

    status = compute_status(str(output))
    lines = format_status(status).splitlines()

    assert lines[1] == (
        "files:           1 done, 1 remaining (1 of them changed), 0 failed, 25 vanished "
        "(of 27 planned by the last run)"
    )
    vanished = [line for line in lines if line.startswith("VANISHED")]
    assert len(vanished) == 20 and "... and 5 more (--json for all)" in lines
    assert len(status["vanished"]) == 25


def _planned_not_done(tmp_path, output, names) -> None:
    """Inputs added to the plan of the run in `output` that it has not classified yet (no marker)."""
    for name in names:
        (tmp_path / "in" / name).write_text('{"text": "x"}\n')
    inputs = [str(tmp_path / "in")]
    write_plan(str(output), inputs, list_input_files(inputs, str(output), "jsonl"))


def test_a_planned_input_deleted_before_it_was_classified_is_vanished_not_remaining(tmp_path):
    """A rerun lists the inputs again and never plans it: status counted it as remaining (and a failed
    one as failed, though the rerun does not retry it either)."""
    output = tmp_path / "out"
    _finished_run(tmp_path, output, ["a.jsonl"])
    _planned_not_done(tmp_path, output, ["b.jsonl", "c.jsonl", "d.jsonl"])
    failure = {"relpath": "d.jsonl", "input_path": str(tmp_path / "in" / "d.jsonl"), "error": "boom"}
    (output / "_failures.ndjson").write_text(json.dumps(failure) + "\n")
    (tmp_path / "in" / "b.jsonl").unlink()
    (tmp_path / "in" / "d.jsonl").unlink()

    status = compute_status(str(output))

    rerun = pending_files(list_input_files([str(tmp_path / "in")], str(output), "jsonl"), str(output))
    assert status["files_remaining"] == len(rerun) == 1  # c.jsonl
    assert (status["files_done"], status["files_failed"], status["files_vanished"]) == (1, 0, 2)
    assert [(v["relpath"], v["output"]) for v in status["vanished"]] == [("b.jsonl", None), ("d.jsonl", None)]
    lines = format_status(status).splitlines()
    assert lines[1] == (
        "files:           1 done, 1 remaining (0 of them changed), 0 failed, 2 vanished "
        "(of 4 planned by the last run)"
    )
    assert "VANISHED b.jsonl: the input is gone, never classified (a rerun skips it)" in lines


def test_where_the_inputs_cannot_be_listed_again_a_planned_file_not_done_stays_remaining(tmp_path):
    """Without a listing nothing says what a rerun would plan: the counts stay over the stored plan."""
    output = tmp_path / "out"
    _finished_run(tmp_path, output, ["a.jsonl"])
    _planned_not_done(tmp_path, output, ["b.jsonl"])
    (tmp_path / "in" / "b.jsonl").unlink()
    plan = json.loads((output / "_plan.json").read_text())
    plan["inputs"] = ["in"]  # an older plan's relative spec: the inputs cannot be listed again
    (output / "_plan.json").write_text(json.dumps(plan))

    status = compute_status(str(output))

    assert status["inputs_rechecked"] is False
    assert (status["files_done"], status["files_remaining"], status["files_vanished"]) == (1, 1, 0)


def test_a_missing_directory_is_said_to_be_missing_an_empty_one_to_hold_no_run(tmp_path):
    with pytest.raises(OutputDirectoryError, match=r"/nothing-here does not exist"):
        compute_status(str(tmp_path / "nothing-here"))
    with pytest.raises(OutputDirectoryError, match=r"holds no run \(no _plan.json\)"):
        compute_status(str(tmp_path))


def test_a_vanished_or_outside_file_of_no_output_row_says_it_was_classified(tmp_path, caplog):
    """A file of no output row has a marker naming output "": classified, with no output file. Its VANISHED
    line said "never classified" and its OUTSIDE PLAN lines (status, run start) "output None"."""
    output = tmp_path / "out"
    files = _finished_run(tmp_path, output, ["a.jsonl", "empty.jsonl"])
    _done(tmp_path, output, "moved.jsonl", 3, "a", 0.0, 1.0)  # of an earlier plan: outside the last one
    for relpath in ("empty.jsonl", "moved.jsonl"):  # as task.py writes a file of no output row
        marker = read_marker(marker_path(str(output), relpath))
        write_marker(
            marker_path(str(output), relpath), dataclasses.replace(marker, output_path="", rows_out=0)
        )
        (output / relpath).unlink()
    moved = tmp_path / "in" / "moved.jsonl"
    for path in (moved, tmp_path / "in" / "empty.jsonl"):
        path.unlink()

    lines = format_status(compute_status(str(output))).splitlines()
    with caplog.at_level("WARNING", logger="hpc_classify.driver.stale_outputs"):
        warn_outside_plan(str(output), [f.relpath for f in files], MarkerListing(str(output)))

    assert [line for line in lines if line.startswith(("VANISHED", "OUTSIDE PLAN"))] == [
        f"OUTSIDE PLAN moved.jsonl: no output file (classified, no output rows); input {moved} is gone",
        "VANISHED empty.jsonl: the input is gone; no output file (classified, no output rows)",
    ]
    assert caplog.records[0].getMessage().splitlines()[1:] == [
        f"  moved.jsonl: no output file (classified, no output rows) (input {moved} is gone)"
    ]
