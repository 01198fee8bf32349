"""DocumentDataset writes whose output must read back as written: one Parquet schema for a directory's files.

Review findings on to_parquet / to_json (the reproductions were /tmp/review-ds/e3, e4)."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import DataLayoutError


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
