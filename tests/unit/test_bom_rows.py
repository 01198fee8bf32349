"""A file opening with a line that holds only a UTF-8 byte order mark: that line is blank (no row), so every
row's position (the frame's index, the lean outputs' `row_number`) is the same read whole, in byte-range
pieces of any size, or streamed from .gz/.zst, and resumed after any streamed piece."""

from __future__ import annotations

import gzip
import json
import os

import pandas as pd
import pytest
import zstandard

from hpc_classify.io.pieces import iter_stream_pieces, plan_pieces, read_piece
from hpc_classify.io.readers import read_documents

BOM = b"\xef\xbb\xbf"


def _file_lines(first: bytes) -> list[bytes]:
    """`first` (a BOM with blanks), then documents, blank lines and two bad rows. Each good document's id is
    its row position as the test means it: 0-based among the non-blank lines, bad rows counted."""
    lines, position = [first], 0
    for i in range(40):
        if i % 7 == 3:
            lines.append(b" \t\n" if i % 2 else b"\n")
        if i in (11, 29):
            lines.append(b"{not json\n")
            position += 1
        lines.append(
            (json.dumps({"id": position, "text": f"document {i} " + "x" * (i % 13)}) + "\n").encode()
        )
        position += 1
    return lines


def _independent_positions(lines: list[bytes]) -> list[int]:
    """Positions of the good rows, counted apart from the package: decode (line 1 as utf-8-sig), strip."""
    positions, position = [], -1
    for number, line in enumerate(lines, start=1):
        text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        if not text.strip():
            continue
        position += 1
        if not text.startswith("{not"):
            positions.append(position)
    return positions


@pytest.fixture(params=[BOM + b"\n", BOM + b"  \r\n"], ids=["bom-newline", "bom-spaces-crlf"])
def lines(request):
    return _file_lines(request.param)


def _rows(results) -> list[int]:
    frame = pd.concat([r.frame for r in results])
    assert frame.index.tolist() == frame["id"].tolist()  # each row at the position its document names
    return frame.index.tolist()


def test_whole_read_counts_the_bom_line_as_blank(tmp_path, lines):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"".join(lines))
    whole = read_documents(str(path), on_bad_row="skip")
    assert _rows([whole]) == _independent_positions(lines)
    assert [b.line for b in whole.bad_rows] == [
        n for n, raw in enumerate(lines, 1) if raw.startswith(b"{not")
    ]


@pytest.mark.parametrize("piece_bytes", [1, 7, 50, 120, 333, 10**6])
def test_pieces_give_the_rows_the_whole_read_gives(tmp_path, lines, piece_bytes):
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"".join(lines))
    whole = read_documents(str(path), on_bad_row="skip")
    pieces = plan_pieces(str(path), os.path.getsize(path), piece_bytes)
    results = [read_piece(str(path), p, on_bad_row="skip") for p in pieces]
    assert _rows(results) == _rows([whole]) == _independent_positions(lines)
    assert [b for r in results for b in r.bad_rows] == whole.bad_rows


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.zst"])
@pytest.mark.parametrize("piece_bytes", [1, 50, 120])
def test_streamed_pieces_and_their_resume_give_the_same_rows(tmp_path, lines, suffix, piece_bytes):
    data = b"".join(lines)
    path = tmp_path / f"bom{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else zstandard.compress(data))
    expected = _independent_positions(lines)
    assert _rows([read_documents(str(path), on_bad_row="skip")]) == expected
    pieces = list(iter_stream_pieces(str(path), piece_bytes, on_bad_row="skip"))
    assert _rows([p.result for p in pieces]) == expected
    assert pieces[-1].end_row == len(expected) + 2  # the two bad rows count
    # A resume after piece k starts from its end_row: the rows after it keep their positions.
    for done in pieces[:3]:
        rest = iter_stream_pieces(
            str(path),
            piece_bytes,
            on_bad_row="skip",
            first_index=done.index + 1,
            skip_lines=done.end_line,
            skip_rows=done.end_row,
        )
        assert _rows([p.result for p in rest]) == [r for r in expected if r >= done.end_row]
