"""The metadata work of a run start, counted: `_markers/` is listed once for all its steps (changed inputs,
lost outputs, pending files), and each input is stat'ed once (by its listing).
A no-op resume of 50,000 files made about 300,000 metadata calls: three stats per input and three scans of
`_markers/`."""

from __future__ import annotations

import json
import os
from collections import Counter

import pytest

from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.config import RunConfig
from hpc_classify.driver import run as driver_run
from hpc_classify.driver.fingerprint import check_or_store_fingerprint
from hpc_classify.driver.input_changes import find_changed_inputs, forget_old_versions
from hpc_classify.driver.lost_outputs import forget_lost_outputs
from hpc_classify.driver.plan import list_input_files, pending_files
from hpc_classify.io.markers import (
    MARKERS_DIRNAME,
    CompletionMarker,
    MarkerListing,
    marker_path,
    write_marker,
)

DETAILS = {"test": "start metadata"}  # the run's fingerprint details: no model needed
RELPATHS = ("a.jsonl", "sub/b.jsonl", "sub/c.jsonl")


def _make_done(inputs, output) -> None:
    """Each of RELPATHS as a finished run leaves it: input, output and a marker that matches the input."""
    output.mkdir()
    fingerprint = check_or_store_fingerprint(str(output), DETAILS, overwrite=False)
    for relpath in RELPATHS:
        for root in (inputs, output):
            (root / relpath).parent.mkdir(parents=True, exist_ok=True)
            (root / relpath).write_text(json.dumps({"text": relpath}) + "\n")
        stat = os.stat(inputs / relpath)
        marker = CompletionMarker(
            str(inputs / relpath), stat.st_size, stat.st_mtime, str(output / relpath), 1, 1, 0, {}, 0.0, "n", "w",
            fingerprint,
        )  # fmt: skip
        write_marker(marker_path(str(output), relpath), marker)


@pytest.fixture
def counted(monkeypatch):
    """Calls of os.stat and os.scandir by path (os.walk and os.path call them too)."""
    calls: dict[str, Counter[str]] = {"stat": Counter(), "scandir": Counter()}
    for name, real in (("stat", os.stat), ("scandir", os.scandir)):

        def counting(path=".", *args, _name=name, _real=real, **kwargs):
            calls[_name][os.fspath(path) if not isinstance(path, int) else path] += 1
            return _real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, counting)
    return calls


def test_a_no_op_resume_lists_the_markers_once_and_stats_each_input_once(tmp_path, monkeypatch, counted):
    inputs, output = tmp_path / "in", tmp_path / "out"
    _make_done(inputs, output)
    monkeypatch.setattr(driver_run, "_fingerprint_details", lambda config: DETAILS)
    config = RunConfig(
        inputs=(str(inputs),), output=str(output), classifiers=(DomainClassifier(device="cpu"),)
    )
    counted["stat"].clear()
    counted["scandir"].clear()

    result = driver_run.run_classification(config, client=object())  # all done: the client is never used

    assert (result.summary["files_skipped"], result.summary["files_processed"]) == (3, 0)
    assert {relpath: counted["stat"][str(inputs / relpath)] for relpath in RELPATHS} == dict.fromkeys(
        RELPATHS, 1
    )
    # Once by the sweep of stale temp files (it walks the whole output tree), once for the markers.
    assert counted["scandir"][str(output / MARKERS_DIRNAME)] == 2


def test_the_markers_a_start_removes_leave_its_one_listing_true(tmp_path, counted):
    """A changed input redone and an output lost: their markers go, and the same listing says they are pending."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    _make_done(inputs, output)
    (output / "sub/b.jsonl").unlink()  # its output deleted
    with open(inputs / "sub/c.jsonl", "a") as f:  # its input appended to
        f.write(json.dumps({"text": "more"}) + "\n")
    files = list_input_files([str(inputs)], str(output), "jsonl")
    counted["scandir"].clear()

    markers = MarkerListing(str(output))
    changed = find_changed_inputs(files, str(output), verify=False, markers=markers)
    assert [c.relpath for c in changed] == ["sub/c.jsonl"]
    forget_old_versions(str(output), changed, [], markers)
    assert forget_lost_outputs([f.relpath for f in files], str(output), "jsonl", markers) == ["sub/b.jsonl"]

    assert sorted(f.relpath for f in pending_files(files, str(output), markers)) == [
        "sub/b.jsonl",
        "sub/c.jsonl",
    ]
    assert markers.relpaths() == {"a.jsonl"}
    assert not os.path.exists(marker_path(str(output), "sub/b.jsonl"))
    assert not os.path.exists(marker_path(str(output), "sub/c.jsonl"))
    assert counted["scandir"][str(output / MARKERS_DIRNAME)] == 1
