"""DocumentDataset writes whose output must read back as written: one Parquet schema for a directory's files.

Review findings on to_parquet / to_json (the reproductions were /tmp/review-ds/e3, e4)."""

from __future__ import annotations

import json
import os
import re

import pandas as pd
import pyarrow.parquet as pq
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError, DataLayoutError


def _two_partitions(probs_first, probs_second) -> DocumentDataset:
    frame = pd.DataFrame(
        {
            "id": [0, 1, 2, 3],
            "file_name": ["a.jsonl", "a.jsonl", "b.jsonl", "b.jsonl"],
            "probs": [*probs_first, *probs_second],
        }
    )
    return DocumentDataset.from_pandas(frame, npartitions=2)


def _no_hidden_files(directory) -> bool:
    return not [n for _, _, names in os.walk(directory) for n in names if n.startswith(".")]


@pytest.mark.parametrize("how", ["parts", "partition_on", "write_to_filename"])
def test_parquet_parts_share_one_schema_when_a_partition_column_is_all_null(tmp_path, how):
    # A prob_column after filter_by: all null in one partition (Arrow null there), lists in another.
    dataset = _two_partitions([None, None], [[0.1, 0.9], [0.7, 0.3]])
    assert dataset.df.npartitions == 2
    out = tmp_path / "out"
    options = {"partition_on": "id"} if how == "partition_on" else {}
    if how == "write_to_filename":
        options = {"write_to_filename": True, "keep_filename_column": True}
    dataset.to_parquet(str(out), **options)
    files = [os.path.join(d, n) for d, _, names in os.walk(out) for n in names]
    schemas = {str(pq.read_schema(f).field("probs").type) for f in files}
    assert schemas == {"list<element: double>"}
    back = pd.read_parquet(out).sort_values("id" if how != "partition_on" else "file_name", kind="stable")
    assert [None if p is None else list(p) for p in back["probs"]] == [None, None, [0.1, 0.9], [0.7, 0.3]]
    assert _no_hidden_files(out)


def test_parquet_part_of_an_emptied_partition_shares_the_schema(tmp_path):
    dataset = _two_partitions([[0.5, 0.5], [0.2, 0.8]], [[0.1, 0.9], [0.7, 0.3]])
    kept = DocumentDataset(dataset.df[dataset.df["id"] >= 2])  # the first partition is now empty
    kept.to_parquet(str(tmp_path / "out"))
    back = pd.read_parquet(tmp_path / "out")
    assert back["id"].tolist() == [2, 3] and [list(p) for p in back["probs"]] == [[0.1, 0.9], [0.7, 0.3]]


