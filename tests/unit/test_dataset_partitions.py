"""Every partition of a DocumentDataset read from files matches the dataset's metadata (issue 22 item 1).

Expected columns are NeMo Curator 0.7.1's, read from its code: `read_data_files_per_partition` and
`read_data_blocksize` end with `output[sorted(output.columns)]` (the file name column among them), and the
metadata is Dask's inference from the first partition (its files concatenated, so their keys united).
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import InputFileError, UnexpectedArgumentError


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _check_partitions_match_meta(ddf):
    """Dask's contract: each computed partition has `_meta`'s columns, in order, and its dtypes."""
    meta = ddf._meta
    for index in range(ddf.npartitions):
        part = ddf.partitions[index].compute()
        assert list(part.columns) == list(meta.columns), f"partition {index}"
        assert list(part.dtypes) == list(meta.dtypes), f"partition {index}"


def _mixed_order_files(tmp_path):
    a = _write_jsonl(tmp_path / "a.jsonl", [{"id": f"a{i}", "text": f"alpha {i}"} for i in range(3)])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"text": f"beta {i}", "id": f"b{i}"} for i in range(2)])
    return [a, b]


@pytest.mark.parametrize("add_filename", [False, True, "source"])
def test_mixed_key_orders_give_sorted_consistent_partitions(tmp_path, add_filename):
    files = _mixed_order_files(tmp_path)
    dataset = DocumentDataset.read_json(
        files, files_per_partition=1, blocksize=None, add_filename=add_filename
    )
    extra = [] if add_filename is False else ["file_name" if add_filename is True else "source"]
    assert list(dataset.df.columns) == sorted(["id", "text", *extra])
    assert dataset.df.npartitions == 2
    _check_partitions_match_meta(dataset.df)
    # The first column is the same column in every partition: ids for one and texts for the other before.
    first = "file_name" if add_filename is True else "id"
    expected = ["a.jsonl"] * 3 + ["b.jsonl"] * 2 if first == "file_name" else ["a0", "a1", "a2", "b0", "b1"]
    assert dataset.df.map_partitions(lambda d: d.iloc[:, 0]).compute().tolist() == expected


def test_parquet_column_orders_are_sorted_and_consistent(tmp_path):
    pq.write_table(pa.table({"text": ["x", "y"], "id": [1, 2]}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"id": [3], "text": ["z"]}), tmp_path / "b.parquet")
    dataset = DocumentDataset.read_parquet(str(tmp_path), files_per_partition=1, blocksize=None)
    assert list(dataset.df.columns) == ["id", "text"]
    _check_partitions_match_meta(dataset.df)
    assert dataset.df.map_partitions(lambda d: d.iloc[:, 0]).compute().tolist() == [1, 2, 3]


def test_extra_key_in_a_later_partition_is_an_error_naming_file_and_column(tmp_path):
    a = _write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "x"}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"id": 2, "text": "y", "lang": "en"}])
    dataset = DocumentDataset.read_json([a, b], files_per_partition=1, blocksize=None)
    assert list(dataset.df.columns) == ["id", "text"]  # the first partition's, as Dask infers
    with pytest.raises(InputFileError, match=r"b\.jsonl: has column\(s\) 'lang'") as caught:
        dataset.df.compute()
    assert "columns=" in caught.value.hint
    # Selecting the columns is the remedy the error names: then every partition agrees.
    selected = DocumentDataset.read_json(
        [a, b], files_per_partition=1, blocksize=None, columns=["id", "text"]
    )
    assert selected.df.compute()["id"].tolist() == [1, 2]


def test_files_sharing_the_first_partition_unite_their_keys(tmp_path):
    # NeMo: one partition's files are concatenated (pandas unites the keys), then its columns sorted.
    a = _write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "x"}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"text": "y", "lang": "en", "id": 2}])
    dataset = DocumentDataset.read_json([a, b], files_per_partition=2, blocksize=None)
    assert list(dataset.df.columns) == ["id", "lang", "text"]
    _check_partitions_match_meta(dataset.df)
    frame = dataset.df.compute()
    assert frame["lang"].isna().tolist() == [True, False] and frame["id"].tolist() == [1, 2]


def test_a_key_missing_from_a_later_file_is_null(tmp_path):
    a = _write_jsonl(tmp_path / "a.jsonl", [{"id": 1, "text": "x", "lang": "en"}])
    b = _write_jsonl(tmp_path / "b.jsonl", [{"text": "y", "id": 2}])
    dataset = DocumentDataset.read_json([a, b], files_per_partition=1, blocksize=None)
    _check_partitions_match_meta(dataset.df)
    frame = dataset.df.compute()
    assert list(frame.columns) == ["id", "lang", "text"]
    assert frame["lang"].iloc[0] == "en" and pd.isna(frame["lang"].iloc[1])


def test_dtypes_are_cast_only_without_loss(tmp_path):
    ints = _write_jsonl(tmp_path / "a_ints.jsonl", [{"id": 1, "score": 2}])
    floats = _write_jsonl(tmp_path / "b_floats.jsonl", [{"id": 2, "score": 0.5}])
    widened = DocumentDataset.read_json([floats, ints], files_per_partition=1, blocksize=None)
    _check_partitions_match_meta(widened.df)  # int 2 -> float 2.0 changes no value
    assert widened.df.compute()["score"].tolist() == [0.5, 2.0]
    narrowed = DocumentDataset.read_json([ints, floats], files_per_partition=1, blocksize=None)
    assert str(narrowed.df.dtypes["score"]) == "int64"
    with pytest.raises(
        InputFileError, match=r"b_floats\.jsonl: column 'score' is float64 here but int64"
    ) as caught:
        narrowed.df.compute()
    # NeMo returns floats here; the dataset's dtype (int64) is fixed before this file is read, so the error
    # names the file, the column, a value that would change and the type that holds both.
    assert "(some values would change, first 0.5 to 0)" in str(caught.value)
    assert "input_meta, e.g. {'score': 'float64', ...} (input_meta" in caught.value.hint  # it works:
    remedied = DocumentDataset.read_json(
        [ints, floats], files_per_partition=1, blocksize=None, input_meta={"id": "int64", "score": "float64"}
    )
    assert remedied.df.compute()["score"].tolist() == [2.0, 0.5]
    # A later file without the int column cannot hold its nulls either: the same error, naming it.
    no_score = _write_jsonl(tmp_path / "c.jsonl", [{"id": 3}])
    with pytest.raises(InputFileError, match=r"c\.jsonl: column 'score'"):
        DocumentDataset.read_json([ints, no_score], files_per_partition=1, blocksize=None).df.compute()


def test_a_bool_is_not_a_number_when_files_are_conformed(tmp_path):
    # True == 1 in Python: a later file's 1/0 were written back as true/false (and false as 0 the other way).
    flags = _write_jsonl(tmp_path / "a.jsonl", [{"text": "a", "flag": True}])
    ones = _write_jsonl(tmp_path / "b.jsonl", [{"text": "b", "flag": 1}, {"text": "c", "flag": 0}])
    for files, problem in (
        ([flags, ones], r"b\.jsonl: column 'flag' is int64 here but bool .*numbers would become true/false"),
        ([ones, flags], r"a\.jsonl: column 'flag' is bool here but int64 .*true/false would become numbers"),
    ):
        with pytest.raises(InputFileError, match=problem):
            DocumentDataset.read_json(files, files_per_partition=1).df.compute()
    # The remedy the error names keeps every file's values as written; so does a partition of both files.
    as_written = [True, 1, 0]
    for read in ({"files_per_partition": 1, "input_meta": {"text": "str", "flag": "object"}}, {}):
        dataset = DocumentDataset.read_json([flags, ones], add_filename=True, **read)
        assert [(v, type(v)) for v in dataset.df.compute()["flag"]] == [(v, type(v)) for v in as_written]
        dataset.to_json(str(tmp_path / f"out{len(read)}"), write_to_filename=True)
        written = (tmp_path / f"out{len(read)}" / "b.jsonl").read_text().splitlines()
        assert [json.loads(line)["flag"] for line in written] == [1, 0]
        assert all(type(json.loads(line)["flag"]) is int for line in written)


def test_empty_first_file_takes_the_metadata_of_the_first_with_rows(tmp_path):
    empty = tmp_path / "a.jsonl"
    empty.write_text("")
    b = _write_jsonl(tmp_path / "b.jsonl", [{"text": "y", "id": 2}])
    dataset = DocumentDataset.read_json(
        [str(empty), b], files_per_partition=1, blocksize=None, add_filename=True
    )
    assert list(dataset.df.columns) == ["file_name", "id", "text"]
    _check_partitions_match_meta(dataset.df)


def test_pickles_keep_their_column_order_but_agree(tmp_path):
    # NeMo does not sort pickles; the first file's order is the dataset's, and every partition follows it.
    pd.DataFrame({"text": ["x"], "id": [1]}).to_pickle(tmp_path / "a.pkl")
    pd.DataFrame({"id": [2], "text": ["y"]}).to_pickle(tmp_path / "b.pkl")
    dataset = DocumentDataset.read_pickle(str(tmp_path))
    assert list(dataset.df.columns) == ["text", "id"]
    _check_partitions_match_meta(dataset.df)


def test_read_pickle_takes_the_keywords_nemo_passes_to_read_data(tmp_path):
    """NeMo's read_pickle hands add_filename and files_per_partition to read_data: they take effect here, and
    what pandas.read_pickle takes (compression) still reaches it; anything else is a clear error."""
    pd.DataFrame({"id": [1, 2], "text": ["x", "y"]}).to_pickle(tmp_path / "a.pkl")
    pd.DataFrame({"id": [3], "text": ["z"]}).to_pickle(tmp_path / "b.pkl")
    with pytest.raises(InputFileError, match="a.pkl"):  # gzip asked for, a.pkl is not: the file is named
        DocumentDataset.read_pickle(str(tmp_path / "a.pkl"), compression="gzip").df.compute()
    dataset = DocumentDataset.read_pickle(
        str(tmp_path / "a.pkl"), add_filename=True, files_per_partition=1, compression=None
    )
    frame = dataset.df.compute()
    assert frame["file_name"].tolist() == ["a.pkl", "a.pkl"] and frame["id"].tolist() == [1, 2]
    packed = DocumentDataset.read_pickle(
        [str(tmp_path / "a.pkl"), str(tmp_path / "a.pkl")], files_per_partition=2
    )
    assert packed.df.npartitions == 1 and len(packed.df.compute()) == 4
    with pytest.raises(UnexpectedArgumentError, match="read_pickle does not take nrows"):
        DocumentDataset.read_pickle(str(tmp_path / "a.pkl"), nrows=1)


@pytest.mark.parametrize("option", [{"add_filename": True}, {"text_field": "text"}])
def test_an_empty_file_sharing_a_partition_changes_no_dtype(tmp_path, option):
    # Small files share a partition with the default blocksize: the empty one took part in the
    # concatenation, and ids became floats ("id": 0.0 in to_json's output).
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "0empty.jsonl").write_text("")
    _write_jsonl(tmp_path / "in" / "a.jsonl", [{"text": f"t{i}", "id": i} for i in range(3)])
    _write_jsonl(tmp_path / "in" / "b.jsonl", [{"text": "u", "id": 10}])
    dataset = DocumentDataset.read_json(str(tmp_path / "in"), **option)
    assert dataset.df.npartitions == 1
    assert dataset.df.dtypes["id"] == "int64"
    assert dataset.df.compute()["id"].tolist() == [0, 1, 2, 10]
    _check_partitions_match_meta(dataset.df)
    dataset.to_json(str(tmp_path / "out"))
    assert '"id":0,' in (tmp_path / "out" / "part.0.jsonl").read_text().replace(" ", "")


def test_an_empty_parquet_file_keeps_the_input_meta_dtypes(tmp_path):
    pq.write_table(
        pa.table({"text": pa.array([], pa.string()), "id": pa.array([], pa.int64())}), tmp_path / "a.parquet"
    )
    pq.write_table(pa.table({"text": ["x", "y"], "id": [1, 2]}), tmp_path / "b.parquet")
    dataset = DocumentDataset.read_parquet(str(tmp_path), input_meta={"id": "int32", "text": "str"})
    assert dataset.df.dtypes["id"] == "int32"
    frame = dataset.df.compute()
    assert frame["id"].dtype == "int32" and frame["id"].tolist() == [1, 2]
    # All files empty: the one empty frame kept has input_meta's columns and dtypes.
    only_empty = DocumentDataset.read_parquet(str(tmp_path / "a.parquet"), input_meta={"id": "int32"})
    assert list(only_empty.df.columns) == ["id"] and only_empty.df.dtypes["id"] == "int32"
    assert len(only_empty.df.compute()) == 0


def test_a_numpy_files_per_partition_counts_like_an_int(tmp_path):
    """files_per_partition computed with numpy (len(files) // np.int64(n)) partitions as the same int does."""
    import numpy as np

    files = [_write_jsonl(tmp_path / f"{n}.jsonl", [{"id": n, "text": "x"}]) for n in range(5)]
    dataset = DocumentDataset.read_json(files, files_per_partition=np.int64(2), blocksize=None)
    assert dataset.df.npartitions == 3
    assert dataset.df.compute()["id"].tolist() == [0, 1, 2, 3, 4]
