"""The format registry: every document format one object, found by file name or output format name, whose
write, pieces and assemble give back exactly what an independent reader (pandas, gzip, zstd, bz2, lzma) reads."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma

import pandas as pd
import pytest
import zstandard

from hpc_classify.config import OUTPUT_FORMATS
from hpc_classify.errors import ConfigError
from hpc_classify.io.formats import (
    DOCUMENT_FORMATS,
    JSONL,
    JSONL_BZ2,
    JSONL_GZIP,
    JSONL_XZ,
    JSONL_ZSTD,
    PARQUET,
    SUPPORTED_SUFFIXES,
    format_of,
    known_format,
    output_format,
)

FRAME = pd.DataFrame({"id": list(range(7)), "text": [f"doc {i} é" for i in range(7)]})


def _independent_read(path) -> pd.DataFrame:
    """pandas/pyarrow and the compression libraries, not our readers."""
    name = str(path)
    if name.endswith(".parquet"):
        return pd.read_parquet(path)
    data = path.read_bytes()
    if name.endswith(".gz"):
        data = gzip.decompress(data)
    elif name.endswith(".zst"):
        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True).read()
    elif name.endswith(".bz2"):
        data = bz2.decompress(data)  # every stream, as assembled parts are
    elif name.endswith(".xz"):
        data = lzma.decompress(data)
    return pd.DataFrame([json.loads(line) for line in data.decode("utf-8").splitlines()])


def test_every_output_format_name_in_config_has_its_object():
    assert tuple(output_format(name).name for name in OUTPUT_FORMATS) == OUTPUT_FORMATS
    with pytest.raises(ConfigError, match="output format must be one of jsonl, parquet, not 'csv'"):
        output_format("csv")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.jsonl", JSONL),
        ("a.JSON", JSONL),
        ("a.jsonl.gz", JSONL_GZIP),
        ("a.jsonl.zst", JSONL_ZSTD),
        ("a.json.gz", JSONL_GZIP),  # listed too: a corpus of them was skipped as "no document files"
        ("a.JSON.zst", JSONL_ZSTD),
        ("a.jsonl.bz2", JSONL_BZ2),  # refused before, though NeMo's pandas reads them by suffix
        ("a.json.XZ", JSONL_XZ),
        ("d/a.parquet", PARQUET),
        ("a.txt.gz", JSONL_GZIP),  # read as JSONL compressed as its last suffix says, as before
        ("a.txt", JSONL),
    ],
)
def test_format_of_a_file_name(name, expected):
    assert format_of(name) is expected
    assert known_format(name) is (None if name.startswith("a.txt") else expected)


def test_suffixes_are_the_formats_suffixes_longest_match_first():
    assert SUPPORTED_SUFFIXES == (
        ".jsonl.gz",
        ".json.gz",
        ".jsonl.zst",
        ".json.zst",
        ".jsonl.bz2",
        ".json.bz2",
        ".jsonl.xz",
        ".json.xz",
        ".jsonl",
        ".json",
        ".parquet",
    )
    assert [f.streamed for f in DOCUMENT_FORMATS] == [True, True, True, True, False, False]


@pytest.mark.parametrize("fmt", DOCUMENT_FORMATS, ids=repr)
def test_parts_written_then_assembled_read_back_as_the_whole_frame(tmp_path, fmt):
    suffix = fmt.suffixes[0]
    parts = []
    for i, rows in enumerate((FRAME.iloc[:3], FRAME.iloc[3:3], FRAME.iloc[3:])):
        part = tmp_path / f"part{i}{suffix}"
        with open(part, "wb") as out:
            fmt.write(rows, out, str(part))
        parts.append(str(part))
    whole = tmp_path / f"whole{suffix}"
    with open(whole, "wb") as out:
        fmt.assemble(parts, out)
    pd.testing.assert_frame_equal(_independent_read(whole), FRAME)
    result = fmt.read(str(whole), "text", "error")
    pd.testing.assert_frame_equal(result.frame.reset_index(drop=True), FRAME)
    assert list(result.frame.index) == list(range(len(FRAME)))


@pytest.mark.parametrize("fmt", [JSONL, PARQUET], ids=repr)
def test_planned_pieces_read_back_every_row_once_in_order(tmp_path, fmt):
    path = tmp_path / f"f{fmt.suffixes[0]}"
    with open(path, "wb") as out:
        fmt.write(FRAME, out, str(path))
    size = path.stat().st_size
    pieces = fmt.plan_pieces(str(path), size, max(1, size // 3))
    frames = [fmt.read_piece(str(path), p, "text", "error", None).frame for p in pieces]
    assert len(pieces) >= (3 if fmt is JSONL else 1)
    pd.testing.assert_frame_equal(pd.concat(frames), _independent_read(path), check_index_type=False)


# An integer column with a null: pandas alone makes it float64 (3 -> 3.0, 2**53 + 1 -> 2**53).
RECORDS = [
    {"id": 2**53 + 1, "n": 3, "text": "a"},
    {"id": None, "n": 4, "text": "b"},
    {"n": None, "text": "c"},  # no id at all: read as null
    {"id": -(2**63), "n": 5, "text": "d"},
]


def _write_input(path, fmt) -> None:
    if fmt is PARQUET:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {name: [r.get(name) for r in RECORDS] for name in ("id", "n", "text")}
        pq.write_table(
            pa.table(
                columns, schema=pa.schema([("id", pa.int64()), ("n", pa.uint8()), ("text", pa.string())])
            ),
            path,
        )
        return
    data = "".join(json.dumps(r) + "\n" for r in RECORDS).encode()
    if fmt is JSONL_GZIP:
        data = gzip.compress(data)
    elif fmt is JSONL_ZSTD:
        data = zstandard.ZstdCompressor().compress(data)
    elif fmt is JSONL_BZ2:
        data = bz2.compress(data)
    elif fmt is JSONL_XZ:
        data = lzma.compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize("fmt", DOCUMENT_FORMATS, ids=repr)
@pytest.mark.parametrize("out_fmt", [JSONL, PARQUET], ids=repr)
def test_integers_beside_nulls_are_written_back_unchanged(tmp_path, fmt, out_fmt):
    source = tmp_path / f"in{fmt.suffixes[0]}"
    _write_input(source, fmt)
    frames = [fmt.read(str(source), "text", "error").frame]
    if not fmt.streamed:  # and read in pieces
        pieces = fmt.plan_pieces(str(source), source.stat().st_size, 20)
        frames.append(
            pd.concat([fmt.read_piece(str(source), p, "text", "error", None).frame for p in pieces])
        )
    for frame in frames:
        out = tmp_path / f"out{out_fmt.suffixes[0]}"
        with open(out, "wb") as f:
            out_fmt.write(frame, f, str(out))
        if out_fmt is JSONL:
            back = [json.loads(line) for line in out.read_text().splitlines()]
        else:
            back = pd.read_parquet(out, dtype_backend="pyarrow").astype(object).to_dict("records")
        for row, record in zip(back, RECORDS, strict=True):
            got = {k: (None if v is pd.NA else v) for k, v in row.items()}
            assert (got["id"], got["n"], got["text"]) == (record.get("id"), record["n"], record["text"])
            assert all(type(v) is int for v in (got["id"], got["n"]) if v is not None)  # 3, not 3.0


def test_integers_beyond_int64_beside_nulls_are_kept_as_read(tmp_path):
    path = tmp_path / "hashes.jsonl"
    path.write_text('{"h": 18446744073709551615, "text": "a"}\n{"h": null, "text": "b"}\n')
    frame = JSONL.read(str(path), "text", "error").frame
    out = tmp_path / "out.jsonl"
    with open(out, "wb") as f:
        JSONL.write(frame, f, str(out))
    assert [json.loads(line)["h"] for line in out.read_text().splitlines()] == [2**64 - 1, None]


def test_parquet_pieces_whose_column_types_differ_assemble_into_a_readable_file(tmp_path):
    # One piece's column is integers with a null (nullable Int64), the next one's fractional: the
    # assembled file's column is double, and no piece's pandas metadata claims otherwise.
    parts = []
    for i, values in enumerate(([1, None], [2.5, 3.0])):
        part = tmp_path / f"part{i}.parquet"
        frame = pd.DataFrame(
            {"x": pd.array(values, dtype="Int64" if i == 0 else "float64"), "text": ["a", "b"]}
        )
        with open(part, "wb") as f:
            PARQUET.write(frame, f, str(part))
        parts.append(str(part))
    whole = tmp_path / "whole.parquet"
    with open(whole, "wb") as f:
        PARQUET.assemble(parts, f)
    assert pd.read_parquet(whole)["x"].fillna(-1).tolist() == [1.0, -1.0, 2.5, 3.0]
    assert PARQUET.read(str(whole), "text", "error").frame["x"].fillna(-1).tolist() == [1.0, -1.0, 2.5, 3.0]


def test_the_dataset_api_reads_integers_with_nulls_as_pandas_does(tmp_path):
    # As pandas' readers and NeMo's datasets: float64, so that a later file with fractions conforms.
    path = tmp_path / "a.jsonl"
    path.write_text('{"n": 1, "text": "a"}\n{"n": null, "text": "b"}\n')
    assert JSONL.read_frame(str(path), None)["n"].dtype == "float64"
