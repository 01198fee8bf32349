"""Which completion markers this run wrote (a stopped or failed task may finish anyway): by fingerprint and
by when the marker was finished, not started (a file assembled from pieces starts with its first piece,
perhaps in an earlier run)."""

from __future__ import annotations

import time

import pytest

from hpc_classify.driver.done_markers import CLOCK_SKEW_SECONDS, marker_written_since
from hpc_classify.io.markers import CompletionMarker, iso_time, marker_path, write_marker

DAY = 86400.0


def write(output, *, fingerprint="run", started, finished) -> None:
    marker = CompletionMarker(
        input_path="/in/a.jsonl", input_size=1, input_mtime=0.0, output_path=str(output / "a.jsonl"),
        rows_in=1, rows_out=1, rows_bad=0, label_counts={}, seconds=1.0, node="n", worker="w",
        fingerprint=fingerprint, started_at=iso_time(started), finished_at=iso_time(finished),
    )  # fmt: skip
    write_marker(marker_path(str(output), "a.jsonl"), marker)


@pytest.mark.parametrize(
    ("started", "finished", "fingerprint", "counted"),
    [
        (-DAY, 10.0, "run", True),  # assembled now from pieces of yesterday's run
        (10.0, 20.0, "run", True),
        (-DAY, -DAY + 60, "run", False),  # an earlier run's marker
        (-CLOCK_SKEW_SECONDS / 2, -CLOCK_SKEW_SECONDS / 2, "run", True),  # a worker's clock a little behind
        (10.0, 20.0, "other", False),
    ],
)
def test_a_marker_counts_as_this_runs_when_finished_since_its_start(
    tmp_path, started, finished, fingerprint, counted
):
    run_start = time.time()
    write(tmp_path, fingerprint=fingerprint, started=run_start + started, finished=run_start + finished)
    found = marker_written_since(str(tmp_path), "a.jsonl", "run", run_start)
    assert (found is not None) == counted
    assert found is None or found.rows_in == 1


def test_no_or_a_torn_marker_is_not_counted(tmp_path):
    assert marker_written_since(str(tmp_path), "a.jsonl", "run", time.time()) is None
    path = marker_path(str(tmp_path), "a.jsonl")
    write(tmp_path, started=time.time(), finished=time.time())
    with open(path, "r+b") as f:
        f.truncate(20)
    assert marker_written_since(str(tmp_path), "a.jsonl", "run", time.time() - 60) is None
