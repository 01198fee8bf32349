"""NeMo Curator 0.7.1's I/O helpers and the built-in exception types at its error sites (issue 22 items 2, 3).

Expected values are read from NeMo 0.7.1's `nemo_curator/utils/distributed_utils.py` and
`nemo_curator/datasets/doc_dataset.py`; each error is also checked to keep our message and hint.
"""

from __future__ import annotations

import os

import dask.dataframe as dd
import numpy as np
import pandas as pd
import pytest
from nemo_corpus import NUM_FILES, NUM_RECORDS

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import HpcClassifyError
from hpc_classify.utils.distributed_utils import (
    get_client,
    read_data,
    read_data_blocksize,
    read_data_files_per_partition,
    read_single_partition,
    single_partition_write_with_filename,
    write_to_disk,
)


def _raises(builtin, call, match):
    """NeMo's built-in type, and still ours, with its message."""
    with pytest.raises(builtin, match=match) as caught:
        call()
    assert isinstance(caught.value, HpcClassifyError)
    return caught.value


# --- the four helpers ---------------------------------------------------------------------------


@pytest.mark.parametrize("file_ext", ["jsonl", "parquet"])
@pytest.mark.parametrize("keep_filename_column", [True, False])
@pytest.mark.parametrize("filename_col", ["file_name", "filename"])
def test_single_partition_write_with_filename_round_trip(
    tmp_path, file_ext, keep_filename_column, filename_col
):
    df = pd.DataFrame({"a": [1, 2, 3], filename_col: ["file0", "file1", "file1"]})
    written = single_partition_write_with_filename(
        df=df,
        output_file_dir=tmp_path,
        keep_filename_column=keep_filename_column,
        output_type=file_ext,
        filename_col=filename_col,
    )
    assert written.tolist() == [False]  # NeMo returns whether the partition was empty
    assert sorted(os.listdir(tmp_path)) == [f"file0.{file_ext}", f"file1.{file_ext}"]
    expected = df if keep_filename_column else df.drop(columns=[filename_col])
    for name, rows in (("file0", slice(0, 1)), ("file1", slice(1, 3))):
        got = read_single_partition(
            files=[tmp_path / f"{name}.{file_ext}"], backend="pandas", filetype=file_ext
        )
        pd.testing.assert_frame_equal(got, expected.iloc[rows].reset_index(drop=True))


def test_single_partition_write_with_filename_empty_and_errors(tmp_path):
    empty = pd.DataFrame({"a": pd.Series([], dtype="int64"), "file_name": pd.Series([], dtype=object)})
    assert single_partition_write_with_filename(empty, tmp_path).tolist() == [True]
    assert os.listdir(tmp_path) == []
    df = pd.DataFrame({"a": [1], "file_name": ["f"]})
    _raises(
        ValueError, lambda: single_partition_write_with_filename(df, tmp_path, output_type="pickle"), "pickle"
    )
    _raises(
        RuntimeError,
        lambda: single_partition_write_with_filename(df, tmp_path, output_type="bitext"),
        "bitext",
    )
    _raises(
        ValueError, lambda: single_partition_write_with_filename(df, tmp_path, filename_col="src"), "'src'"
    )


def test_read_single_partition_adds_filename_selects_and_casts(nemo_jsonl_files):
    frame = read_single_partition(nemo_jsonl_files[:2], backend="pandas", filetype="jsonl", add_filename=True)
    assert list(frame.columns) == ["id", "text", "file_name"]  # not sorted: the dataset readers sort
    assert frame["file_name"].tolist() == ["test_0.jsonl"] * NUM_RECORDS + ["test_1.jsonl"] * NUM_RECORDS
    assert frame["id"].tolist()[NUM_RECORDS] == "id_1_0"
    # NeMo: input_meta without io_columns keeps only input_meta's columns, cast to its dtypes.
    meta = read_single_partition(nemo_jsonl_files[:1], backend="pandas", input_meta='{"text": "str"}')
    assert list(meta.columns) == ["text"] and len(meta) == NUM_RECORDS
    picked = read_single_partition(
        nemo_jsonl_files[:1], backend="pandas", io_columns=["text"], add_filename="src"
    )
    assert list(picked.columns) == ["text", "src"]
    _raises(
        RuntimeError, lambda: read_single_partition(nemo_jsonl_files, backend="pandas", filetype="csv"), "csv"
    )
    _raises(TypeError, lambda: read_single_partition(nemo_jsonl_files, backend="pandas", lines=True), "lines")


