"""A directory an earlier release (same version, same fingerprint) started, resumed by this one
(driver/legacy_outputs.py): quarantines of finished files renamed out of `OUT/*.jsonl` globs, outputs of no row
removed and their markers naming none; a directory without such leftovers reads no marker for it."""

from __future__ import annotations

import glob
import json
import os

import pytest

from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.config import RunConfig
from hpc_classify.driver import legacy_outputs
from hpc_classify.driver import run as driver_run
from hpc_classify.driver.fingerprint import LAYOUT, LAYOUT_KEY, check_or_store_fingerprint
from hpc_classify.driver.legacy_outputs import migrate_legacy_outputs
from hpc_classify.driver.plan import PlannedFile, remove_stale_temp_files, write_plan
from hpc_classify.driver.status import compute_status, tally_markers
from hpc_classify.io.markers import CompletionMarker, MarkerListing, marker_path, read_marker, write_marker

DETAILS = {"test": "legacy outputs"}  # the run's fingerprint details: no model needed


def _done(inputs, output, relpath: str, rows: int, fingerprint: str, quarantine: str | None = None) -> None:
    """`relpath` as the earlier release left it finished: an output (0 bytes for no row) and its marker."""
    for root in (inputs, output):
        (root / relpath).parent.mkdir(parents=True, exist_ok=True)
    (inputs / relpath).write_text(json.dumps({"text": relpath}) + "\n")
    (output / relpath).write_text('{"text": "x", "domain_pred": "News"}\n' * rows)
    stat = os.stat(inputs / relpath)
    marker = CompletionMarker(
        str(inputs / relpath), stat.st_size, stat.st_mtime, str(output / relpath), 1, rows, 0, {}, 0.0, "n", "w",
        fingerprint, quarantine_path=quarantine,
    )  # fmt: skip
    write_marker(marker_path(str(output), relpath), marker)


def _earlier_release(output) -> str:
    """`output`'s `_run.json` as the earlier release wrote it: without the layout note."""
    fingerprint = check_or_store_fingerprint(str(output), DETAILS, overwrite=False)
    run_file = output / "_run.json"
    data = json.loads(run_file.read_text())
    del data[LAYOUT_KEY]
    run_file.write_text(json.dumps(data))
    return fingerprint


def test_a_resume_migrates_what_the_earlier_release_left(tmp_path, monkeypatch, caplog):
    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    fingerprint = _earlier_release(output)
    legacy_quarantine = output / "sub" / "_a.jsonl.quarantine.jsonl"
    _done(inputs, output, "sub/a.jsonl", 1, fingerprint, quarantine=str(legacy_quarantine))
    legacy_quarantine.write_text('{"line": 2, "reason": "invalid JSON", "raw": "{"}\n')
    _done(inputs, output, "empty.jsonl", 0, fingerprint)
    assert os.path.getsize(output / "empty.jsonl") == 0
    monkeypatch.setattr(driver_run, "_fingerprint_details", lambda config: DETAILS)
    config = RunConfig(
        inputs=(str(inputs),), output=str(output), classifiers=(DomainClassifier(device="cpu"),)
    )

    with caplog.at_level("INFO", logger="hpc_classify.driver.legacy_outputs"):
        result = driver_run.run_classification(config, client=object())  # all done: the client is never used

    assert (result.summary["files_skipped"], result.summary["files_processed"]) == (2, 0)
    # Nothing but outputs for readers of the directory: no bad rows as documents, no 0-byte JSONL.
    assert sorted(glob.glob(str(output / "**" / "*.jsonl"), recursive=True)) == [
        str(output / "sub" / "a.jsonl")
    ]
    new_quarantine = output / "sub" / "_a.jsonl.quarantine"
    assert new_quarantine.read_text() == '{"line": 2, "reason": "invalid JSON", "raw": "{"}\n'
    assert read_marker(marker_path(str(output), "sub/a.jsonl")).quarantine_path == str(new_quarantine)
    empty = read_marker(marker_path(str(output), "empty.jsonl"))
    assert (empty.output_path, empty.output_size, empty.rows_out, empty.fingerprint) == (
        "",
        0,
        0,
        fingerprint,
    )
    assert json.loads((output / "_run.json").read_text())[LAYOUT_KEY] == LAYOUT
    assert [r.getMessage() for r in caplog.records] == [
        f"{output}: migrated what an earlier release left: 1 quarantine(s) renamed from *.quarantine.jsonl to "
        "*.quarantine, 1 output file(s) of no row removed (their markers now name no output)"
    ]

    # The next resume: the note is there, so no marker is read for the migration.
    monkeypatch.setattr(legacy_outputs, "read_marker", lambda path: pytest.fail(f"read {path}"))
    result = driver_run.run_classification(config, client=object())
    assert (result.summary["files_skipped"], result.summary["files_processed"]) == (2, 0)


