"""Input column types written as a user expects, or a clear error that is not retried: a Parquet input's
Map column stays a map in Parquet output (whole, or assembled from pieces) and is a JSON object in JSONL; a
Decimal is a JSON string of its exact digits; a value neither format can hold names the file and column."""

from __future__ import annotations

import io
import json
import os
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.driver.failures import is_retryable
from hpc_classify.errors import DataLayoutError
from hpc_classify.io.formats import PARQUET
from hpc_classify.io.pieces import plan_pieces, read_piece
from hpc_classify.io.readers import read_documents
from hpc_classify.io.writers import write_frame

MAP = pa.map_(pa.string(), pa.int64())


def _map_input(tmp_path) -> tuple[str, list]:
    """40 rows in row groups of 10: maps with entries, one null, and a row group of empty maps only."""
    maps = [[("k", i), ("j", -i)] if i < 20 else [] if i < 30 else [("z", i)] for i in range(40)]
    maps[3] = None
    path = str(tmp_path / "m.parquet")
    table = pa.table({"text": [f"doc {i}" for i in range(40)], "m": pa.array(maps, MAP)})
    pq.write_table(table, path, row_group_size=10)
    return path, maps


def test_a_parquet_map_column_stays_a_map_in_parquet_output_whole_and_in_pieces(tmp_path):
    path, maps = _map_input(tmp_path)
    whole = str(tmp_path / "whole.parquet")
    write_frame(read_documents(path, text_field="text").frame, whole, "parquet", source=path)
    parts = []
    for piece in plan_pieces(path, os.path.getsize(path), 1):  # one piece per row: some only empty maps
        parts.append(str(tmp_path / f"part{piece.index}.parquet"))
        write_frame(read_piece(path, piece, text_field="text").frame, parts[-1], "parquet", source=path)
    out = io.BytesIO()
    PARQUET.assemble(parts, out)

    assert len(parts) == 40
    for table in (pq.read_table(whole), pq.read_table(pa.BufferReader(out.getvalue()))):
        assert table.schema.field("m").type == MAP
        assert table.column("m").to_pylist() == maps


def test_a_parquet_map_column_is_a_json_object_in_jsonl_output(tmp_path):
    path, maps = _map_input(tmp_path)
    out = tmp_path / "m.jsonl"

    write_frame(read_documents(path, text_field="text").frame, str(out), "jsonl", source=path)

    expected = [None if m is None else dict(m) for m in maps]
    assert [json.loads(line)["m"] for line in out.read_text().splitlines()] == expected
    assert expected[0] == {"k": 0, "j": 0} and expected[25] == {}


def test_a_map_with_a_repeated_key_is_a_clear_error_naming_file_and_column(tmp_path):
    path = str(tmp_path / "dup.parquet")
    pq.write_table(pa.table({"text": ["a"], "m": pa.array([[("k", 1), ("k", 2)]], MAP)}), path)

    with pytest.raises(DataLayoutError) as caught:
        write_frame(
            read_documents(path, text_field="text").frame, str(tmp_path / "o.jsonl"), "jsonl", source=path
        )

    assert caught.value.one_line() == (
        f"{path}: column 'm' holds a map with the key 'k' twice, which has no JSON form; HINT: write Parquet "
        "(--output-format parquet / to_parquet); or drop the column (columns=[...] / --keep-columns "
        "without it), or convert it before writing JSONL"
    )
    assert not is_retryable(caught.value)


def test_a_decimal_column_is_written_to_jsonl_as_its_exact_digits(tmp_path):
    values = [Decimal("1234567890123456789012345678.0123456789"), Decimal("0"), Decimal("-0.5"), None]
    path = str(tmp_path / "d.parquet")
    pq.write_table(
        pa.table({"text": ["a", "b", "c", "d"], "dec": pa.array(values, pa.decimal128(38, 10))}), path
    )
    out = tmp_path / "d.jsonl"

    write_frame(read_documents(path, text_field="text").frame, str(out), "jsonl", source=path)

    written = [json.loads(line)["dec"] for line in out.read_text().splitlines()]
    assert written == ["1234567890123456789012345678.0123456789", "0.0000000000", "-0.5000000000", None]
    assert [Decimal(w) for w in written[:3]] == values[:3]  # exact: the scale's digits, no exponent


def test_a_value_json_cannot_hold_is_a_clear_error_naming_file_and_column(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b"], "z": [1 + 2j, None]}, dtype=object)

    with pytest.raises(DataLayoutError) as caught:
        write_frame(frame, str(tmp_path / "o.jsonl"), "jsonl", source="/in/x.jsonl")

    assert str(caught.value).startswith(
        "/in/x.jsonl: column 'z' holds a complex value, which has no JSON form"
    )
    assert not is_retryable(caught.value)


def test_a_column_parquet_cannot_hold_is_a_clear_error_naming_file_and_column(tmp_path):
    frame = pd.DataFrame({"text": ["a", "b"], "mixed": [1, "one"]})

    with pytest.raises(DataLayoutError) as caught:
        write_frame(frame, str(tmp_path / "o.parquet"), "parquet", source="/in/x.jsonl")

    message = caught.value.one_line()
    assert message.startswith("/in/x.jsonl: column 'mixed' cannot be written as Parquet (")
    assert message.endswith(
        "HINT: give the column one Arrow type, drop it (--keep-columns / columns=[...] without it), or write "
        "JSONL (--output-format jsonl / to_json)"
    )
    assert not is_retryable(caught.value)
    assert not os.listdir(tmp_path)  # nothing left behind
