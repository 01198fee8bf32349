"""pyarrow writes a Parquet schema deeper than its own reader reads ("Parquet schema too deeply nested",
limit 100): values nested 50 lists deep made an output nobody could open. The limit is pinned here to
pyarrow's reader, and such a write is a DataLayoutError naming the file and the column, nothing written."""

from __future__ import annotations

import io
import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.errors import DataLayoutError
from hpc_classify.io.parquet_types import PARQUET_MAX_SCHEMA_DEPTH, schema_depth
from hpc_classify.io.readers import read_documents
from hpc_classify.io.writers import write_frame


def _lists(n: int):
    return pa.int64() if n == 0 else pa.list_(_lists(n - 1))


def _structs(n: int):
    return pa.int64() if n == 0 else pa.struct([("a", _structs(n - 1))])


def _readable(arrow_type) -> bool:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"c": pa.nulls(1, arrow_type)}), buffer)  # pyarrow writes any depth
    try:
        pq.read_table(io.BytesIO(buffer.getvalue()))
    except OSError as exc:
        assert "too deeply nested" in str(exc)
        return False
    return True


@pytest.mark.parametrize(
    "arrow_type",
    [
        *(_lists(n) for n in (48, 49, 50, 51)),
        *(_structs(n) for n in (97, 98, 99, 100)),
        *(pa.map_(pa.string(), _lists(n)) for n in (47, 48, 49)),
        *(pa.large_list(pa.struct([("s", _lists(n)), ("t", pa.int8())])) for n in (47, 48, 49)),
        *(pa.list_(_lists(n), 1) for n in (48, 49)),
        pa.list_(pa.dictionary(pa.int8(), pa.string())),
    ],
    ids=lambda t: str(1 + schema_depth(t)),
)
def test_the_depth_limit_is_where_pyarrows_reader_fails(arrow_type):
    assert _readable(arrow_type) == (1 + schema_depth(arrow_type) <= PARQUET_MAX_SCHEMA_DEPTH)


def _nested(lists: int):
    value = 1
    for _ in range(lists):
        value = [value]
    return value


def test_a_column_nested_too_deep_is_refused_naming_file_and_column(tmp_path):
    """JSONL rows may nest 200 levels (the readers' limit): 50 nested lists read, but as Parquet output
    they were written and could not be read back."""
    source = tmp_path / "in.jsonl"
    rows = [{"text": "a", "v": _nested(50)}, {"text": "b", "v": None}]
    source.write_text("".join(json.dumps(row) + "\n" for row in rows))
    frame = read_documents(str(source)).frame
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(DataLayoutError) as caught:
        write_frame(frame, str(out / "in.parquet"), "parquet", source=str(source))
    error = caught.value
    assert str(error).startswith(f"{source}: column 'v' nests too deep for Parquet")
    assert "--output-format jsonl" in error.hint and not error.retryable
    assert os.listdir(out) == []  # no unreadable file, no temp file
    write_frame(frame, str(out / "in.jsonl"), "jsonl", source=str(source))  # the remedy
    assert read_documents(str(out / "in.jsonl")).frame["v"].tolist() == [_nested(50), None]


def test_a_column_nested_as_deep_as_readable_is_written_and_read_back(tmp_path):
    frame = pd.DataFrame({"text": ["a"], "v": [_nested(49)], "s": [{"a": {"b": [1, 2]}}]})
    path = tmp_path / "ok.parquet"
    write_frame(frame, str(path), "parquet")
    back = pq.read_table(path).to_pylist()
    assert back == [{"text": "a", "v": _nested(49), "s": {"a": {"b": [1, 2]}}}]