@pytest.mark.parametrize("file_type", ["jsonl", "parquet"])
@pytest.mark.parametrize("fpp, partitions", [(1, 5), (2, 3), (5, 1), (10, 1)])
def test_read_data_files_per_partition(nemo_jsonl_files, nemo_parquet_files, file_type, fpp, partitions):
    files = nemo_jsonl_files if file_type == "jsonl" else nemo_parquet_files
    df = read_data_files_per_partition(files, file_type=file_type, backend="pandas", files_per_partition=fpp)
    assert df.npartitions == partitions
    assert list(df.columns) == ["id", "text"]  # sorted, as NeMo's output[sorted(output.columns)]
    frame = df.compute()
    assert len(frame) == NUM_FILES * NUM_RECORDS
    assert frame["id"].tolist() == [f"id_{f}_{r}" for f in range(NUM_FILES) for r in range(NUM_RECORDS)]
    named = read_data_files_per_partition(
        files, file_type=file_type, backend="pandas", files_per_partition=fpp, add_filename="some_filename"
    )
    assert list(named.columns) == ["id", "some_filename", "text"]
    assert set(named["some_filename"].unique().compute()) == {os.path.basename(p) for p in files}


@pytest.mark.parametrize("file_type", ["jsonl", "parquet"])
@pytest.mark.parametrize("columns", [None, ["id"], ["text", "id"]])
def test_read_data_blocksize_columns_sorted_and_rows_complete(
    nemo_jsonl_files, nemo_parquet_files, file_type, columns
):
    files = nemo_jsonl_files if file_type == "jsonl" else nemo_parquet_files
    df = read_data_blocksize(
        files, backend="pandas", file_type=file_type, blocksize="128MiB", columns=columns
    )
    assert list(df.columns) == sorted(columns or ["id", "text"])
    assert list(df.head().columns) == list(df.columns)
    assert len(df) == NUM_FILES * NUM_RECORDS
    if file_type == "jsonl":
        named = read_data_blocksize(
            files, backend="pandas", file_type="jsonl", blocksize="128MiB", add_filename=True
        )
        assert list(named.columns) == ["file_name", "id", "text"]
        assert set(named["file_name"].unique().compute()) == {f"test_{f}.jsonl" for f in range(NUM_FILES)}


def test_read_data_blocksize_input_meta_keeps_its_columns(nemo_jsonl_files):
    df = read_data_blocksize(nemo_jsonl_files, "pandas", "jsonl", "128MiB", input_meta={"id": "str"})
    assert list(df.columns) == ["id"] and len(df) == NUM_FILES * NUM_RECORDS


def test_read_data_blocksize_errors(nemo_jsonl_files, nemo_parquet_files):
    _raises(
        ValueError,
        lambda: read_data_blocksize(nemo_parquet_files, "pandas", "parquet", "128MiB", add_filename=True),
        "Parquet",
    )
    _raises(ValueError, lambda: read_data_blocksize(nemo_jsonl_files, "pandas", "json", "1kb"), "'json'")


# --- NeMo's error sites: its built-in type, our message -------------------------------------------