def test_a_directory_this_release_started_reads_no_marker(tmp_path, monkeypatch):
    """Its `_run.json` has the layout note from the first run: a resume of 100,000 files reads no marker here."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    fingerprint = check_or_store_fingerprint(str(output), DETAILS, overwrite=False)
    _done(inputs, output, "a.jsonl", 1, fingerprint)
    monkeypatch.setattr(legacy_outputs, "read_marker", lambda path: pytest.fail(f"read {path}"))
    found: list[str] = []
    remove_stale_temp_files(str(output), found)

    assert found == []
    assert migrate_legacy_outputs(str(output), fingerprint, "jsonl", MarkerListing(str(output)), found) == (
        0,
        0,
    )


def test_only_finished_files_quarantines_move_and_a_killed_rename_is_finished(tmp_path):
    """A file without a marker keeps its old quarantine (its next attempt removes it); a migration killed after
    the marker named the new quarantine and before the rename is finished by the next one."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    fingerprint = check_or_store_fingerprint(str(output), DETAILS, overwrite=False)
    new_quarantine = output / "_a.jsonl.quarantine"
    _done(inputs, output, "a.jsonl", 1, fingerprint, quarantine=str(new_quarantine))
    (output / "_a.jsonl.quarantine.jsonl").write_text("a's bad rows\n")
    (output / "_pending.jsonl.quarantine.jsonl").write_text("pending's bad rows\n")
    found: list[str] = []
    remove_stale_temp_files(str(output), found)
    assert sorted(found) == ["_a.jsonl.quarantine.jsonl", "_pending.jsonl.quarantine.jsonl"]

    assert migrate_legacy_outputs(str(output), fingerprint, "jsonl", MarkerListing(str(output)), found) == (
        1,
        0,
    )

    assert sorted(os.listdir(output)) == [
        "_a.jsonl.quarantine", "_markers", "_pending.jsonl.quarantine.jsonl", "_run.json", "a.jsonl",
    ]  # fmt: skip
    assert new_quarantine.read_text() == "a's bad rows\n"