def test_parquet_parts_without_a_common_type_are_refused_naming_the_column(tmp_path):
    dataset = _two_partitions(["x", "y"], [[0.1], [0.2]])
    with pytest.raises(
        DataLayoutError, match=r"(?s)column .probs. holds values of the types string, list.*astype\(str\)"
    ):
        dataset.to_parquet(str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == []  # no part left behind, hidden or not


def _write_jsonl(path, rows) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_write_to_filename_by_another_column_writes_only_that_columns_names(tmp_path):
    # NeMo 0.7.1 writes one file per value of the column written by; the input files (add_filename) neither
    # get an empty output each nor are checked for shared base names.
    _write_jsonl(
        tmp_path / "in" / "a.jsonl", [{"text": f"doc {i}", "cat": "x" if i < 2 else "y"} for i in range(3)]
    )
    _write_jsonl(tmp_path / "in" / "b.jsonl", [{"text": f"b {i}", "cat": "x"} for i in range(2)])
    dataset = DocumentDataset.read_json(str(tmp_path / "in"), add_filename=True)
    dataset.to_json(str(tmp_path / "out"), write_to_filename="cat")
    assert sorted(os.listdir(tmp_path / "out")) == ["x.jsonl", "y.jsonl"]
    rows = [json.loads(line) for line in (tmp_path / "out" / "x.jsonl").read_text().splitlines()]
    assert [r["text"] for r in rows] == ["doc 0", "doc 1", "b 0", "b 1"]
    # Inputs sharing a base name in two directories: refused only when written by their own names.
    one = _write_jsonl(tmp_path / "d1" / "a.jsonl", [{"text": "a", "cat": "x"}])
    two = _write_jsonl(tmp_path / "d2" / "a.jsonl", [{"text": "b", "cat": "z"}])
    shared = DocumentDataset.read_json([one, two], add_filename=True)
    shared.to_json(str(tmp_path / "out2"), write_to_filename="cat")
    assert sorted(os.listdir(tmp_path / "out2")) == ["x.jsonl", "z.jsonl"]
    with pytest.raises(ConfigError, match="share the base name"):
        shared.to_json(str(tmp_path / "out3"), write_to_filename=True)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_source_none_of_whose_rows_is_kept_gets_no_file(tmp_path, fmt):
    # As NeMo 0.7.1: an empty JSONL file fails Dask's read_json over the directory ("Metadata mismatch").
    _write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": "a", "keep": True}])
    _write_jsonl(tmp_path / "in" / "b.jsonl", [{"text": "b", "keep": False}])
    dataset = DocumentDataset.read_json(str(tmp_path / "in"), add_filename="src", files_per_partition=1)
    kept = dataset.map_partitions(lambda d: d[d["keep"]])
    (kept.to_json if fmt == "jsonl" else kept.to_parquet)(str(tmp_path / "out"), write_to_filename="src")
    assert sorted(os.listdir(tmp_path / "out")) == [f"a.{fmt}"]


@pytest.mark.parametrize("bad", ["", ".hidden.jsonl", "..", "sub/.x.jsonl"])
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_file_names_of_hidden_outputs_are_refused_before_writing(tmp_path, bad, fmt):
    # They became hidden files (".jsonl") that a directory read skips. (A path is written under its last
    # part's name, as NeMo's: test_write_names.py.)
    frame = pd.DataFrame({"text": ["a", "b", "c"], "file_name": ["ok.jsonl", bad, bad]})
    dataset = DocumentDataset.from_pandas(frame, npartitions=1)
    out = tmp_path / "deep" / "out"
    writer = dataset.to_json if fmt == "jsonl" else dataset.to_parquet
    with pytest.raises(
        DataLayoutError, match=rf"2 row\(s\) .* column 'file_name' .*e\.g\. {re.escape(repr(bad))}"
    ):
        writer(str(out), write_to_filename=True)
    assert os.listdir(out) == []
    assert sorted(os.listdir(tmp_path)) == ["deep"] and os.listdir(tmp_path / "deep") == ["out"]


def test_to_json_of_a_parquet_binary_column_names_the_column(tmp_path):
    # It failed with "TypeError: cannot write a bytes as JSON", naming nothing.
    import pyarrow as pa

    pq.write_table(
        pa.table({"text": ["a", "b"], "blob": pa.array([b"x\xff", None], pa.binary())}),
        tmp_path / "a.parquet",
    )
    dataset = DocumentDataset.read_parquet(str(tmp_path / "a.parquet"))
    with pytest.raises(DataLayoutError, match=r"(?s)column 'blob' holds bytes.*drop the column"):
        dataset.to_json(str(tmp_path / "out"))
    assert os.listdir(tmp_path / "out") == []
    nested = DocumentDataset.from_pandas(pd.DataFrame({"text": ["a"], "parts": [[b"x"]]}))
    with pytest.raises(DataLayoutError, match="column 'parts' holds bytes"):
        nested.to_json(str(tmp_path / "out2"))
    DocumentDataset.read_parquet(str(tmp_path / "a.parquet"), columns=["text"]).to_json(
        str(tmp_path / "out3")
    )
    assert os.listdir(tmp_path / "out3") == ["part.0.jsonl"]


def _tree(directory) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, n), directory)
        for d, dirs, names in os.walk(directory)
        for n in dirs + names
    )


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_failed_partition_on_write_leaves_no_value_directories(tmp_path, fmt):
    # Each value's directory was made before its file failed: a read of the directory saw empty partitions.
    if fmt == "jsonl":  # a bytes column cannot be JSON
        frame = pd.DataFrame({"id": [0, 1], "text": ["a", "b"], "blob": [b"x", b"y"]})
        dataset, error = DocumentDataset.from_pandas(frame), "holds bytes"
    else:  # found when the parts are joined, after every value's part is written
        dataset, error = _two_partitions(["x", "y"], [[0.1], [0.2]]), "holds values of the types"
    out = tmp_path / "out"
    writer = dataset.to_json if fmt == "jsonl" else dataset.to_parquet
    with pytest.raises(DataLayoutError, match=error):
        writer(str(out), partition_on="id")
    assert os.listdir(out) == []


def test_a_failed_partition_on_write_removes_only_the_directories_it_made(tmp_path, monkeypatch):
    from hpc_classify.io.jsonl_format import JsonlFormat

    out = tmp_path / "out"
    (out / "lang=de").mkdir(parents=True)
    (out / "lang=de" / "notes.txt").write_text("the user's")
    (out / "lang=it").mkdir()  # empty, but not this write's to remove
    real_write = JsonlFormat.write

    def write_failing_for_de(self, df, fileobj, path, *args):
        if (df["lang"] == "de").any():
            raise OSError(5, "Input/output error (injected)")
        real_write(self, df, fileobj, path, *args)

    monkeypatch.setattr(JsonlFormat, "write", write_failing_for_de)
    frame = pd.DataFrame({"text": ["a", "b", "c", "d"], "lang": ["en", "fr", "de", "fr"]})
    with pytest.raises(OSError, match="injected"):
        DocumentDataset.from_pandas(frame).to_json(str(out), partition_on="lang")
    # lang=en and lang=fr were made and written before lang=de failed: gone with their files.
    assert _tree(out) == ["lang=de", os.path.join("lang=de", "notes.txt"), "lang=it"]
