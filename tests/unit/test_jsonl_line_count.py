"""Counting the lines before a JSONL piece: exact, in bounded reads, never a whole line in memory."""

from __future__ import annotations

import gzip
import io
import random
import weakref

import pytest

from hpc_classify.io import columns, jsonl_format
from hpc_classify.io.jsonl_format import _first_line_at
from hpc_classify.io.pieces import iter_stream_pieces
from hpc_classify.io.rows import is_blank_line


def _reference(data: bytes, start: int) -> tuple[int, int, int]:
    """The count a line-by-line read gives (the definition the chunked count must match)."""
    if start <= 0:
        return 0, 0, 0
    offset = lines = rows = 0
    for raw in io.BytesIO(data):
        if offset >= start:
            break
        offset += len(raw)
        lines += 1
        rows += not is_blank_line(raw, lines)
    return offset, lines, rows


@pytest.mark.parametrize("chunk", [1, 2, 3, 5, 64])
def test_the_chunked_count_matches_a_line_by_line_read_at_every_start(monkeypatch, chunk):
    monkeypatch.setattr(jsonl_format, "_COUNT_CHUNK", chunk)
    rng = random.Random(chunk)
    pieces = [b'{"a": 1}', b"", b" ", b"\t\r", b"x", b'  {"b": 2} ', b"\x0b\x0c", b"\xef\xbb\xbf"]
    for _ in range(40):
        lines = [rng.choice(pieces) + rng.choice([b"\n", b"\r\n"]) for _ in range(rng.randint(0, 8))]
        data = rng.choice([b"", b"\xef\xbb\xbf"]) + b"".join(lines) + rng.choice([b"", b"y", b"  "])
        for start in range(len(data) + 2):
            assert _first_line_at(io.BytesIO(data), start) == _reference(data, start), (data, start)


class _ReadsOnly(io.BytesIO):
    """A file that records its largest read and refuses to be read by lines."""

    largest = 0

    def read(self, size=-1):
        assert size is not None and 0 < size, "an unbounded read"
        data = super().read(size)
        self.largest = max(self.largest, len(data))
        return data

    def readline(self, *_):
        raise AssertionError("read by lines")

    def __iter__(self):
        raise AssertionError("read by lines")


def test_a_huge_line_before_the_piece_is_counted_without_reading_it_whole(monkeypatch):
    monkeypatch.setattr(jsonl_format, "_COUNT_CHUNK", 1 << 10)
    data = b'{"a": 1}\n\n{"text": "' + b"x" * (1 << 16) + b'"}\n{"a": 2}\n{"a": 3}\n'
    stream = _ReadsOnly(data)
    start = data.index(b'{"a": 2}') - 3  # inside the huge line: the piece starts at the next line
    assert _first_line_at(stream, start) == (data.index(b'{"a": 2}'), 3, 2)
    assert stream.largest <= 1 << 10


class _Recording(io.BufferedReader):
    """A file that records the longest line and the largest read it hands out."""

    largest = 0

    def readline(self, size=-1):
        line = super().readline(size)
        self.largest = max(self.largest, len(line))
        return line

    def read(self, size=-1):
        data = super().read(size)
        self.largest = max(self.largest, len(data))
        return data


@pytest.mark.parametrize(
    ("tail", "whole"), [(b'{"text": "' + b"x" * (4 << 20) + b'"}\n', False), (b"\n \n", True)]
)
def test_the_column_sampler_does_not_read_the_line_after_its_rows(tmp_path, monkeypatch, tail, whole):
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"text": "a", "id": 1}\n{"text": "b", "z": 2}\n' + tail)
    opened = []
    monkeypatch.setattr(
        columns, "open_decompressed", lambda p: opened.append(_Recording(io.FileIO(p))) or opened[-1]
    )
    sample = columns.sample_columns(str(path), 2)
    assert (sample.columns, sample.rows, sample.whole_file) == (("text", "id", "z"), 2, whole)
    assert opened[0].largest <= 1 << 20


def test_a_streamed_piece_is_not_alive_while_the_next_is_read(tmp_path, monkeypatch):
    path = tmp_path / "a.jsonl.gz"
    path.write_bytes(gzip.compress(b"".join(b'{"text": "t%d"}\n' % i for i in range(300))))
    frames, alive = [], []
    parse = jsonl_format.parse_jsonl_lines

    def spy(*args, **kwargs):
        alive.append(sum(ref() is not None for ref in frames))
        return parse(*args, **kwargs)

    monkeypatch.setattr(jsonl_format, "parse_jsonl_lines", spy)
    for piece in iter_stream_pieces(str(path), 1000, text_field="text"):
        frames.append(weakref.ref(piece.result.frame))
        del piece
    assert len(alive) > 3 and alive == [0] * len(alive)
