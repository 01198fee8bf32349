"""The one-schema step's safety (driver/output_schema.py, driver/schema_outputs.py): a stop during the reads
reads no more and writes nothing; a process whose lock was taken over, or whose run no longer owns the
directory, renames nothing; a marker another run rewrote meanwhile is left as it is; `_common_metadata` is
written only over outputs each checked, and removed whenever the run start removes outputs; any error of the
step is the step's, not the run's."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_dispatcher import run_context

from hpc_classify.cli.main import main
from hpc_classify.driver import output_schema
from hpc_classify.driver.fingerprint import discard_run_state
from hpc_classify.driver.lock import LOCK_LOST
from hpc_classify.driver.output_schema import after_run, unify_output_schemas
from hpc_classify.driver.stale_outputs import remove_output_of
from hpc_classify.io import markers as markers_module
from hpc_classify.io.markers import marker_path, read_marker, read_marker_files, write_marker
from hpc_classify.stop_request import StopRequest
from tests.unit.test_output_schema import TABLES, _outputs, _snapshot


def test_a_stop_during_the_reads_reads_no_more_and_writes_nothing(tmp_path, monkeypatch):
    """Reading 100,000 markers and footers takes minutes on Lustre: a SIGTERM leaves ~30 s for the summary."""
    _outputs(tmp_path, TABLES)
    before = _snapshot(tmp_path)
    real_read_marker, real_read_schema, reads = markers_module.read_marker, pq.read_schema, []
    monkeypatch.setattr(markers_module, "read_marker", lambda p: reads.append(p) or real_read_marker(p))
    monkeypatch.setattr(pq, "read_schema", lambda p, **k: reads.append(p) or real_read_schema(p, **k))

    outcome = unify_output_schemas(str(tmp_path), stopped=lambda: len(reads) >= 2, read_threads=1)

    assert (len(reads), outcome.stopped, outcome.rewritten, outcome.markers_updated) == (2, True, 0, 0)
    assert all(str(p).endswith(".done.json") for p in reads)  # two markers read, no footer
    assert _snapshot(tmp_path) == before


@pytest.mark.parametrize(
    ("reads_before_the_stop", "what_was_done"),
    [
        (2, "while reading the completion markers (2 Parquet output(s) found so far): nothing rewritten"),
        (6, "while reading the outputs' schemas (2 of 4 read): nothing rewritten"),
    ],
)
def test_a_stop_during_the_reads_says_what_was_done_and_what_is_left(
    tmp_path, monkeypatch, caplog, reads_before_the_stop, what_was_done
):
    """Not "0 of 0 rewritten": which reads the stop cut short, how far they got, and the command that finishes."""
    _outputs(tmp_path, TABLES)
    real_read_marker, real_read_schema, reads = markers_module.read_marker, pq.read_schema, []
    monkeypatch.setattr(markers_module, "read_marker", lambda p: reads.append(p) or real_read_marker(p))
    monkeypatch.setattr(pq, "read_schema", lambda p, **k: reads.append(p) or real_read_schema(p, **k))

    with caplog.at_level("WARNING", logger="hpc_classify.driver.output_schema"):
        outcome = unify_output_schemas(
            str(tmp_path), stopped=lambda: len(reads) >= reads_before_the_stop, read_threads=1
        )

    assert (len(reads), outcome.stopped, outcome.rewritten) == (reads_before_the_stop, True, 0)
    assert [r.getMessage() for r in caplog.records] == [
        f"stopped {what_was_done}, every file whole; no _common_metadata written; run "
        f"`hpc-classify unify-schema --output {tmp_path}` (or the next run) to finish"
    ]


def _stop_at_the_first_rewrite(monkeypatch, act):
    """conform_file, with `act()` done when the first rewrite starts (the rewrites are then in flight)."""
    real_conform = output_schema.conform_file

    def conform(path, schema, **kwargs):
        act()
        return real_conform(path, schema, **kwargs)

    monkeypatch.setattr(output_schema, "conform_file", conform)


def test_a_lock_taken_over_during_the_rewrites_renames_nothing_and_no_summary(tmp_path, monkeypatch):
    _outputs(tmp_path, TABLES)
    before = _snapshot(tmp_path)
    stop = StopRequest(())
    _stop_at_the_first_rewrite(monkeypatch, lambda: stop.abandon_now(LOCK_LOST))

    outcome, _ = after_run(run_context(tmp_path, stop=stop, output_format="parquet"), 0)

    assert outcome.keys() == {"error"} and "was taken over by another run" in outcome["error"]
    assert _snapshot(tmp_path) == before  # every output and marker the new owner's to write


def test_a_directory_another_run_owns_now_is_not_written(tmp_path, monkeypatch):
    _outputs(tmp_path, TABLES)
    (tmp_path / "_run.json").write_text(json.dumps({"fingerprint": "f"}))
    before = _snapshot(tmp_path)
    newer = json.dumps({"fingerprint": "newer"})
    _stop_at_the_first_rewrite(monkeypatch, lambda: (tmp_path / "_run.json").write_text(newer))

    outcome, _ = after_run(run_context(tmp_path, output_format="parquet"), 0)

    assert "a newer run with other settings owns" in outcome["error"]
    assert {k: v for k, v in _snapshot(tmp_path).items() if k != "_run.json"} == {
        k: v for k, v in before.items() if k != "_run.json"
    }


def test_a_marker_rewritten_since_it_was_read_is_left_as_it_is(tmp_path, monkeypatch):
    _outputs(tmp_path, TABLES)
    where = marker_path(str(tmp_path), "a.jsonl")
    redone = read_marker(where)
    redone.fingerprint, redone.input_size = "newer", 2

    def a_newer_run_redoes_a():
        if not done:
            done.append(write_marker(where, redone))

    done: list[None] = []

    _stop_at_the_first_rewrite(monkeypatch, a_newer_run_redoes_a)
    outcome = unify_output_schemas(str(tmp_path))

    assert read_marker(where) == redone  # not the plan's marker with a new output_size
    assert (outcome.rewritten, outcome.markers_updated) == (4, 3)
    # What the report is handed: the markers as the directory holds them now, the newer run's a included.
    assert outcome.markers.found == read_marker_files(str(tmp_path)).found


def test_unreadable_markers_and_parquet_files_of_no_marker_leave_no_common_metadata(tmp_path, capsys):
    _outputs(tmp_path, TABLES)
    (tmp_path / "_markers" / "d.jsonl.done.json").write_text("{not json")
    pq.write_table(pa.table({"id": [9]}), tmp_path / "stray.parquet")
    pq.write_table(pa.table({"id": [9]}), tmp_path / "_hidden.parquet")  # no reader reads it
    (tmp_path / "sub" / "deeper").mkdir(
        parents=True
    )  # directories holding no output: readers still read them
    pq.write_table(pa.table({"id": [9]}), tmp_path / "sub" / "deeper" / "left.parquet")
    (tmp_path / "_pieces").mkdir()
    pq.write_table(pa.table({"id": [9]}), tmp_path / "_pieces" / "p.parquet")  # ours, and no reader's

    assert main(["unify-schema", "--output", str(tmp_path)]) == 1

    out = capsys.readouterr().out
    assert "unreadable: _markers/d.jsonl.done.json: " in out
    no_marker = "no completion marker: not an output of a run here"
    assert f"unreadable: stray.parquet: {no_marker}\n" in out
    assert f"unreadable: d.parquet: {no_marker}\n" in out  # its marker unreadable: none names it
    assert f"unreadable: {os.path.join('sub', 'deeper', 'left.parquet')}: {no_marker}\n" in out
    assert out.count("unreadable: ") == 4
    assert out.endswith("3 Parquet output(s), 3 rewritten (never for a clash); no _common_metadata written\n")
    assert not (tmp_path / "_common_metadata").exists()


def test_a_directory_that_cannot_be_listed_is_named_and_leaves_no_common_metadata(
    tmp_path, monkeypatch, capsys
):
    """A user's folder under OUT with no read permission (EACCES; EIO or ESTALE on Lustre): what it holds is
    unknown, so no one schema is claimed; named, never a traceback."""
    _outputs(tmp_path, TABLES)
    (tmp_path / "private").mkdir()
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(
            tmp_path / "private"
        ):  # only this test's directory (scandir is process-wide)
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)

    assert main(["unify-schema", "--output", str(tmp_path)]) == 1

    out = capsys.readouterr().out
    assert "unreadable: private/: cannot list this directory (EACCES: Permission denied)\n" in out
    assert out.count("unreadable: ") == 1
    assert not (tmp_path / "_common_metadata").exists()


def test_a_stop_during_the_listing_says_so(tmp_path, monkeypatch, caplog):
    _outputs(tmp_path, TABLES)
    listed = []
    real_scandir = os.scandir
    monkeypatch.setattr(os, "scandir", lambda path=".": listed.append(os.fspath(path)) or real_scandir(path))

    with caplog.at_level("WARNING", logger="hpc_classify.driver.output_schema"):
        outcome = unify_output_schemas(  # stopped once the listing of OUT itself (not _markers/) has begun
            str(tmp_path), stopped=lambda: str(tmp_path) in listed, read_threads=1
        )

    assert (outcome.stopped, outcome.footers_read, outcome.rewritten) == (True, 0, 0)
    assert outcome.to_summary()["stopped_while"] == "listing"  # _summary.json says it as the log does
    assert [r.getMessage() for r in caplog.records] == [
        "stopped while listing the output directory for Parquet files no marker names: nothing rewritten, every "
        f"file whole; no _common_metadata written; run `hpc-classify unify-schema --output {tmp_path}` (or the "
        "next run) to finish"
    ]


def test_any_error_of_the_step_is_logged_and_recorded_not_raised(tmp_path, monkeypatch, caplog):
    _outputs(tmp_path, TABLES)

    def broken(*args, **kwargs):
        raise pa.ArrowInvalid("a footer pyarrow chokes on")

    monkeypatch.setattr(output_schema, "plan_schema", broken)
    assert after_run(run_context(tmp_path, output_format="parquet"), 0) == (
        {"error": "a footer pyarrow chokes on"},
        None,  # no markers handed on to the report: it reads them itself
    )
    assert "ArrowInvalid: a footer pyarrow chokes on; HINT: rerun to finish" in caplog.text
    assert "Traceback" in caplog.text
    monkeypatch.setattr(
        output_schema, "plan_schema", lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)
    )
    with pytest.raises(KeyboardInterrupt):
        after_run(run_context(tmp_path, output_format="parquet"), 0)


@pytest.mark.parametrize("removal", ["changed input", "--overwrite"])
def test_the_run_starts_removal_of_outputs_removes_common_metadata_first(tmp_path, removal):
    _outputs(tmp_path, TABLES)
    assert unify_output_schemas(str(tmp_path)).common_metadata is not None

    if removal == "changed input":
        assert remove_output_of(str(tmp_path), "a.jsonl", "parquet") == ["a.parquet"]
    else:
        discard_run_state(str(tmp_path), "parquet")
        assert not list(tmp_path.glob("*.parquet"))
    assert not (tmp_path / "_common_metadata").exists()


def test_a_removal_that_finds_no_output_keeps_common_metadata(tmp_path):
    _outputs(tmp_path, TABLES)
    unify_output_schemas(str(tmp_path))
    (tmp_path / "a.parquet").unlink()

    assert remove_output_of(str(tmp_path), "a.jsonl", "parquet") == []
    assert (tmp_path / "_common_metadata").exists()


@pytest.mark.parametrize("stop", ["during the step", "before it, every file finished", None])
def test_any_stop_counts_for_the_report_not_for_the_runs_outcome(tmp_path, monkeypatch, stop):
    """The report reads every marker: a stop signal leaves no time for it, whether it came during the schema
    step or before it, to a run whose files then all finished within its grace (exit 0, not interrupted)."""
    from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
    from hpc_classify.config import RunConfig
    from hpc_classify.driver import run as driver_run
    from hpc_classify.driver.fingerprint import check_or_store_fingerprint
    from tests.unit.test_legacy_outputs import DETAILS, _done

    inputs, output = tmp_path / "in", tmp_path / "out"
    output.mkdir()
    _done(inputs, output, "a.jsonl", 1, check_or_store_fingerprint(str(output), DETAILS, overwrite=False))
    monkeypatch.setattr(driver_run, "_fingerprint_details", lambda config: DETAILS)
    request = StopRequest(())
    if stop == "before it, every file finished":
        request.request("SIGUSR1")

    def step(context, exit_code):
        if stop == "during the step":
            context.stop.request("SIGTERM")
        return {}, None

    monkeypatch.setattr(driver_run, "after_run", step)
    told = []
    config = RunConfig(
        inputs=(str(inputs),), output=str(output), classifiers=(DomainClassifier(device="cpu"),)
    )
    hooks = driver_run.RunHooks(after_summary=lambda out, stopped_by, markers: told.append(stopped_by))

    # all done: no client used
    result = driver_run.run_classification(config, client=object(), hooks=hooks, stop=request)

    assert (result.exit_code, result.summary["interrupted"]) == (0, False)
    assert told == [{"during the step": "SIGTERM", "before it, every file finished": "SIGUSR1"}.get(stop)]


def test_a_stop_during_the_size_checks_checks_no_more_and_writes_no_schema(tmp_path, monkeypatch):
    """After the footers, each output's size is a stat (a metadata request on Lustre): a stop there ends them
    and claims no schema, as a stop during the reads does."""
    _outputs(tmp_path, TABLES)
    assert unify_output_schemas(str(tmp_path)).common_metadata is not None  # one schema: nothing to rewrite
    (tmp_path / "_common_metadata").unlink()
    for name in TABLES:  # sizes a kill left stale: each would be set
        path = marker_path(str(tmp_path), f"{name}.jsonl")
        write_marker(path, replace(read_marker(path), output_size=1))
    real_record_size, checked = output_schema.record_size, []
    monkeypatch.setattr(output_schema, "record_size", lambda *a: checked.append(a[3]) or real_record_size(*a))

    outcome = unify_output_schemas(str(tmp_path), stopped=lambda: bool(checked), read_threads=1)

    assert (len(checked), outcome.stopped, outcome.common_metadata) == (1, True, None)
    assert not (tmp_path / "_common_metadata").exists()
