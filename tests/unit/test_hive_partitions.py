"""`partition_on` directories (`<column>=<value>`): the column comes back on a Parquet read, as Dask and pyarrow
give it to NeMo's `read_parquet` (NeMo's FineWeb-Edu ensemble tutorial reads one value directory this way)."""

from __future__ import annotations

import os

import dask.dataframe as dd
import pandas as pd
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.datasets.value_dirs import partition_dtypes, path_values


def _buckets(tmp_path):
    frame = pd.DataFrame({"text": list("abcd"), "bucket": [1, 3, 1, 3]})
    out = str(tmp_path / "out")
    DocumentDataset.from_pandas(frame, npartitions=2).to_parquet(out, partition_on="bucket")
    return out


def test_one_value_directory_reads_back_with_its_column_as_dask_reads_it(tmp_path):
    out = _buckets(tmp_path)
    ours = DocumentDataset.read_parquet(os.path.join(out, "bucket=1")).df.compute()
    assert list(ours.columns) == ["bucket", "text"]
    assert ours["bucket"].dtype == pd.CategoricalDtype(pd.Index([1], dtype="int32"))
    assert ours["bucket"].tolist() == [1, 1]
    files = sorted(os.path.join(out, "bucket=1", f) for f in os.listdir(os.path.join(out, "bucket=1")))
    theirs = dd.read_parquet(files, blocksize="1gb", aggregate_files=True).compute()  # NeMo's read
    assert ours["bucket"].tolist() == theirs["bucket"].tolist()
    assert ours["bucket"].dtype.categories.tolist() == theirs["bucket"].dtype.categories.tolist()
    assert ours["text"].tolist() == theirs["text"].tolist() == ["a", "c"]


@pytest.mark.parametrize("options", [{}, {"files_per_partition": 1}, {"add_filename": True}])
def test_the_whole_output_reads_back_with_every_value_as_a_category(tmp_path, options):
    out = _buckets(tmp_path)
    ours = DocumentDataset.read_parquet(out, **options).df.compute()
    assert ours["bucket"].dtype == pd.CategoricalDtype(pd.Index([1, 3], dtype="int32"))
    assert sorted(zip(ours["text"], ours["bucket"], strict=True)) == [("a", 1), ("b", 3), ("c", 1), ("d", 3)]


def test_partition_columns_can_be_selected_and_a_file_column_of_that_name_is_kept(tmp_path):
    out = _buckets(tmp_path)
    only = DocumentDataset.read_parquet(out, columns=["bucket"]).df.compute()
    assert list(only.columns) == ["bucket"] and sorted(only["bucket"].tolist()) == [1, 1, 3, 3]
    (tmp_path / "own" / "bucket=9").mkdir(parents=True)
    pd.DataFrame({"text": ["x"], "bucket": [5]}).to_parquet(tmp_path / "own" / "bucket=9" / "a.parquet")
    back = DocumentDataset.read_parquet(str(tmp_path / "own")).df.compute()
    assert back["bucket"].tolist() == [5] and back["bucket"].dtype == "int64"


def test_values_are_decoded_as_pyarrow_decodes_them(tmp_path):
    assert path_values(
        os.path.join("r", "a=en%20US", "b=__HIVE_DEFAULT_PARTITION__", "f=1", "x.parquet")
    ) == {
        "a": "en US",
        "b": None,
        "f": "1",
    }
    paths = ["a=x/n=01/p.parquet", "a=y/n=2/p.parquet", "a=x/n=__HIVE_DEFAULT_PARTITION__/p.parquet"]
    dtypes = partition_dtypes(paths)
    assert dtypes["n"] == pd.CategoricalDtype(pd.Index([1, 2], dtype="int32"))
    assert dtypes["a"].categories.tolist() == ["x", "y"]
    big = partition_dtypes(["n=99999999999/p.parquet", "n=1/p.parquet"])[
        "n"
    ]  # past int32: strings, as pyarrow
    assert big.categories.tolist() == ["1", "99999999999"]


def test_jsonl_reads_take_no_columns_from_directory_names(tmp_path):
    (tmp_path / "lang=en").mkdir()
    (tmp_path / "lang=en" / "a.jsonl").write_text('{"text": "x"}\n')
    assert list(DocumentDataset.read_json(str(tmp_path)).df.columns) == ["text"]


@pytest.mark.parametrize("writer", ["to_json", "to_parquet"])
def test_value_directories_are_named_by_the_raw_value_as_dask_names_them(tmp_path, writer):
    frame = pd.DataFrame({"text": list("ab"), "lang": ["en US", "Food & Drink"]})
    out = tmp_path / "out"
    getattr(DocumentDataset.from_pandas(frame), writer)(str(out), partition_on="lang")
    assert sorted(os.listdir(out)) == ["lang=Food & Drink", "lang=en US"]
    dask_out = tmp_path / "dask"
    dd.from_pandas(frame, npartitions=1).to_parquet(str(dask_out), partition_on="lang", write_index=False)
    assert sorted(os.listdir(out)) == sorted(os.listdir(dask_out))
    # but `%` as `%25` (Dask writes it raw), so that a read, which percent-decodes, gives the value back
    # (test_hive_round_trip)


@pytest.mark.parametrize("value", ["a/b", "a\0b"])
def test_a_value_that_cannot_name_a_directory_is_an_error_and_leaves_no_directories(tmp_path, value):
    frame = pd.DataFrame({"text": ["x", "y"], "lang": ["en", value]})
    out = tmp_path / "out"
    with pytest.raises(
        ValueError, match=r"partition_on='lang': the value .* cannot name a directory"
    ) as info:
        DocumentDataset.from_pandas(frame).to_parquet(str(out), partition_on="lang")
    assert repr(value) in str(info.value)
    assert not [name for name in os.listdir(out) if name.startswith("lang=")]
