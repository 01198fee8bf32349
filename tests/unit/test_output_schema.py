"""driver/output_schema.py over real files and markers, no cluster: a kill in the middle of the rewrites leaves
every output whole (old or new) and the next pass finishes, markers included; a value the unified type cannot
hold exactly leaves its file as written; a pass over a unified directory writes nothing but its schema."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fake_markers import marker_of

from hpc_classify.driver import output_schema
from hpc_classify.driver.output_schema import before_classifying, unify_output_schemas
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io import writers
from hpc_classify.io.markers import marker_path, read_marker, write_marker

TABLES = {
    "a": {"id": [0, 1], "x": [1, 2], "maybe": pa.nulls(2)},
    "b": {"id": [2], "x": [2.5], "maybe": ["m"], "late_key": ["L"]},
    "c": {"id": [3, 4], "x": [3, 4], "maybe": pa.nulls(2), "meta": [{"k": 1}, {"k": 2}]},
    "d": {"id": [5], "x": [5], "maybe": pa.nulls(1), "meta": [{"k": 3, "extra": "e"}]},
}


def _outputs(out: Path, tables: dict[str, dict]) -> None:
    """Outputs and their markers as a run writes them (a `name.jsonl` input each)."""
    for name, columns in tables.items():
        path = out / f"{name}.parquet"
        pq.write_table(pa.table(columns), path)
        rows = len(columns["id"])
        marker = replace(
            marker_of(PlannedFile(f"/in/{name}.jsonl", f"{name}.jsonl", 1, 0.0)),
            output_path=str(path),
            rows_in=rows,
            rows_out=rows,
            output_size=path.stat().st_size,
        )
        write_marker(marker_path(str(out), f"{name}.jsonl"), marker)


def _rows(out: Path) -> list[dict]:
    frame = pd.read_parquet(out).sort_values("id")
    return [{k: (None if v is None or v != v else v) for k, v in r.items()} for r in frame.to_dict("records")]


def _marker_sizes_match(out: Path) -> bool:
    return all(
        read_marker(marker_path(str(out), f"{name}.jsonl")).output_size
        == (out / f"{name}.parquet").stat().st_size
        for name in TABLES
    )


EXPECTED = [
    {"id": 0, "x": 1.0, "maybe": None, "late_key": None, "meta": None},
    {"id": 1, "x": 2.0, "maybe": None, "late_key": None, "meta": None},
    {"id": 2, "x": 2.5, "maybe": "m", "late_key": "L", "meta": None},
    {"id": 3, "x": 3.0, "maybe": None, "late_key": None, "meta": {"k": 1, "extra": None}},
    {"id": 4, "x": 4.0, "maybe": None, "late_key": None, "meta": {"k": 2, "extra": None}},
    {"id": 5, "x": 5.0, "maybe": None, "late_key": None, "meta": {"k": 3, "extra": "e"}},
]


def test_a_kill_during_the_rewrites_leaves_whole_files_and_the_next_pass_finishes(tmp_path, monkeypatch):
    _outputs(tmp_path, TABLES)
    real_replace, renames = os.replace, []

    def replace_but_the_second_output(src, dst):
        if str(dst).endswith(".parquet"):
            renames.append(dst)
            if len(renames) == 2:
                raise KeyboardInterrupt  # the kill, at the rename of the second rewritten output
        real_replace(src, dst)

    monkeypatch.setattr(writers.os, "replace", replace_but_the_second_output)
    with pytest.raises(KeyboardInterrupt):
        unify_output_schemas(str(tmp_path))
    monkeypatch.setattr(writers.os, "replace", real_replace)

    assert len(renames) == 2
    assert not [p for p in tmp_path.iterdir() if writers.is_temp_file(p.name)]
    assert not (tmp_path / "_common_metadata").exists()
    for name in TABLES:  # each whole: the first rewritten, the others as written
        assert pq.read_table(tmp_path / f"{name}.parquet").num_rows == len(TABLES[name]["id"])
    first = Path(renames[0])  # its marker followed it, before the kill
    assert read_marker(marker_path(str(tmp_path), f"{first.stem}.jsonl")).output_size == first.stat().st_size

    outcome = unify_output_schemas(str(tmp_path))

    assert (outcome.files, outcome.rewritten, outcome.clashes, outcome.stopped) == (4, 3, [], False)
    assert outcome.markers_updated == 3  # the 3 rewritten now: the kill left no stale one
    assert _rows(tmp_path) == EXPECTED
    schema = pq.read_schema(tmp_path / "_common_metadata")
    assert schema.names == ["id", "x", "maybe", "late_key", "meta"]
    assert all(pq.read_schema(tmp_path / f"{n}.parquet").equals(schema) for n in TABLES)
    assert _marker_sizes_match(tmp_path)


def test_a_unified_directory_is_only_read(tmp_path, monkeypatch):
    _outputs(tmp_path, TABLES)
    unify_output_schemas(str(tmp_path))
    before = {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.parquet")}
    written = []
    monkeypatch.setattr(output_schema, "conform_file", lambda path, schema: written.append(path))

    outcome = unify_output_schemas(str(tmp_path))

    assert (outcome.rewritten, outcome.markers_updated, written) == (0, 0, [])
    assert {p.name: p.stat().st_mtime_ns for p in tmp_path.glob("*.parquet")} == before
    assert outcome.common_metadata == str(tmp_path / "_common_metadata")


def test_each_output_is_stated_once_a_pass_even_when_rewritten(tmp_path, monkeypatch):
    """A stat is a metadata request on Lustre: one per output, the size to copy (a marker of an earlier release
    records none) and the size recorded after the rewrite (the bytes written) sharing it."""
    _outputs(tmp_path, TABLES)
    for name in TABLES:
        where = marker_path(str(tmp_path), f"{name}.jsonl")
        write_marker(where, replace(read_marker(where), output_size=None))
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        if str(path).startswith(str(tmp_path)) and str(path).endswith(".parquet"):  # only this test's outputs
            stats.append(os.path.basename(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    first = unify_output_schemas(str(tmp_path))
    first_stats, stats[:] = sorted(stats), []
    again = unify_output_schemas(str(tmp_path))
    monkeypatch.undo()

    assert (first.rewritten, first.markers_updated, again.rewritten, again.markers_updated) == (4, 4, 0, 0)
    assert first_stats == sorted(stats) == [f"{name}.parquet" for name in TABLES]
    assert _marker_sizes_match(tmp_path)


def test_an_int_a_double_cannot_hold_exactly_leaves_its_file_as_written(tmp_path):
    big = 2**53 + 1
    _outputs(tmp_path, {"a": {"id": [0], "x": [big]}, "b": {"id": [1], "x": [0.5]}})
    written = (tmp_path / "a.parquet").read_bytes()

    outcome = unify_output_schemas(str(tmp_path))

    (clash,) = outcome.clashes
    assert (clash.column, clash.files_by_type) == ("x", {"int64": ["a.parquet"]})
    assert clash.reason.startswith("values of a.parquet do not fit double exactly: ")
    assert (tmp_path / "a.parquet").read_bytes() == written
    assert pq.read_table(tmp_path / "a.parquet")["x"].to_pylist() == [big]
    assert outcome.common_metadata is None and not (tmp_path / "_common_metadata").exists()


def test_a_run_about_to_write_parquet_removes_the_schema_it_may_outdate(tmp_path):
    _outputs(tmp_path, TABLES)
    unify_output_schemas(str(tmp_path))

    before_classifying("jsonl", str(tmp_path))
    assert (tmp_path / "_common_metadata").exists()
    before_classifying("parquet", str(tmp_path))
    assert not (tmp_path / "_common_metadata").exists()


def test_a_run_that_finished_within_a_stops_grace_leaves_the_schema_to_the_next(tmp_path, caplog):
    """A stop signal's last seconds go to the summary and the requeue, not to reading every footer."""
    from fake_dispatcher import run_context

    from hpc_classify.driver.output_schema import after_run
    from hpc_classify.stop_request import StopRequest

    _outputs(tmp_path, TABLES)
    before = {name: (tmp_path / f"{name}.parquet").read_bytes() for name in TABLES}
    stop = StopRequest(())
    stop.request("SIGUSR1")

    outcome, _ = after_run(run_context(tmp_path, stop=stop, output_format="parquet"), 0)

    assert outcome == {"skipped": "SIGUSR1"}
    assert {name: (tmp_path / f"{name}.parquet").read_bytes() for name in TABLES} == before
    assert not (tmp_path / "_common_metadata").exists()
    assert f"`hpc-classify unify-schema --output {tmp_path}`" in caplog.text
    # Each file lacks a column another has: every one is rewritten by the next run.
    assert after_run(run_context(tmp_path, output_format="parquet"), 0)[0]["rewritten"] == len(TABLES)