def test_an_old_quarantine_the_marker_does_not_count_is_removed_not_renamed(tmp_path):
    """A finished file whose marker records no quarantine (its last attempt had no bad row), or the new one
    already there: the old-named file is an earlier attempt's, and must not become the quarantine it counts."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    fingerprint = check_or_store_fingerprint(str(output), DETAILS, overwrite=False)
    _done(inputs, output, "clean.jsonl", 1, fingerprint)  # no quarantine recorded
    (output / "_clean.jsonl.quarantine.jsonl").write_text("an earlier attempt's bad rows\n")
    _done(inputs, output, "both.jsonl", 1, fingerprint, quarantine=str(output / "_both.jsonl.quarantine"))
    (output / "_both.jsonl.quarantine").write_text("the counted bad rows\n")
    (output / "_both.jsonl.quarantine.jsonl").write_text("an earlier attempt's bad rows\n")
    found: list[str] = []
    remove_stale_temp_files(str(output), found)

    migrate_legacy_outputs(str(output), fingerprint, "jsonl", MarkerListing(str(output)), found)

    assert sorted(os.listdir(output)) == [
        "_both.jsonl.quarantine",
        "_markers",
        "_run.json",
        "both.jsonl",
        "clean.jsonl",
    ]
    assert (output / "_both.jsonl.quarantine").read_text() == "the counted bad rows\n"
    assert read_marker(marker_path(str(output), "clean.jsonl")).quarantine_path is None


def test_a_zero_row_output_the_migration_removes_takes_common_metadata_with_it(tmp_path):
    """`_common_metadata` describes the outputs: once one is removed it no longer does, so it goes first."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    fingerprint = _earlier_release(output)
    _done(inputs, output, "kept.jsonl", 1, fingerprint)
    _done(inputs, output, "empty.jsonl", 0, fingerprint)
    _done(inputs, output, "sub/empty.jsonl", 0, fingerprint)
    (output / "_common_metadata").write_bytes(b"PAR1 schema only")

    assert migrate_legacy_outputs(str(output), fingerprint, "jsonl", MarkerListing(str(output)), []) == (0, 2)

    assert sorted(os.listdir(output)) == ["_markers", "_run.json", "kept.jsonl", "sub"]
    assert os.listdir(output / "sub") == []


def _tree(root) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_status_reads_an_earlier_releases_directory_as_its_migration_leaves_it(tmp_path, monkeypatch):
    """`status` writes nothing, yet counts what the next run will find: a file of no row whose 0-byte output
    the user deleted is done (its migrated marker names no output), not an output missing to redo."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    fingerprint = _earlier_release(output)
    legacy_quarantine = output / "_a.jsonl.quarantine.jsonl"
    _done(inputs, output, "a.jsonl", 1, fingerprint, quarantine=str(legacy_quarantine))
    legacy_quarantine.write_text('{"line": 2, "reason": "invalid JSON", "raw": "{"}\n')
    _done(inputs, output, "empty.jsonl", 0, fingerprint)
    _done(inputs, output, "deleted.jsonl", 0, fingerprint)
    (output / "deleted.jsonl").unlink()  # `find OUT -empty -delete`: the old release's 0-byte outputs
    _done(inputs, output, "gone/outside.jsonl", 0, fingerprint)  # of no planned input
    (inputs / "gone" / "outside.jsonl").unlink()
    planned = [
        PlannedFile(str(inputs / r), r, os.path.getsize(inputs / r))
        for r in ("a.jsonl", "empty.jsonl", "deleted.jsonl")
    ]
    write_plan(str(output), [str(inputs)], planned)
    before = _tree(output)

    status = compute_status(str(output))

    assert _tree(output) == before  # read-only
    counts = ("files_done", "files_remaining", "files_output_missing", "files_outside_plan")
    assert [status[key] for key in counts] == [3, 0, 0, 1]
    assert status["outside_plan"] == [
        {"relpath": "gone/outside.jsonl", "output": None, "input_path": str(inputs / "gone" / "outside.jsonl"),
         "input_exists": False}
    ]  # fmt: skip
    tally = tally_markers(str(output), {f.relpath: f for f in planned}, verify_inputs=False)
    assert dict(tally.done_markers)["a.jsonl"].quarantine_path == str(output / "_a.jsonl.quarantine")

    # The next run finds the same: nothing to classify, the same counts.
    monkeypatch.setattr(driver_run, "_fingerprint_details", lambda config: DETAILS)
    config = RunConfig(
        inputs=(str(inputs),), output=str(output), classifiers=(DomainClassifier(device="cpu"),)
    )
    result = driver_run.run_classification(config, client=object())  # all done: the client is never used
    assert (result.summary["files_skipped"], result.summary["files_processed"]) == (3, 0)
    after = compute_status(str(output))
    assert {k: v for k, v in after.items() if k != "last_run"} == {
        k: v for k, v in status.items() if k != "last_run"
    }
