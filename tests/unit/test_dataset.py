"""DocumentDataset: NeMo Curator's read/write API over Dask, one partition per file, order kept."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest
import zstandard

from hpc_classify.dataset import DocumentDataset
from hpc_classify.errors import ConfigError, DataLayoutError, InputFileError
from hpc_classify.io.nemo_files import get_all_files_paths_under
from hpc_classify.io.writers import is_temp_file

NAMES = ["books_a.jsonl", "books_b.jsonl.gz", "books_c.jsonl.zst"]


def _rows(name: str, n: int) -> list[dict]:
    # Columns deliberately not alphabetical, ids descending: order must come from the file.
    return [{"id": f"{name}-{n - i}", "text": f"{name} doc {i}", "score": i * 0.5} for i in range(n)]


def _write_jsonl(path, rows) -> None:
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    elif str(path).endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    with open(path, "wb") as f:
        f.write(data)


def _read_jsonl(path) -> list[dict]:
    data = open(path, "rb").read()
    if str(path).endswith(".gz"):
        data = gzip.decompress(data)
    elif str(path).endswith(".zst"):
        data = zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return [json.loads(line) for line in data.decode().splitlines()]


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for n, name in zip((4, 3, 5), NAMES, strict=True):
        _write_jsonl(root / name, _rows(name, n))
    return root


def _files(directory) -> list[str]:
    return sorted(os.listdir(directory))


def test_write_to_filename_gives_one_output_per_input(corpus, tmp_path):
    files = get_all_files_paths_under(str(corpus))
    dataset = DocumentDataset.read_json(files, backend="pandas", add_filename=True)
    assert dataset.df.npartitions == 1  # blocksize="1gb" (NeMo's default) packs the small files together
    assert list(dataset.df.columns) == ["file_name", "id", "score", "text"]  # sorted, as NeMo
    out = tmp_path / "out"
    dataset.to_json(str(out), write_to_filename=True)
    assert _files(out) == NAMES
    for n, name in zip((4, 3, 5), NAMES, strict=True):
        assert _read_jsonl(out / name) == _rows(name, n)  # same columns, same order, file_name dropped


def test_keep_filename_column_and_files_per_partition(corpus, tmp_path):
    dataset = DocumentDataset.read_json(str(corpus), add_filename=True, files_per_partition=2)
    assert dataset.df.npartitions == 2
    dataset.to_json(str(tmp_path / "out"), write_to_filename=True, keep_filename_column=True)
    assert _files(tmp_path / "out") == NAMES
    rows = _read_jsonl(tmp_path / "out" / NAMES[1])
    assert rows == [r | {"file_name": NAMES[1]} for r in _rows(NAMES[1], 3)]


def test_to_json_one_file_per_partition(corpus, tmp_path):
    dataset = DocumentDataset.read_json(str(corpus), add_filename=True, files_per_partition=1)
    dataset.to_json(str(tmp_path / "out"), keep_filename_column=True)
    assert _files(tmp_path / "out") == ["part.0.jsonl", "part.1.jsonl", "part.2.jsonl"]
    # Without write_to_filename every column is written, file_name included (as NeMo).
    assert _read_jsonl(tmp_path / "out" / "part.2.jsonl") == [
        r | {"file_name": NAMES[2]} for r in _rows(NAMES[2], 5)
    ]


def test_compute_gives_rows_in_file_order(corpus):
    frame = DocumentDataset.read_json(str(corpus), add_filename=True).df.compute()
    expected = [
        r | {"file_name": name} for n, name in zip((4, 3, 5), NAMES, strict=True) for r in _rows(name, n)
    ]
    assert frame.to_dict("records") == expected


def test_filtered_rows_keep_order_and_empty_files_get_no_output(corpus, tmp_path):
    dataset = DocumentDataset.read_json(str(corpus), add_filename=True)
    kept = DocumentDataset(dataset.df[(dataset.df["score"] != 0.5) & (dataset.df["file_name"] != NAMES[1])])
    kept.to_json(str(tmp_path / "out"), write_to_filename=True)
    assert _files(tmp_path / "out") == [NAMES[0], NAMES[2]]
    assert [r["text"] for r in _read_jsonl(tmp_path / "out" / NAMES[2])] == [
        f"{NAMES[2]} doc {i}" for i in (0, 2, 3, 4)
    ]


def test_parquet_round_trip_with_filenames(corpus, tmp_path):
    DocumentDataset.read_json(str(corpus), add_filename=True).to_parquet(
        str(tmp_path / "pq"), write_to_filename=True, keep_filename_column=True
    )
    assert _files(tmp_path / "pq") == ["books_a.parquet", "books_b.parquet", "books_c.parquet"]
    back = DocumentDataset.read_parquet(str(tmp_path / "pq"), add_filename=True)
    frame = back.df.compute()
    assert frame["id"].tolist() == [
        r["id"] for n, name in zip((4, 3, 5), NAMES, strict=True) for r in _rows(name, n)
    ]
    # add_filename overwrote the stored column with the parquet file names
    assert frame["file_name"].tolist()[:4] == ["books_a.parquet"] * 4
    back.to_json(str(tmp_path / "js"), write_to_filename=True)
    assert _files(tmp_path / "js") == ["books_a.jsonl", "books_b.jsonl", "books_c.jsonl"]


def test_empty_file_gets_the_dataset_columns(corpus, tmp_path):
    (corpus / "a_empty.jsonl").write_bytes(b"")
    dataset = DocumentDataset.read_json(str(corpus), add_filename=True, files_per_partition=1)
    assert dataset.df.npartitions == 4
    assert list(dataset.df.columns) == ["file_name", "id", "score", "text"]
    frame = dataset.df.compute()
    assert len(frame) == 12 and list(frame.columns) == ["file_name", "id", "score", "text"]


def test_from_pandas_and_len(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b", "c"], "n": [1, 2, 3]})
    dataset = DocumentDataset.from_pandas(frame, npartitions=2)
    assert len(dataset) == 3
    dataset.to_json(str(tmp_path / "o"))
    assert [r for p in _files(tmp_path / "o") for r in _read_jsonl(tmp_path / "o" / p)] == frame.to_dict(
        "records"
    )


@pytest.mark.parametrize("npartitions", [0, -1, 1.5])
def test_from_pandas_refuses_a_partition_count_below_one(npartitions):
    """npartitions=0 used to end in a dask TypeError that did not name it."""
    frame = pd.DataFrame({"text": ["a", "b"]})
    with pytest.raises(
        ConfigError, match=rf"from_pandas: npartitions must be a whole number >= 1, not {npartitions}"
    ):
        DocumentDataset.from_pandas(frame, npartitions=npartitions)
    with pytest.raises(ConfigError, match=r"chunksize must be a whole number >= 1, not 0"):
        DocumentDataset.from_pandas(frame, npartitions=None, chunksize=0)
    # A computed count (numpy's integer) is a whole number too.
    assert DocumentDataset.from_pandas(frame, npartitions=np.int64(2)).df.npartitions == 2


def test_columns_given_as_one_name_is_that_column(tmp_path):
    """columns="text" used to be split into its letters, the columns "t", "e", "x", "t"."""
    _write_jsonl(tmp_path / "a.jsonl", _rows("a", 3))
    pd.DataFrame(_rows("p", 2)).to_parquet(tmp_path / "p.parquet")
    jsonl = DocumentDataset.read_json(str(tmp_path / "a.jsonl"), columns="text").df.compute()
    assert list(jsonl.columns) == ["text"] and jsonl["text"].tolist() == [f"a doc {i}" for i in range(3)]
    parquet = DocumentDataset.read_parquet(str(tmp_path / "p.parquet"), columns="id").df.compute()
    assert parquet["id"].tolist() == ["p-2", "p-1"] and list(parquet.columns) == ["id"]


def test_columns_and_input_meta_may_name_the_file_name_column(corpus, tmp_path):
    """NeMo adds the file name column, then selects: naming it in columns= / input_meta= was an error here
    (the column was looked for in the files)."""
    pd.DataFrame(_rows("p.parquet", 2)).to_parquet(tmp_path / "p.parquet")
    jsonl = [(os.path.join(corpus, n), _read_jsonl(corpus / n)) for n in sorted(os.listdir(corpus))]
    parquet = [(str(tmp_path / "p.parquet"), pd.read_parquet(tmp_path / "p.parquet").to_dict("records"))]
    for read, files in ((DocumentDataset.read_json, jsonl), (DocumentDataset.read_parquet, parquet)):
        for keywords, column, kept in (
            ({"add_filename": True, "columns": ["text", "file_name"]}, "file_name", ["text"]),
            ({"add_filename": "src", "columns": ["src", "text"]}, "src", ["text"]),
            (
                {"add_filename": True, "input_meta": {"text": "str", "file_name": "str"}},
                "file_name",
                ["text"],
            ),
            ({"add_filename": True, "input_meta": {"file_name": "str"}}, "file_name", []),
        ):
            frame = read([path for path, _ in files], **keywords).df.compute()
            expected = [
                {**{c: row[c] for c in kept}, column: os.path.basename(path)}
                for path, rows in files
                for row in rows
            ]
            assert frame.to_dict("records") == expected, (read, keywords)
            assert list(frame.columns) == sorted([*kept, column])


def test_no_temp_files_left(corpus, tmp_path):
    DocumentDataset.read_json(str(corpus), add_filename=True).to_json(
        str(tmp_path / "out"), write_to_filename=True
    )
    assert [n for n in os.listdir(tmp_path / "out") if is_temp_file(n)] == []


def test_write_to_filename_needs_file_name_column(corpus, tmp_path):
    with pytest.raises(ConfigError, match="add_filename=True"):
        DocumentDataset.read_json(str(corpus)).to_json(str(tmp_path / "o"), write_to_filename=True)


def test_same_base_name_twice_is_reported(tmp_path):
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        _write_jsonl(tmp_path / sub / "same.jsonl", _rows(sub, 2))
    dataset = DocumentDataset.read_json(
        [str(tmp_path / "x" / "same.jsonl"), str(tmp_path / "y" / "same.jsonl")], add_filename=True
    )
    with pytest.raises(ConfigError, match="same.jsonl"):
        dataset.to_json(str(tmp_path / "o"), write_to_filename=True)


def test_two_sources_of_one_output_name_are_refused_before_writing(tmp_path):
    # a.jsonl and a.jsonl.gz are different files, but both would be written as a.parquet.
    _write_jsonl(tmp_path / "a.jsonl", _rows("plain", 2))
    _write_jsonl(tmp_path / "a.jsonl.gz", _rows("gz", 3))
    dataset = DocumentDataset.read_json(
        [str(tmp_path / "a.jsonl"), str(tmp_path / "a.jsonl.gz")], add_filename=True
    )
    dataset.to_json(str(tmp_path / "as-jsonl"), write_to_filename=True)  # JSONL keeps the suffixes apart
    assert sorted(os.listdir(tmp_path / "as-jsonl")) == ["a.jsonl", "a.jsonl.gz"]

    with pytest.raises(ConfigError) as info:
        dataset.to_parquet(str(tmp_path / "o"), write_to_filename=True)

    assert info.value.one_line() == (
        "inputs a.jsonl and a.jsonl.gz would both write the output 'a.parquet'; HINT: give the input files "
        "distinct names (without their suffixes), or write without write_to_filename"
    )
    assert not (tmp_path / "o").exists()


def test_file_names_of_one_output_in_a_frame_without_sources_are_refused_before_writing(tmp_path):
    frame = pd.DataFrame({"text": ["x", "y", "z"], "file_name": ["b.json", "b.jsonl", "c.jsonl"]})
    dataset = DocumentDataset.from_pandas(frame, npartitions=1)

    with pytest.raises(ConfigError, match="inputs b.json and b.jsonl would both write the output 'b.pkl'"):
        dataset.to_pickle(str(tmp_path / "o"), write_to_filename=True)

    assert os.listdir(tmp_path / "o") == []


def test_text_field_checks_rows(tmp_path):
    _write_jsonl(tmp_path / "t.jsonl", [{"text": "ok"}, {"text": None}])
    assert len(DocumentDataset.read_json(str(tmp_path / "t.jsonl")).df.compute()) == 2
    with pytest.raises(InputFileError) as info:
        DocumentDataset.read_json(str(tmp_path / "t.jsonl"), text_field="text")
    assert info.value.line == 2


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(InputFileError, match="no such file"):
        DocumentDataset.read_json([str(tmp_path / "missing.jsonl")])
    _write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    with pytest.raises(ConfigError):
        DocumentDataset.read_json(str(tmp_path / "a.jsonl"), files_per_partition=0)
    with pytest.raises(ConfigError):
        DocumentDataset.read_json(str(tmp_path / "a.jsonl"), backend="polars")


def test_cudf_backend_is_a_clear_error_on_cpu(tmp_path):
    try:
        import cudf  # noqa: F401

        pytest.skip("cudf is installed")
    except Exception:
        pass
    _write_jsonl(tmp_path / "a.jsonl", [{"text": "x"}])
    with pytest.raises(ConfigError, match="backend 'cudf' is not available"):
        DocumentDataset.read_json(str(tmp_path / "a.jsonl"), backend="cudf")


def test_write_to_filename_refuses_rows_without_a_file_name(corpus, tmp_path):
    dataset = DocumentDataset.read_json(str(corpus), add_filename=True)
    frame = dataset.df.compute()
    frame.iloc[:2, frame.columns.get_loc("file_name")] = None  # two rows lose their file name
    nameless = DocumentDataset.from_pandas(frame, npartitions=1)
    with pytest.raises(DataLayoutError, match=r"2 row\(s\) have no file name in column 'file_name'"):
        nameless.to_json(str(tmp_path / "out"), write_to_filename=True)
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == []  # nothing half-written