def test_more_to_rewrite_than_a_runs_end_does_is_left_to_the_command(tmp_path, monkeypatch, caplog):
    """A run's end does not hold the job's nodes for a serial copy of the whole output."""
    from fake_dispatcher import run_context

    from hpc_classify.driver.output_schema import after_run

    _outputs(tmp_path, TABLES)
    before = {name: (tmp_path / f"{name}.parquet").read_bytes() for name in TABLES}
    total = sum(len(data) for data in before.values())  # every file lacks a column another has
    monkeypatch.setattr(output_schema, "RUN_REWRITE_BYTES", total - 1)

    outcome, _ = after_run(run_context(tmp_path, output_format="parquet"), 0)

    assert (outcome["rewritten"], outcome["deferred_bytes"], outcome["common_metadata"]) == (0, total, None)
    assert {name: (tmp_path / f"{name}.parquet").read_bytes() for name in TABLES} == before
    assert f"`hpc-classify unify-schema --output {tmp_path}`" in caplog.text
    monkeypatch.setattr(output_schema, "RUN_REWRITE_BYTES", total)
    assert after_run(run_context(tmp_path, output_format="parquet"), 0)[0]["rewritten"] == len(TABLES)
    assert (tmp_path / "_common_metadata").exists()


def _snapshot(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize(
    "tables",
    [
        TABLES,
        {  # a value of a.parquet does not fit double: the clash found mid-rewrite, the others rewritten
            "a": {"id": [0], "x": [2**53 + 1]},
            "b": {"id": [1], "x": [0.5]},
            "c": {"id": [2], "x": [3]},
            "d": {"id": [3], "x": [4], "y": ["d"]},
        },
    ],
    ids=["unified", "lossy"],
)
def test_threads_give_the_result_of_one(tmp_path, tables):
    """Same outcome, same bytes of every output, marker and _common_metadata, whatever the threads."""
    results = []
    for threads in (1, 4):
        out = tmp_path / "out"  # the same path each time: markers hold it
        out.mkdir()
        _outputs(out, tables)
        outcome = unify_output_schemas(str(out), threads=threads, read_threads=threads)
        results.append((replace(outcome, seconds=0), _snapshot(out)))
        shutil.rmtree(out)
    assert results[0] == results[1]
    outcome, files = results[0]
    assert (outcome.rewritten, [c.column for c in outcome.clashes]) == (
        (4, []) if tables is TABLES else (3, ["x"])
    )
    assert ("_common_metadata" in files) == (tables is TABLES)


def test_footers_read_out_of_order_keep_the_first_files_column_order(tmp_path, monkeypatch):
    """The unified columns follow the first file's order even when its footer is the last read."""
    tables = {"a": {"z": [0], "id": [0]}, "b": {"id": [1], "z": [1]}, "c": {"id": [2], "z": [2]}}
    _outputs(tmp_path, tables)
    real_read_schema, others_read, lock, read = pq.read_schema, threading.Event(), threading.Lock(), []

    def read_a_last(path, *args, **kwargs):
        if str(path).endswith("a.parquet"):
            assert others_read.wait(timeout=30), "the other footers were not read alongside"
        schema = real_read_schema(path, *args, **kwargs)
        with lock:
            read.append(Path(path).name)
            if len(read) == len(tables) - 1:
                others_read.set()
        return schema

    monkeypatch.setattr(pq, "read_schema", read_a_last)
    outcome = unify_output_schemas(str(tmp_path), read_threads=3)

    assert read[-1] == "a.parquet"
    assert pq.read_schema(tmp_path / "_common_metadata").names == ["z", "id"]
    assert (outcome.rewritten, outcome.differing) == (2, 2)


def test_a_stop_lets_the_rewrites_in_flight_finish_and_starts_none(tmp_path, monkeypatch):
    _outputs(tmp_path, TABLES)
    before = _snapshot(tmp_path)
    both_started, stop = threading.Barrier(2, timeout=30), threading.Event()
    real_conform = output_schema.conform_file

    def conform_then_stop(path, schema, **kwargs):
        both_started.wait()  # two rewrites in flight when the stop comes
        stop.set()
        return real_conform(path, schema, **kwargs)

    monkeypatch.setattr(output_schema, "conform_file", conform_then_stop)
    outcome = unify_output_schemas(str(tmp_path), stopped=stop.is_set, threads=2)

    assert (outcome.rewritten, outcome.differing, outcome.markers_updated, outcome.stopped) == (2, 4, 2, True)
    assert outcome.common_metadata is None and not (tmp_path / "_common_metadata").exists()
    after = _snapshot(tmp_path)
    assert [name for name in before if before[name] != after[name]] == [
        "_markers/a.jsonl.done.json",
        "_markers/b.jsonl.done.json",
        "a.parquet",
        "b.parquet",
    ]
    assert _marker_sizes_match(tmp_path)
    monkeypatch.setattr(output_schema, "conform_file", real_conform)

    outcome = unify_output_schemas(str(tmp_path), threads=2)

    assert (outcome.rewritten, outcome.markers_updated, outcome.stopped) == (2, 2, False)
    assert _rows(tmp_path) == EXPECTED
    assert _marker_sizes_match(tmp_path)
