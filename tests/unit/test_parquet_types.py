"""Parquet outputs keep their input columns' Arrow types (io/parquet_types): whole files, pieces and their
assembly, and DocumentDataset's read_parquet -> to_parquet. pandas alone changed them: decimal128(10, 2)
came out decimal128(4, 2), dictionary<string, int32> with int8 indices or as large_string, string as
large_string, an int32 column with nulls as double. A column the user gives another dtype keeps that one;
prediction columns have their declared types, also in a piece without rows."""

from __future__ import annotations

import datetime
import decimal
import io
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.classifiers.aegis import InstructionDataGuardClassifier
from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.classifiers.combine import output_types
from hpc_classify.classifiers.fineweb import FineWebEduClassifier
from hpc_classify.datasets import DocumentDataset
from hpc_classify.io.formats import PARQUET
from hpc_classify.io.parquet_types import frame_to_table
from hpc_classify.io.pieces import plan_pieces, read_piece

UTC = datetime.UTC


def typed_table(rows: int, first_id: int = 0) -> pa.Table:
    """Columns whose types pandas does not carry; `late` is null in the first half of the rows."""
    return pa.table(
        {
            "id": pa.array(range(first_id, first_id + rows), pa.int32()),
            "text": pa.array([f"document {i} " * 8 for i in range(rows)], pa.string()),
            "price": pa.array([decimal.Decimal(i) / 4 for i in range(rows)], pa.decimal128(10, 2)),
            "lang": pa.array([("en", "de", "fr")[i % 3] for i in range(rows)]).dictionary_encode(),
            "late": pa.array([None if i < rows // 2 else f"l{i}" for i in range(rows)], pa.string()),
            "empty": pa.array([None] * rows, pa.string()),
            "count": pa.array([None if i % 5 == 0 else i for i in range(rows)], pa.int32()),
            "seen": pa.array(
                [
                    datetime.datetime(2024, 1, 1, tzinfo=UTC) + datetime.timedelta(milliseconds=i)
                    for i in range(rows)
                ],
                pa.timestamp("ms", tz="UTC"),
            ),
            "url": pa.array([f"http://x/{i}" for i in range(rows)], pa.large_string()),
        }
    )


def write_input(path, rows: int = 120, row_group_size: int = 20, first_id: int = 0) -> pa.Table:
    table = typed_table(rows, first_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, row_group_size=row_group_size)
    return pq.read_table(path)  # as stored: dictionary indices and all


def assert_columns_kept(written: pa.Table, source: pa.Table) -> None:
    for field in source.schema:
        assert written.schema.field(field.name).type == field.type, field.name
        assert written.column(field.name).to_pylist() == source.column(field.name).to_pylist(), field.name


@pytest.mark.parametrize("piece_bytes", [1 << 30, 1500])
def test_a_parquet_file_keeps_its_column_types_whole_and_in_pieces(tmp_path, piece_bytes):
    path = tmp_path / "in.parquet"
    source = write_input(path)
    pieces = plan_pieces(str(path), os.path.getsize(path), piece_bytes)
    assert len(pieces) == 1 if piece_bytes > 1500 else len(pieces) >= 4

    parts = []
    for piece in pieces:  # as the driver reads (text checked) and writes each piece
        frame = read_piece(str(path), piece, text_field="text").frame
        parts.append(str(tmp_path / f"part{piece.index}.parquet"))
        with open(parts[-1], "wb") as out:
            PARQUET.write(frame, out, parts[-1], source=str(path))
        assert pq.read_schema(parts[-1]).remove_metadata().equals(source.schema.remove_metadata())
    assembled = io.BytesIO()
    PARQUET.assemble(parts, assembled)

    assert_columns_kept(pq.read_table(pa.BufferReader(assembled.getvalue())), source)


@pytest.mark.parametrize(
    "read, write",
    [
        ({}, {}),
        ({"add_filename": True}, {"write_to_filename": True}),
        ({"blocksize": 1500}, {}),  # pieces of the file, one partition each
        ({"files_per_partition": 2}, {}),
    ],
)
def test_a_dataset_read_and_written_keeps_parquet_column_types(tmp_path, read, write):
    sources = [
        write_input(tmp_path / "in" / f"{name}.parquet", first_id=i * 1000) for i, name in enumerate("ab")
    ]
    dataset = DocumentDataset.read_parquet(str(tmp_path / "in"), **read)
    dataset.to_parquet(str(tmp_path / "out"), **write)

    written = pq.read_table(tmp_path / "out").select(sources[0].column_names).sort_by("id")
    assert_columns_kept(written, pa.concat_tables(sources))


def test_a_column_the_user_gives_another_dtype_is_written_with_it(tmp_path):
    write_input(tmp_path / "in" / "a.parquet")
    dataset = DocumentDataset.read_parquet(str(tmp_path / "in"))

    def change(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.assign(
            count=frame["count"] / 2,  # halves: no longer int32
            price=frame["price"].astype("float64"),
            url=frame["url"].str.len(),
            seen=frame["seen"].dt.tz_convert("Europe/Paris"),
            lang=frame["lang"].cat.codes,
        )

    dataset.map_partitions(change, meta=change(dataset.df._meta)).to_parquet(str(tmp_path / "out"))

    schema = pq.read_schema(tmp_path / "out" / "part.0.parquet")
    assert schema.field("count").type == pa.float64()
    assert schema.field("price").type == pa.float64()
    assert schema.field("url").type == pa.int64()
    assert schema.field("seen").type == pa.timestamp("ms", tz="Europe/Paris")
    assert schema.field("lang").type == pa.int8()
    assert schema.field("id").type == pa.int32()  # the columns left alone keep theirs


def test_values_that_no_longer_fit_their_input_type_are_written_with_their_own():
    frame = pd.DataFrame(
        {"n": pd.Series([1.5, 2.0]), "d": pd.Series([decimal.Decimal("1.234"), None], dtype=object)}
    )
    table = frame_to_table(frame, {"n": pa.int32(), "d": pa.decimal128(10, 2)}, "in.parquet")
    assert table.schema.field("n").type == pa.float64()
    assert table.column("d").to_pylist() == [decimal.Decimal("1.234"), None]


def test_strings_without_an_input_type_are_written_as_string():
    frame = pd.DataFrame({"s": pd.Series(["a", None], dtype="str"), "t": ["x", "y"], 0: [1, 2]})
    table = frame_to_table(frame, {}, "x.jsonl")
    assert table.schema.names == ["s", "t", "0"]  # a name that is not a string, as pyarrow stores it
    assert table.schema.types == [pa.string(), pa.string(), pa.int64()]


def test_prediction_columns_have_their_declared_types_also_without_rows():
    classifiers = [
        DomainClassifier(prob_column="domain_prob"),
        FineWebEduClassifier(),
        InstructionDataGuardClassifier(),
    ]
    types = output_types(classifiers)
    assert types["domain_prob"] == pa.list_(pa.float64())
    assert types["domain_pred"] == pa.string()
    assert types["fineweb-edu-score"] == pa.float32() and types["fineweb-edu-score-int"] == pa.int64()
    assert types["is_poisoned"] == pa.bool_()
    # An empty piece's columns, as the classifiers' output_meta make them.
    empty = pd.DataFrame(
        {column: pd.Series([], dtype=dtype) for c in classifiers for column, dtype in c.output_meta().items()}
    )
    schema = frame_to_table(empty, types, "in.jsonl").schema
    assert {name: schema.field(name).type for name in schema.names} == types
