"""write_to_disk / to_json / to_parquet edge cases against NeMo Curator 0.7.1's write_to_disk.

NeMo's rules (nemo_curator/utils/distributed_utils.py), copied below as oracles: `nemo_resolve_filename_col`
is its `_resolve_filename_col`, called first by write_to_disk (so `write_to_filename=None` is a ValueError and
`""` writes without file names); `nemo_is_one_file` is its test for a single output file (a `str` ending with
".jsonl": a `pathlib.Path` is a directory, as Dask's `to_json` takes it). Ours adds `.json` and compressed JSONL
names to the single-file rule (docs/nemo-differences.md). A `.jsonl` str with output_type="parquet" fails in
NeMo inside Dask's metadata inference (pandas passes `write_index` to pyarrow); ours refuses it clearly.
"""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest
from nemo_file_oracles import nemo_resolve_filename_col

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError, DataLayoutError
from hpc_classify.utils.distributed_utils import write_to_disk


def nemo_is_one_file(output_path) -> bool:
    """NeMo 0.7.1 write_to_disk's test for an output path that is a file name."""
    return isinstance(output_path, str) and output_path.endswith(".jsonl")


def _dataset(npartitions: int = 1, **columns) -> DocumentDataset:
    frame = pd.DataFrame(
        {"text": ["a", "b", "c", "d"], "file_name": ["x.jsonl", "y.jsonl", "x.jsonl", "y.jsonl"]}
    )
    return DocumentDataset.from_pandas(frame.assign(**columns), npartitions=npartitions)


def _files(directory) -> list[str]:
    return sorted(
        os.path.relpath(os.path.join(d, n), directory) for d, _, names in os.walk(directory) for n in names
    )


def _rows(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


# --- (a) the output path's type -------------------------------------------------------------------


@pytest.mark.parametrize("npartitions", [1, 2])
def test_a_path_object_named_jsonl_is_a_directory_as_in_nemo(tmp_path, npartitions):
    out = tmp_path / "out.jsonl"
    assert not nemo_is_one_file(out) and nemo_is_one_file(str(out))
    _dataset(npartitions).to_json(out)
    assert out.is_dir()
    assert _files(out) == [f"part.{i}.jsonl" for i in range(npartitions)]
    assert [r["text"] for i in range(npartitions) for r in _rows(out / f"part.{i}.jsonl")] == list("abcd")
    # ...so write_to_filename and partition_on work there, as in NeMo (a str .jsonl refuses them).
    _dataset(npartitions).to_json(tmp_path / "named.jsonl", write_to_filename=True)
    assert _files(tmp_path / "named.jsonl") == ["x.jsonl", "y.jsonl"]
    with pytest.raises(ConfigError, match="one file"):
        _dataset(1).to_json(str(tmp_path / "str.jsonl"), write_to_filename=True)


def test_a_str_named_jsonl_is_one_file_as_in_nemo(tmp_path):
    out = str(tmp_path / "one.jsonl")
    _dataset().to_json(out)
    assert os.path.isfile(out) and [r["text"] for r in _rows(out)] == list("abcd")


# --- (b) a .jsonl name with another output type -----------------------------------------------------


@pytest.mark.parametrize("output_type", ["parquet", "pickle"])
def test_a_jsonl_name_for_other_output_types_is_refused_before_anything_is_written(tmp_path, output_type):
    out = str(tmp_path / "x.jsonl")
    with pytest.raises(ValueError, match=r"x\.jsonl names a JSON Lines file.*output_type=") as caught:
        write_to_disk(_dataset().df, out, output_type=output_type)
    assert isinstance(caught.value, ConfigError) and "directory" in caught.value.hint
    with pytest.raises(ConfigError, match="JSON Lines file"):
        _dataset().to_parquet(out)
    assert os.listdir(tmp_path) == []


def test_other_names_for_parquet_are_directories_as_in_nemo(tmp_path):
    # NeMo writes these through dask's to_parquet: a directory, whatever the name.
    for out in [str(tmp_path / "a.json"), str(tmp_path / "b.jsonl.gz"), tmp_path / "c.jsonl"]:
        _dataset().to_parquet(out)
        assert _files(out) == ["part.0.parquet"]
        assert list(pd.read_parquet(out)["text"]) == list("abcd")


# --- (c) the file name column argument and its values ------------------------------------------------


@pytest.mark.parametrize("value", [None, "", False, True, "file_name", "n", 5, 0, 1.0])
def test_write_to_filename_values_as_nemo(tmp_path, value):
    dataset = _dataset(2, n=["p.jsonl", "q.jsonl", "p.jsonl", "p.jsonl"])
    out = tmp_path / "out"
    try:
        column = nemo_resolve_filename_col(value)
    except ValueError:
        with pytest.raises(ValueError, match="write_to_filename|True, False or a column name") as caught:
            dataset.to_json(str(out), write_to_filename=value)
        assert isinstance(caught.value, ConfigError)
        assert not out.exists()
        return
    dataset.to_json(str(out), write_to_filename=value)
    if not column:  # NeMo: `if write_to_filename` is false, a plain write of every column
        assert _files(out) == ["part.0.jsonl", "part.1.jsonl"]
        assert set(_rows(out / "part.0.jsonl")[0]) == {"text", "file_name", "n"}
    else:
        names = {"file_name": ["x.jsonl", "y.jsonl"], "n": ["p.jsonl", "q.jsonl"]}[column]
        assert _files(out) == names


def test_add_filename_empty_string_adds_no_column_as_in_nemo(tmp_path):
    # NeMo's readers test `if add_filename:`, so "" (and None) add no column.
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    for value in ["", None, False]:
        assert list(DocumentDataset.read_json(str(tmp_path / "a.jsonl"), add_filename=value).df.columns) == [
            "text"
        ]


def test_file_name_values_that_are_not_text(tmp_path):
    # NeMo: Path(5) is a TypeError that names no column; values Dask made strings ("5") are written.
    # Ours writes every such value under its str, as NeMo writes those strings.
    _dataset(n=[5, 6, 5, 5]).to_json(str(tmp_path / "ints"), write_to_filename="n")
    assert _files(tmp_path / "ints") == ["5.jsonl", "6.jsonl"]
    assert [r["text"] for r in _rows(tmp_path / "ints" / "5.jsonl")] == ["a", "c", "d"]
    # Bytes (a Parquet binary column) are decoded, as Dask's string conversion does: str() gave "b'x.jsonl".
    _dataset(b=[b"x.jsonl", b"y.jsonl", b"x.jsonl", b"y.jsonl"]).to_parquet(
        str(tmp_path / "bytes"), write_to_filename="b"
    )
    assert _files(tmp_path / "bytes") == ["x.parquet", "y.parquet"]
    with pytest.raises(DataLayoutError, match=r"column 'b' is bytes that are not UTF-8 text") as caught:
        _dataset(b=[b"\xff.jsonl"] * 4).to_parquet(str(tmp_path / "bad"), write_to_filename="b")
    assert "decode" in caught.value.hint
    assert not _files(tmp_path / "bad")
