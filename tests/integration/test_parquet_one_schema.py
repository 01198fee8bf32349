"""A JSONL-to-Parquet run whose shards differ in their rows' types (a field null in every row of one shard,
`1` in one and `1.5` in another, a key only in later shards, a nested object gaining a field) writes outputs
of one schema: `pd.read_parquet(OUT)`, `pyarrow.dataset.dataset(OUT)` and dask read every document once with
every column and its value. A column of no common type (text in one shard, int in another) leaves every file
as written, is named in `_summary.json`, and `hpc-classify unify-schema` refuses to change it too."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import pandas as pd
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from driver_support import output_files, run_args, run_cli, summary

from hpc_classify.driver.lock import RunLock
from hpc_classify.io.markers import iter_markers_with_relpaths
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

COLUMNS = ("maybe", "x", "late_key", "meta")


def _shard(inputs: Path, name: str, rows: list[dict]) -> list[dict]:
    texts, _ = synthetic_corpus(len(rows), DOMAIN_LABELS, seed=len(name) + ord(name[0]))
    rows = [
        {"id": f"{name}-{i}", "text": text, **row}
        for i, (text, row) in enumerate(zip(texts, rows, strict=True))
    ]
    (inputs / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _differing_corpus(inputs: Path) -> list[dict]:
    inputs.mkdir()
    rows = _shard(inputs, "a", [{"maybe": None, "x": i, "meta": {"k": i}} for i in range(4)])
    rows += _shard(inputs, "b", [{"maybe": f"m{i}", "x": i + 0.5, "meta": {"k": i}} for i in range(3)])
    rows += _shard(
        inputs,
        "c",
        [{"maybe": None, "x": i, "late_key": f"L{i}", "meta": {"k": i, "extra": "e"}} for i in range(5)],
    )
    return rows


def _expected(rows: list[dict]) -> dict[str, dict]:
    """Each document's columns as one schema reads them, from the input lines alone."""
    return {
        r["id"]: {
            "maybe": r["maybe"],
            "x": float(r["x"]),
            "late_key": r.get("late_key"),
            "meta": {"k": r["meta"]["k"], "extra": r["meta"].get("extra")},
        }
        for r in rows
    }


def _plain(value):
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _read_back(frame: pd.DataFrame) -> dict[str, dict]:
    assert frame["id"].is_unique, "a document read twice"
    return {row["id"]: {c: _plain(row[c]) for c in COLUMNS} for row in frame.to_dict("records")}


def test_outputs_of_differing_shards_read_as_one_dataset(tmp_path, tiny_domain_model):
    import dask.dataframe as dd

    inputs, out = tmp_path / "in", tmp_path / "out"
    rows = _differing_corpus(inputs)

    result = run_cli(run_args(inputs, out, tiny_domain_model, "--output-format", "parquet"))

    assert result.returncode == 0, result.stderr[-3000:]
    expected = _expected(rows)
    assert _read_back(pd.read_parquet(out)) == expected
    assert _read_back(ds.dataset(out).to_table().to_pandas()) == expected
    assert _read_back(dd.read_parquet(str(out)).compute()) == expected
    schema = pq.read_schema(out / "_common_metadata")
    assert all(pq.read_schema(path).equals(schema) for path in output_files(out).values())
    assert {"maybe", "x", "late_key", "meta", "domain_pred"} <= set(schema.names)
    assert summary(out)["output_schema"] | {"seconds": 0} == {
        "files": 3,
        "rewritten": 3,  # a: maybe, x, late_key, meta; b: late_key, meta; c: maybe, x
        "markers_updated": 3,
        "clashes": [],
        "unreadable": {},
        "unreadable_count": 0,
        "common_metadata": str(out / "_common_metadata"),
        "stopped": False,
        "stopped_while": "",
        "deferred_bytes": 0,
        "seconds": 0,
    }
    for _, marker in iter_markers_with_relpaths(str(out)):
        assert marker.output_size == Path(marker.output_path).stat().st_size


def test_a_column_of_no_common_type_leaves_every_output_as_written(tmp_path, tiny_domain_model):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    _shard(inputs, "a", [{"code": i} for i in range(3)])
    _shard(inputs, "b", [{"code": f"c{i}"} for i in range(3)])

    result = run_cli(run_args(inputs, out, tiny_domain_model, "--output-format", "parquet"))

    assert result.returncode == 0, result.stderr[-3000:]  # the run's files are all done: exit unchanged
    assert str(pq.read_schema(out / "a.parquet").field("code").type) == "int64"
    assert str(pq.read_schema(out / "b.parquet").field("code").type) == "string"
    assert not (out / "_common_metadata").exists()
    (clash,) = summary(out)["output_schema"]["clashes"]
    assert clash["column"] == "code"
    assert clash["types"] == {"int64": ["a.parquet"], "string": ["b.parquet"]}
    assert "column 'code': int64 in a.parquet; string in b.parquet" in result.stderr
    assert "no _common_metadata written" in result.stderr

    written = {name: path.read_bytes() for name, path in output_files(out).items()}
    again = run_cli(["unify-schema", "--output", str(out)], timeout=120)

    assert again.returncode == 1, again.stderr
    assert "no common type: column 'code': int64 in a.parquet; string in b.parquet" in again.stdout
    assert {name: path.read_bytes() for name, path in output_files(out).items()} == written
    assert not (out / "_common_metadata").exists()


@pytest.mark.parametrize("held", [True, False])
def test_unify_schema_refuses_a_directory_another_run_holds(tmp_path, held):
    out = tmp_path / "out"
    out.mkdir()
    with RunLock(str(out)) if held else contextlib.nullcontext():
        result = run_cli(["unify-schema", "--output", str(out)], timeout=120)
    if held:
        assert result.returncode == 2
        assert f"not unifying the schema of {out}: {out} is in use by another run" in result.stderr
    else:
        assert result.returncode == 0, result.stderr
        assert (
            result.stdout
            == "0 Parquet output(s) share one schema (0 rewritten); no _common_metadata (no output)\n"
        )
