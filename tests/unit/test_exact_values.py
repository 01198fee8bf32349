"""Every input value comes out as it went in, whole file or in pieces, JSONL or Parquet output, or the file
fails with a clear error that is not retried. Each output is compared with an independent reading of the
input (pyarrow's `to_pylist`, Python's `json`): an int stays that int, never a float near it."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.driver.failures import is_retryable
from hpc_classify.errors import DataLayoutError, InputFileError
from hpc_classify.io.formats import output_format
from hpc_classify.io.pieces import plan_pieces, read_piece
from hpc_classify.io.readers import read_documents, read_frame
from hpc_classify.io.rows import Piece
from hpc_classify.io.writers import write_frame

BIG = 2**53 + 1  # the first int a float64 cannot hold


def written(tmp_path, path: str, fmt: str, piece_bytes: int | None) -> list[dict] | pa.Table:
    """What a run writes for `path` in output format `fmt`: read whole (piece_bytes=None), or in pieces
    of `piece_bytes` assembled as the driver does. JSONL: the output's lines, parsed; Parquet: its table."""
    out = str(tmp_path / f"out-{piece_bytes}.{fmt}")
    if piece_bytes is None:
        write_frame(read_documents(path).frame, out, fmt, source=path)
    else:
        parts = []
        for piece in plan_pieces(path, os.path.getsize(path), piece_bytes):
            parts.append(str(tmp_path / f"part-{piece_bytes}-{piece.index}.{fmt}"))
            write_frame(read_piece(path, piece, text_field="text").frame, parts[-1], fmt, source=path)
        with open(out, "wb") as stream:
            output_format(fmt).assemble(parts, stream, source=path)
    if fmt == "parquet":
        return pq.read_table(out)
    with open(out, encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


def same_json(got, expected) -> bool:
    """Equal as JSON text: 7 and 7.0 differ, as 9007199254740993 and 9007199254740992 do."""
    return json.dumps(got) == json.dumps(expected)


def nested_ints_input(tmp_path) -> str:
    """Nested int64/uint64 values above 2**53 beside nulls, in row groups of one row (a piece each)."""
    path = str(tmp_path / "nested.parquet")
    top = 2**64 - 1  # a uint64 hash: no int64 nor float64 holds it
    table = pa.table(
        {
            "text": ["a", "b", "c"],
            "ids": pa.array([[BIG, 1], [None], None], pa.list_(pa.int64())),
            "minhash": pa.array([[top, None], [3], []], pa.list_(pa.uint64())),
            "st": pa.array([{"k": BIG}, {"k": None}, None], pa.struct([("k", pa.int64())])),
            "deep": pa.array([[[BIG, None]], [[1]], []], pa.list_(pa.list_(pa.int64()))),
            "rows": pa.array([[{"a": BIG}, {"a": None}], [], None], pa.list_(pa.struct([("a", pa.int64())]))),
            "big": pa.array([[BIG, None], [2], None], pa.large_list(pa.int64())),
            "pair": pa.array([[BIG, None], [1, 2], None], pa.list_(pa.int64(), 2)),
            "m": pa.array([[("x", BIG), ("y", None)], [], None], pa.map_(pa.string(), pa.int64())),
        }
    )
    pq.write_table(table, path, row_group_size=1)
    return path


@pytest.mark.parametrize("piece_bytes", [None, 1])
def test_nested_integers_beside_nulls_are_kept_exactly_in_parquet_output(tmp_path, piece_bytes):
    path = nested_ints_input(tmp_path)
    source = pq.read_table(path)

    table = written(tmp_path, path, "parquet", piece_bytes)

    for name in source.column_names:
        assert table.schema.field(name).type == source.schema.field(name).type, name
        assert table.column(name).to_pylist() == source.column(name).to_pylist(), name


@pytest.mark.parametrize("piece_bytes", [None, 1])
def test_nested_integers_beside_nulls_are_kept_exactly_in_jsonl_output(tmp_path, piece_bytes):
    path = nested_ints_input(tmp_path)
    expected = pq.read_table(path).to_pylist()
    for row in expected:  # a map is a JSON object
        row["m"] = None if row["m"] is None else dict(row["m"])

    rows = written(tmp_path, path, "jsonl", piece_bytes)

    assert same_json(rows, expected)
    assert rows[0]["minhash"] == [2**64 - 1, None] and rows[0]["ids"] == [BIG, 1]


@pytest.mark.parametrize("piece_bytes", [None, 40])
def test_an_int_beyond_uint64_is_exact_in_jsonl_and_a_clear_error_in_parquet(tmp_path, piece_bytes):
    huge = 123456789012345678901234567890
    path = tmp_path / "h.jsonl"
    path.write_text(f'{{"text": "a", "h": {huge}}}\n{{"text": "b", "h": 1}}\n')

    assert same_json(
        written(tmp_path, str(path), "jsonl", piece_bytes), [{"text": "a", "h": huge}, {"text": "b", "h": 1}]
    )
    with pytest.raises(DataLayoutError) as caught:
        written(tmp_path, str(path), "parquet", piece_bytes)

    assert caught.value.one_line().startswith(f"{path}: column 'h' cannot be written as Parquet (")
    assert "write JSONL" in caught.value.one_line()
    assert not is_retryable(caught.value)


def mixed_numbers_input(tmp_path, ids: list) -> str:
    path = tmp_path / "mixed.jsonl"
    path.write_text("".join(json.dumps({"text": f"doc {i}", "id": v}) + "\n" for i, v in enumerate(ids)))
    return str(path)


@pytest.mark.parametrize("piece_bytes", [None, 30])  # 30: a piece per line
def test_ints_beside_fractions_are_written_to_jsonl_as_read(tmp_path, piece_bytes):
    path = mixed_numbers_input(tmp_path, [BIG, 1.5, 7, None, 2.0])
    with open(path, encoding="utf-8") as lines:
        expected = [json.loads(line) for line in lines]

    assert same_json(written(tmp_path, path, "jsonl", piece_bytes), expected)


@pytest.mark.parametrize("piece_bytes", [None, 30])
def test_ints_beside_fractions_are_double_in_parquet_where_a_double_holds_each(tmp_path, piece_bytes):
    ids = [2**53, 1.5, 7, None, -(2**53)]
    path = mixed_numbers_input(tmp_path, ids)

    table = written(tmp_path, path, "parquet", piece_bytes)

    assert table.schema.field("id").type == pa.float64()
    assert same_json(table.column("id").to_pylist(), [None if v is None else float(v) for v in ids])


@pytest.mark.parametrize("piece_bytes", [None, 30])
def test_an_int_a_double_cannot_hold_beside_fractions_is_a_clear_error_in_parquet(tmp_path, piece_bytes):
    path = mixed_numbers_input(tmp_path, [BIG, 1.5, 7])

    with pytest.raises(DataLayoutError) as caught:
        written(tmp_path, path, "parquet", piece_bytes)

    message = caught.value.one_line()
    assert message.startswith(f"{path}: column 'id' cannot be written as Parquet")
    assert str(BIG) in message and message.endswith("or write JSONL (--output-format jsonl / to_json)")
    assert not is_retryable(caught.value)


def nested(depth: int, leaf=BIG):
    """A value `depth` lists and dicts deep, built by a loop."""
    value = leaf
    for level in range(depth):
        value = [value, 1.5] if level % 2 else {"k": value}
    return value


@pytest.mark.parametrize("piece_bytes", [None, 1 << 20])
def test_a_row_nested_as_deep_as_rows_may_be_is_written_to_jsonl_as_read(tmp_path, piece_bytes):
    # Rows deeper than 200 levels are bad rows (io/rows.py); up to there the writer, a loop, takes them.
    path = tmp_path / "deep.jsonl"
    lines = [{"text": "a", "deep": nested(199)}, {"text": "b", "deep": [1, [2, [3]]]}]
    path.write_text("".join(json.dumps(row) + "\n" for row in lines))

    assert same_json(written(tmp_path, str(path), "jsonl", piece_bytes), lines)


def test_a_value_nested_deeper_than_json_can_write_is_a_clear_error(tmp_path):
    column = np.empty(1, dtype=object)
    column[0] = nested(5000)
    frame = pd.DataFrame({"text": ["a"], "n": [1]}).assign(deep=column)

    with pytest.raises(DataLayoutError) as caught:
        write_frame(frame, str(tmp_path / "o.jsonl"), "jsonl", source="/in/x.parquet")

    assert caught.value.one_line().startswith(
        "/in/x.parquet: column 'deep' holds a value nested 5000 levels deep, deeper than JSON can be written"
    )
    assert not is_retryable(caught.value)
    assert not os.listdir(tmp_path)


def repeated_names_input(tmp_path, names: list[str]) -> str:
    path = str(tmp_path / "dup.parquet")
    columns = [pa.array(["a", "b"]) if name == "text" else pa.array([1, 2]) for name in names]
    pq.write_table(pa.Table.from_arrays(columns, names=names), path)
    return path


READS = {
    "whole": lambda path: read_documents(path),
    "frame": lambda path: read_frame(path),
    "plan": lambda path: plan_pieces(path, os.path.getsize(path), 1),
    "piece": lambda path: read_piece(path, Piece(0, 0, 2), text_field="text"),
    "piece, no text check": lambda path: read_piece(path, Piece(0, 0, 2), text_field=None),
}


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("names, named", [(["text", "x", "x"], "'x'"), (["text", "text", "y"], "'text'")])
def test_a_parquet_file_repeating_a_column_name_is_a_clear_error_wherever_it_is_opened(
    tmp_path, read, names, named
):
    path = repeated_names_input(tmp_path, names)

    with pytest.raises(InputFileError) as caught:
        READS[read](path)

    assert caught.value.one_line() == (
        f"{path}: repeats the column name(s) {named}: one of each would be lost; HINT: rename the columns so "
        "that each name occurs once (pyarrow: table.rename_columns([...])), and write the file again"
    )
    assert not is_retryable(caught.value)


def test_a_struct_repeating_a_field_name_is_the_same_error(tmp_path):
    path = str(tmp_path / "s.parquet")
    inner = pa.StructArray.from_arrays([pa.array([1]), pa.array([2])], names=["k", "k"])
    pq.write_table(pa.table({"text": ["a"], "s": pa.ListArray.from_arrays([0, 1], inner)}), path)

    with pytest.raises(InputFileError, match=r"repeats the column name\(s\) 's\.k'"):
        read_documents(path)


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_a_frame_repeating_a_column_name_is_not_written(tmp_path, fmt):
    frame = pd.DataFrame([["a", 1, 2]], columns=["text", "x", "x"])

    with pytest.raises(DataLayoutError) as caught:
        write_frame(frame, str(tmp_path / f"o.{fmt}"), fmt, source="/in/x.jsonl")

    assert caught.value.one_line().startswith(
        "/in/x.jsonl: the column name(s) 'x' occur more than once: an output holds one column of a name"
    )
    assert not is_retryable(caught.value)
    assert not os.listdir(tmp_path)
