"""`blocksize` cuts files larger than it into partitions on the pandas backend, as NeMo Curator 0.7.1 does
(its `read_data_blocksize` hands `blocksize` to Dask's readers, which split a file into byte blocks / row
groups), and `write_to_filename` still writes one output per input file, its rows in order (issue 20 item 6).

Expected rows come from pandas reading the source files directly, not from our readers.
"""

from __future__ import annotations

import gzip
import json
import os

import dask.dataframe as dd
import pandas as pd
import pytest
from nemo_corpus import NUM_FILES, NUM_RECORDS

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.writers import is_temp_file
from hpc_classify.utils.distributed_utils import read_data_blocksize, write_to_disk


def _source(path: str) -> pd.DataFrame:
    if path.endswith(".parquet"):
        return pd.read_parquet(path)
    return pd.read_json(path, lines=True, dtype=False)


def _check_split_read(dataset, files):
    ddf = dataset.df
    assert ddf.npartitions > len(files)  # NeMo's test: 1 kB over five 5 kB files
    expected = pd.concat([_source(p).assign(file_name=os.path.basename(p)) for p in files], ignore_index=True)
    got = ddf.compute().reset_index(drop=True)
    assert list(got.columns) == ["file_name", "id", "text"]
    pd.testing.assert_frame_equal(got, expected[list(got.columns)], check_dtype=False)
    for index in range(ddf.npartitions):  # a piece comes from one file, and matches the metadata
        part = ddf.partitions[index].compute()
        assert list(part.columns) == list(ddf._meta.columns)
        assert part["file_name"].nunique() <= 1


def test_jsonl_files_larger_than_blocksize_are_split(nemo_jsonl_files):
    _check_split_read(
        DocumentDataset.read_json(nemo_jsonl_files, blocksize="1kb", add_filename=True), nemo_jsonl_files
    )


def test_parquet_files_larger_than_blocksize_are_split(nemo_parquet_files):
    dataset = DocumentDataset.read_parquet(nemo_parquet_files, blocksize="1kb", add_filename=True)
    _check_split_read(dataset, nemo_parquet_files)


def test_read_data_blocksize_splits_as_nemo(nemo_jsonl_files, nemo_parquet_files):
    for files, file_type in ((nemo_jsonl_files, "jsonl"), (nemo_parquet_files, "parquet")):
        df = read_data_blocksize(files, backend="pandas", file_type=file_type, blocksize="1kb")
        assert df.npartitions > NUM_FILES
        assert df.compute()["id"].tolist() == [
            f"id_{f}_{r}" for f in range(NUM_FILES) for r in range(NUM_RECORDS)
        ]


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_write_to_filename_gives_one_output_per_source_in_order(nemo_jsonl_files, tmp_path, fmt):
    dataset = DocumentDataset.read_json(nemo_jsonl_files, blocksize="1kb", add_filename=True)
    kept = dataset.map_partitions(lambda d: d[d["id"].str[-1] != "3"])  # filter rows in every piece
    out = tmp_path / f"out_{fmt}"
    getattr(kept, {"jsonl": "to_json", "parquet": "to_parquet"}[fmt])(str(out), write_to_filename=True)
    assert sorted(os.listdir(out)) == [f"test_{f}.{fmt}" for f in range(NUM_FILES)]  # no part left behind
    for path in nemo_jsonl_files:
        expected = _source(path)
        expected = expected[expected["id"].str[-1] != "3"].reset_index(drop=True)
        written = str(out / os.path.basename(path).replace(".jsonl", f".{fmt}"))
        pd.testing.assert_frame_equal(_source(written), expected)


def test_a_name_in_several_partitions_is_joined_in_order(tmp_path):
    # NeMo writes each partition's rows for a name over the previous ones (the last partition wins).
    frame = pd.DataFrame({"a": range(6), "file_name": ["x", "x", "y", "x", "y", "x"]})
    ddf = dd.from_pandas(frame, npartitions=3)
    for fmt in ("jsonl", "parquet"):
        out = tmp_path / fmt
        write_to_disk(ddf, str(out), write_to_filename=True, output_type=fmt)
        assert sorted(os.listdir(out)) == [f"x.{fmt}", f"y.{fmt}"]
        assert _source(str(out / f"x.{fmt}"))["a"].tolist() == [0, 1, 3, 5]
        assert _source(str(out / f"y.{fmt}"))["a"].tolist() == [2, 4]


@pytest.mark.parametrize("npartitions", [1, 2])
def test_two_file_names_for_one_output_are_refused(tmp_path, npartitions):
    frame = pd.DataFrame({"a": range(4), "file_name": ["doc", "doc", "doc.jsonl", "doc.jsonl"]})
    out = tmp_path / "out"
    with pytest.raises(
        ConfigError, match=r"inputs doc and doc\.jsonl would both write the output 'doc\.jsonl'"
    ):
        write_to_disk(dd.from_pandas(frame, npartitions=npartitions), str(out), write_to_filename=True)
    assert os.listdir(out) == []


def test_a_failed_write_leaves_no_output_name(nemo_jsonl_files, tmp_path):
    def fail_on_file_3(part):
        if (part["file_name"] == "test_3.jsonl").any():
            raise RuntimeError("boom")
        return part

    dataset = DocumentDataset.read_json(nemo_jsonl_files, blocksize="1kb", add_filename=True)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="boom"):
        dataset.map_partitions(fail_on_file_3).to_json(str(out), write_to_filename=True)
    # No final name at all: the outputs are made only once every partition has written. (A partition still
    # running when the other failed may leave its hidden part: a temp file, as an interrupted write leaves.)
    assert [name for name in os.listdir(out) if not is_temp_file(name)] == []


def test_compressed_jsonl_is_not_split(tmp_path):
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.writelines(json.dumps({"id": i, "text": "x" * 50}) + "\n" for i in range(200))
    dataset = DocumentDataset.read_json(str(path), blocksize="1kb")
    assert dataset.df.npartitions == 1 and len(dataset) == 200


def test_a_bad_row_in_a_piece_names_its_file_line(nemo_jsonl_files):
    lines = open(nemo_jsonl_files[2]).read().splitlines()
    lines[80] = '{"id": "bad", "text": 7}'
    with open(nemo_jsonl_files[2], "w") as f:
        f.write("\n".join(lines) + "\n")
    with pytest.raises(InputFileError, match=r"test_2\.jsonl:81: text field 'text' is a JSON number"):
        DocumentDataset.read_json(nemo_jsonl_files, blocksize="1kb", text_field="text").df.compute()
