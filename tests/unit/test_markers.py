"""Completion markers: path layout, atomic round trip, scanning."""

from __future__ import annotations

import json
import os

import pytest

from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import (
    CompletionMarker,
    iter_marker_relpaths,
    iter_markers,
    marker_path,
    read_marker,
    read_marker_files,
    write_marker,
)
from hpc_classify.io.writers import is_temp_file


def _marker(name: str = "a.jsonl", **changes) -> CompletionMarker:
    values = dict(
        input_path=f"/data/{name}",
        input_size=123,
        input_mtime=1700000000.5,
        output_path=f"/out/{name}",
        rows_in=10,
        rows_out=7,
        rows_bad=1,
        label_counts={"domain_pred": {"Games": 4, "Sports": 3}},
        seconds=1.25,
        node="node1",
        worker="tcp://10.0.0.1:1234",
        fingerprint="abc123",
        quarantine_path=None,
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
    )
    values.update(changes)
    return CompletionMarker(**values)


def test_marker_path_layout(tmp_path):
    assert marker_path(str(tmp_path), "sub/x.jsonl.gz") == str(
        tmp_path / "_markers" / "sub" / "x.jsonl.gz.done.json"
    )
    for bad in ("/abs.jsonl", "../up.jsonl", "a/../b.jsonl"):
        with pytest.raises(ValueError):
            marker_path(str(tmp_path), bad)


def test_round_trip_is_exact(tmp_path):
    marker = _marker(quarantine_path="/out/a.jsonl.bad.jsonl")
    path = marker_path(str(tmp_path), "deep/dir/a.jsonl")
    write_marker(path, marker)
    assert read_marker(path) == marker
    assert [n for n in os.listdir(os.path.dirname(path)) if is_temp_file(n)] == []


def test_from_dict_keeps_unknown_fields_and_requires_known(tmp_path):
    data = _marker().to_dict() | {"future_field": 1}
    assert CompletionMarker.from_dict(data).extra == {"future_field": 1}
    del data["rows_in"]
    with pytest.raises(ValueError, match="rows_in"):
        CompletionMarker.from_dict(data)


def test_read_marker_corrupt_or_missing(tmp_path):
    path = tmp_path / "x.done.json"
    path.write_text('{"input_path": ')
    with pytest.raises(InputFileError, match="corrupt completion marker"):
        read_marker(str(path))
    with pytest.raises(InputFileError, match="no such completion marker"):
        read_marker(str(tmp_path / "missing.done.json"))


def test_iter_markers_counts_all_and_ignores_temp_and_corrupt(tmp_path):
    out = str(tmp_path)
    relpaths = {f"shard{i % 7}/f{i:04d}.jsonl" for i in range(500)}
    for rel in relpaths:  # plain writes: fsync per file would make this test slow, and is tested above
        path = marker_path(out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(_marker(rel).to_dict(), f)
    markers_dir = tmp_path / "_markers"
    (markers_dir / ".shard0" / "x").mkdir(parents=True, exist_ok=True)
    (markers_dir / "shard1" / ".f9.jsonl.done.json.tmp-1-ab").write_text("{")  # killed writer
    (markers_dir / "broken.jsonl.done.json").write_text("{")  # corrupt: skipped with a warning
    assert set(iter_marker_relpaths(out)) - {"broken.jsonl"} == relpaths
    markers = list(iter_markers(out))
    assert len(markers) == 500
    assert {m.input_path for m in markers} == {f"/data/{r}" for r in relpaths}


def test_iter_markers_without_markers_dir(tmp_path):
    assert list(iter_markers(str(tmp_path))) == []


def test_marker_files_read_again_keep_what_the_directory_holds_in_the_order_found(tmp_path):
    """A run's end hands its one read of the markers on (schema step, then report): each marker it reads again
    is kept as it is now: rewritten in its place, corrupt among the unreadable, gone dropped."""
    out = str(tmp_path)
    for name in ("a", "b", "c", "d"):
        write_marker(marker_path(out, f"{name}.jsonl"), _marker(f"{name}.jsonl"))
    markers = read_marker_files(out, threads=2)
    order = list(markers.found)
    write_marker(marker_path(out, "b.jsonl"), _marker("b.jsonl", rows_out=3))
    (tmp_path / "_markers" / "c.jsonl.done.json").write_text("{")
    os.remove(marker_path(out, "d.jsonl"))

    assert [markers.read_again(out, f"{n}.jsonl") for n in "abcd"] == [
        _marker("a.jsonl"),
        _marker("b.jsonl", rows_out=3),
        None,
        None,
    ]
    afresh = read_marker_files(out)
    assert list(markers.found) == [r for r in order if r in afresh.found]
    assert markers.found == afresh.found
    assert {r: str(e) for r, e in markers.unreadable.items()} == {
        r: str(e) for r, e in afresh.unreadable.items()
    }
    assert list(markers.unreadable) == ["c.jsonl"] and markers.complete
