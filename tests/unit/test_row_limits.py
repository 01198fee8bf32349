"""JSON lines beyond what Python's json reads (nested too deep: RecursionError; an integer over 4300 digits:
ValueError) are bad rows naming file:line, quarantined under skip, in whole reads, pieces and streams; and
the pre-run column sampler passes over them (it crashed the run with a traceback)."""

from __future__ import annotations

import gzip
import json
import os
import sys

import pytest

from hpc_classify.driver.column_checks import check_text_fields
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.columns import sample_columns
from hpc_classify.io.pieces import iter_stream_pieces, plan_pieces, read_piece
from hpc_classify.io.readers import read_documents
from hpc_classify.io.rows import MAX_JSON_DEPTH

DEEP = b'{"text": "deep", "x": ' + b"[" * 3000 + b"]" * 3000 + b"}\n"
HUGE = b'{"text": "huge", "n": ' + b"9" * 5000 + b"}\n"
GOOD = b'{"text": "good", "id": 7}\n'
TOO_DEEP = f"nesting too deep (more than {MAX_JSON_DEPTH} levels of arrays and objects)"
TOO_LONG = f"integer too long (more than {sys.get_int_max_str_digits()} digits)"


def _nested(depth: int) -> bytes:
    """A row `depth` levels deep in all (the row itself is one), half arrays and half objects."""
    inner = b"1"
    for level in range(depth - 1):
        inner = b"[" + inner + b"]" if level % 2 else b'{"k": ' + inner + b"}"
    return b'{"text": "t", "v": ' + inner + b"}\n"


def test_deep_and_huge_rows_are_bad_rows_with_their_lines(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_bytes(DEEP + HUGE + GOOD)
    result = read_documents(str(path), on_bad_row="skip")
    assert result.frame["text"].tolist() == ["good"] and result.frame.index.tolist() == [2]
    assert [(b.line, b.reason) for b in result.bad_rows] == [(1, TOO_DEEP), (2, TOO_LONG)]
    assert result.bad_rows[1].raw == HUGE.decode().rstrip("\n")
    for lines, line, reason in (([GOOD, DEEP], 2, "nesting too deep"), ([HUGE], 1, "integer too long")):
        path.write_bytes(b"".join(lines))
        with pytest.raises(InputFileError, match=f"a.jsonl:{line}: {reason}") as caught:
            read_documents(str(path))
        assert caught.value.line == line and "--on-bad-row skip" in caught.value.hint


def test_the_depth_limit_is_the_same_whatever_the_stack(tmp_path):
    """Rows at the limit are read; one level more is a bad row (json.loads alone fails at a depth that
    depends on the caller's stack, and the writer recurses deeper than the parser)."""
    path = tmp_path / "d.jsonl"
    path.write_bytes(_nested(MAX_JSON_DEPTH) + _nested(MAX_JSON_DEPTH + 1) + b'{"text": "[[[[{{{{"}\n')
    result = read_documents(str(path), on_bad_row="skip")
    assert result.frame.index.tolist() == [0, 2]
    assert [(b.line, b.reason) for b in result.bad_rows] == [(2, TOO_DEEP)]


def test_pieces_and_streams_set_them_aside_alike(tmp_path):
    data = GOOD + DEEP + GOOD * 20 + HUGE + GOOD
    plain = tmp_path / "p.jsonl"
    plain.write_bytes(data)
    pieces = plan_pieces(str(plain), len(data), 4096)
    assert len(pieces) > 1
    bad = [b for p in pieces for b in read_piece(str(plain), p, on_bad_row="skip").bad_rows]
    assert [(b.line, b.reason) for b in bad] == [(2, TOO_DEEP), (23, TOO_LONG)]

    packed = tmp_path / "p.jsonl.gz"
    packed.write_bytes(gzip.compress(data))
    streamed = iter_stream_pieces(str(packed), 4096, on_bad_row="skip")
    assert [(b.line, b.reason) for s in streamed for b in s.result.bad_rows] == [
        (2, TOO_DEEP),
        (23, TOO_LONG),
    ]


def _planned(path) -> PlannedFile:
    return PlannedFile(str(path), os.path.basename(path), os.path.getsize(path))


class _Reader:
    text_field = "text"


@pytest.mark.parametrize("first", [DEEP, HUGE])
def test_the_column_sampler_passes_over_them(tmp_path, first):
    """A file starting with such a row crashed the pre-run check (RecursionError, ValueError): rc 1 and a
    traceback, before any file was read."""
    path = tmp_path / "a.jsonl"
    path.write_bytes(first + GOOD)
    sample = sample_columns(str(path), 1000)
    assert (sample.columns, sample.rows, sample.whole_file) == (("text", "id"), 1, True)
    check_text_fields([_Reader()], [_planned(path)])
    reader = _Reader()
    reader.text_field = "body"
    with pytest.raises(ConfigError, match="--text-field 'body': no row of"):
        check_text_fields([reader], [_planned(path)])


def test_the_sampler_looks_at_max_rows_rows_good_or_bad(tmp_path):
    """A file of bad rows is not read to its end before the run (a 10 GB file in another encoding was)."""
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"not json\n" * 50 + GOOD)
    assert sample_columns(str(path), 10) == sample_columns(str(path), 50)
    assert sample_columns(str(path), 50).rows == 0 and not sample_columns(str(path), 50).whole_file
    assert sample_columns(str(path), 51).columns == ("text", "id")
    assert sample_columns(str(path), 51).whole_file
    # Blank lines are not rows, and a byte order mark opening the file is not part of its first row.
    path.write_bytes(b"\xef\xbb\xbf" + GOOD + b"\n\n" + json.dumps({"text": "b", "z": 1}).encode() + b"\n")
    assert sample_columns(str(path), 2).columns == ("text", "id", "z")
