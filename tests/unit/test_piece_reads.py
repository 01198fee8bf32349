"""io/pieces: a file's pieces, read one by one, are exactly the whole-file read (rows, order, row positions,
bad rows with file line numbers), for plain JSONL, Parquet (row groups, and rows inside a large one) and
compressed JSONL read as a stream (and resumed after its done pieces)."""

from __future__ import annotations

import gzip
import json
import random

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from hpc_classify.errors import InputFileError
from hpc_classify.io.pieces import iter_stream_pieces, plan_pieces, read_piece
from hpc_classify.io.readers import read_documents


def _lines(count: int, seed: int = 7) -> list[bytes]:
    """Documents of varied length, with blank lines and (when asked) bad rows mixed in."""
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        text = " ".join(f"w{rng.randrange(1000)}" for _ in range(rng.randrange(1, 60)))
        lines.append((json.dumps({"id": i, "text": text}) + "\n").encode())
        if i % 17 == 5:
            lines.append(b"  \n")
    return lines


def _whole_and_pieces(path: str, piece_bytes: int, **kwargs):
    whole = read_documents(path, **kwargs)
    import os

    pieces = plan_pieces(path, os.path.getsize(path), piece_bytes)
    results = [read_piece(path, p, **kwargs) for p in pieces]
    return whole, pieces, results


def _assert_same(whole, results):
    joined = pd.concat([r.frame for r in results])
    assert joined["id"].tolist() == whole.frame["id"].tolist()
    assert joined["text"].tolist() == whole.frame["text"].tolist()
    assert joined.index.tolist() == whole.frame.index.tolist()
    assert [b for r in results for b in r.bad_rows] == whole.bad_rows


@pytest.mark.parametrize("piece_bytes", [97, 1000, 4096, 10**9])
def test_jsonl_pieces_are_the_whole_file_exactly_once(tmp_path, piece_bytes):
    path = tmp_path / "docs.jsonl"
    path.write_bytes(b"".join(_lines(300)))
    whole, pieces, results = _whole_and_pieces(str(path), piece_bytes)
    assert len(whole.frame) == 300
    expected_pieces = max(1, -(-path.stat().st_size // piece_bytes))
    assert len(pieces) == expected_pieces
    assert pieces[0].start == 0 and pieces[-1].stop == path.stat().st_size
    _assert_same(whole, results)


def test_jsonl_pieces_keep_bad_rows_with_file_line_numbers(tmp_path):
    lines = _lines(120)
    lines.insert(50, b"{not json\n")
    lines.insert(90, b'{"id": -1}\n')
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    whole, pieces, results = _whole_and_pieces(str(path), 500, on_bad_row="skip")
    assert [b.line for b in whole.bad_rows] == [51, 91]
    assert len(pieces) > 5
    _assert_same(whole, results)
    # under on_bad_row="error", the piece holding line 51 names that line, as a whole-file read does
    holding = next(p for p, r in zip(pieces, results, strict=True) if any(b.line == 51 for b in r.bad_rows))
    with pytest.raises(InputFileError, match=r":51\b"):
        read_piece(str(path), holding)


def test_a_line_longer_than_a_piece_belongs_to_the_piece_it_starts_in(tmp_path):
    path = tmp_path / "long.jsonl"
    long_text = "x" * 5000
    rows = [{"id": 0, "text": "a"}, {"id": 1, "text": long_text}, {"id": 2, "text": "b"}]
    path.write_bytes("".join(json.dumps(r) + "\n" for r in rows).encode())
    whole, pieces, results = _whole_and_pieces(str(path), 64)
    assert sum(len(r.frame) for r in results) == 3
    assert sum(1 for r in results if len(r.frame) == 0) == len(pieces) - 3 + sum(
        1 for r in results if len(r.frame) > 1
    )
    _assert_same(whole, results)


def _parquet(path, row_group_size: int, rows: int = 1000):
    table = pa.table({"id": list(range(rows)), "text": [f"doc {i} " * (i % 13 + 1) for i in range(rows)]})
    pq.write_table(table, path, row_group_size=row_group_size)
    return str(path)


@pytest.mark.parametrize(
    ("row_group_size", "piece_bytes"), [(100, 3000), (1000, 3000), (100, 10**9), (7, 40)]
)
def test_parquet_pieces_by_row_groups_and_row_ranges(tmp_path, row_group_size, piece_bytes):
    path = _parquet(tmp_path / "docs.parquet", row_group_size)
    whole, pieces, results = _whole_and_pieces(path, piece_bytes)
    assert [p.start for p in pieces[1:]] == [p.stop for p in pieces[:-1]]  # contiguous
    assert pieces[0].start == 0 and pieces[-1].stop == 1000
    if row_group_size == 1000 and piece_bytes == 3000:
        assert len(pieces) > 1  # one large row group is cut into row ranges
    _assert_same(whole, results)


def test_parquet_piece_with_null_texts_names_file_rows(tmp_path):
    table = pa.table({"id": [0, 1, 2, 3], "text": ["a", None, "c", None]})
    path = tmp_path / "nulls.parquet"
    pq.write_table(table, path, row_group_size=2)
    whole, pieces, results = _whole_and_pieces(str(path), 1, on_bad_row="skip")
    assert [b.line for b in whole.bad_rows] == [2, 4]
    _assert_same(whole, results)


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
def test_compressed_stream_pieces_and_resume_after_done_pieces(tmp_path, suffix):
    lines = _lines(400)
    data = b"".join(lines)
    path = tmp_path / f"docs{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else zstandard.compress(data))
    whole = read_documents(str(path))
    pieces = list(iter_stream_pieces(str(path), 2000))
    # Independently: a piece ends at the first line end at or after 2,000 decompressed bytes.
    ends, size = [], 0
    for number, line in enumerate(lines, start=1):
        size += len(line)
        if size >= 2000:
            ends.append(number)
            size = 0
    if not ends or ends[-1] != len(lines):
        ends.append(len(lines))
    assert [p.end_line for p in pieces] == ends
    assert [p.index for p in pieces] == list(range(len(pieces)))
    assert [p.last for p in pieces] == [False] * (len(pieces) - 1) + [True]
    _assert_same(whole, [p.result for p in pieces])
    # Resume after piece 3: skip its lines, continue numbering; the rest equals the first read's rest.
    done = pieces[3]
    rest = list(
        iter_stream_pieces(str(path), 2000, first_index=4, skip_lines=done.end_line, skip_rows=done.end_row)
    )
    assert [p.index for p in rest] == [p.index for p in pieces[4:]]
    for again, first in zip(rest, pieces[4:], strict=True):
        assert again.result.frame.equals(first.result.frame)
        assert again.result.frame.index.tolist() == first.result.frame.index.tolist()


@pytest.mark.parametrize("piece_bytes", [1, 10, 50, 10**6])
def test_parquet_with_an_empty_row_group_in_any_piece_size(tmp_path, piece_bytes):
    path = str(tmp_path / "e.parquet")
    with pq.ParquetWriter(path, pa.schema([("id", pa.int64()), ("text", pa.string())])) as writer:
        for ids in ([0, 1], [], [2, 3]):
            writer.write_table(pa.table({"id": ids, "text": [f"t{i}" for i in ids]}, schema=writer.schema))
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    whole, _, results = _whole_and_pieces(path, piece_bytes)
    assert whole.frame["id"].tolist() == [0, 1, 2, 3]
    _assert_same(whole, results)