def test_write_to_disk_error_types(tmp_path):
    ddf = dd.from_pandas(
        pd.DataFrame({"id": [1, 2], "file_name": ["f", "f"], "c": ["A", "B"]}), npartitions=2
    )
    out = str(tmp_path / "out")
    _raises(
        ValueError, lambda: write_to_disk(ddf, out, write_to_filename=True, partition_on="c"), "partition_on"
    )
    _raises(ValueError, lambda: write_to_disk(ddf, out, write_to_filename="source"), "'source'")
    _raises(ValueError, lambda: write_to_disk(ddf, out, output_type="csv"), "csv")
    single = str(tmp_path / "one.jsonl")
    error = _raises(RuntimeError, lambda: write_to_disk(ddf, single), "2 partitions")
    assert "repartition" in error.hint
    _raises(ValueError, lambda: DocumentDataset(ddf).to_json(out, write_to_filename=5), "5")


def test_read_data_error_types(tmp_path, nemo_jsonl_files, nemo_parquet_files):
    mixed = [nemo_jsonl_files[0], nemo_parquet_files[0]]
    error = _raises(
        RuntimeError, lambda: read_data(mixed, file_type="jsonl", backend="pandas"), "several types"
    )
    assert "keep_extensions" in error.hint
    (tmp_path / "notes.csv").write_text("a,b\n")
    _raises(RuntimeError, lambda: DocumentDataset.read_json(str(tmp_path)), "several types")
    _raises(RuntimeError, lambda: read_data(nemo_jsonl_files, file_type="csv", backend="pandas"), "csv")
    _raises(
        ValueError,
        lambda: read_data(nemo_jsonl_files, "jsonl", "pandas", blocksize="1kb", files_per_partition=2),
        "cannot both be set",
    )
    _raises(TypeError, lambda: DocumentDataset.read_json(nemo_jsonl_files, lines=True), "lines")
    # NeMo's message, on purpose (not an accident of iterating over an int):
    _raises(TypeError, lambda: DocumentDataset.read_json(5), r"File input must be a string or list .*not 5")
    _raises(TypeError, lambda: DocumentDataset.read_json([nemo_jsonl_files[0], 5]), "not .*, 5]")


def test_input_file_error_types(tmp_path, nemo_jsonl_files):
    missing = str(tmp_path / "absent.jsonl")
    error = _raises(
        FileNotFoundError, lambda: DocumentDataset.read_json([missing]), "absent.jsonl: no such file"
    )
    assert error.filename == missing and error.path == missing
    _raises(KeyError, lambda: DocumentDataset.read_json(nemo_jsonl_files, columns=["nope"]), "'nope'")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1}\n{not json\n')
    _raises(ValueError, lambda: DocumentDataset.read_json([str(bad)]), r"bad\.jsonl:2: invalid JSON")


def test_get_client_error_types(tmp_path):
    _raises(ValueError, lambda: get_client(cluster_type="tpu"), "cluster_type")
    both = {"scheduler_address": "tcp://127.0.0.1:1", "scheduler_file": str(tmp_path / "s.json")}
    _raises(ValueError, lambda: get_client(**both), "not both")


def test_get_client_checks_cluster_arguments_before_starting_anything():
    """`foo=1` ended in 62 lines of worker tracebacks that never named foo; n_workers=0 waited 30 s for a
    worker; threads_per_worker=0 became dask's default. Each is now an error naming it, at once."""
    _raises(
        TypeError, lambda: get_client(foo=1), r"unknown cluster argument\(s\) 'foo': LocalCluster takes no"
    )
    _raises(TypeError, lambda: get_client(dashbord_address=":0"), r"did you mean 'dashboard_address'\?")
    for n in (0, -2):
        _raises(
            ValueError, lambda n=n: get_client(n_workers=n), f"n_workers must be a whole number >= 1, not {n}"
        )
    _raises(
        ValueError, lambda: get_client(threads_per_worker=0), "threads_per_worker must be a whole number >= 1"
    )
    # Keywords LocalCluster forwards to its Nanny and Worker are accepted.
    from distributed import LocalCluster

    from hpc_classify.cluster.local import check_cluster_arguments, cluster_keywords

    check_cluster_arguments(LocalCluster, np.int64(2), np.int64(1), {})  # computed counts are counts too
    keywords = cluster_keywords(LocalCluster)
    assert {"memory_limit", "lifetime", "death_timeout", "local_directory", "dashboard_address"} <= keywords
