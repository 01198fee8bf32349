"""JSON Lines documents (.jsonl, .json; compressed: .gz, .zst, .bz2, .xz): read, cut, write, assemble.

Plain JSONL is cut into byte ranges of about `piece_bytes`; a piece owns the lines that *start* in its range
[start, stop), so pieces never split a line and every line belongs to exactly one piece (the layout is
arithmetic on the file size: no scan). Compressed JSONL is not seekable, so it is not cut up front: one task
reads it as a stream and ends a piece after each `piece_bytes` of decompressed lines.
"""

from __future__ import annotations

import itertools
import math
import re
import shutil
from collections.abc import Iterator, Sequence
from typing import Any, BinaryIO

import pandas as pd

from hpc_classify.io.compression import DECOMPRESSION_ERRORS, decompressed_size_within, open_decompressed
from hpc_classify.io.file_head import check_jsonl_head
from hpc_classify.io.json_lines import frame_rows, write_jsonl_rows
from hpc_classify.io.rows import (
    UTF8_BOM,
    Piece,
    ReadResult,
    StreamPiece,
    TextFields,
    as_pandas_reads_it,
    corrupt_file_error,
    import_cudf,
    is_blank_line,
    parse_jsonl_lines,
    records_to_frame,
    text_fields,
)

_COPY_CHUNK = 8 << 20
_COUNT_CHUNK = 1 << 20  # bytes read at a time while counting the lines before a piece
_NON_SPACE = re.compile(rb"[^ \t\n\r\x0b\x0c]")  # what bytes.strip() keeps: a line holding one is a row
_BLANK_LINE = re.compile(rb"(?m)^[ \t\r\x0b\x0c]*\n")


class JsonlFormat:
    """JSONL with one compression (None, "gzip", "zstd", "bz2" or "xz"); `suffixes` are the names it is
    recognised by."""

    name = "jsonl"
    output_suffix = ".jsonl"
    pieces_in_rows = False  # pieces are byte ranges of the file

    def __init__(self, compression: str | None, suffixes: tuple[str, ...]):
        self.compression = compression
        self.suffixes = suffixes

    def __repr__(self) -> str:
        return f"JsonlFormat({self.compression!r})"

    @property
    def streamed(self) -> bool:
        """Compressed: read as one stream, its pieces found while reading (not planned up front)."""
        return self.compression is not None

    def corrupt_error(self, path: str, exc: BaseException):
        return corrupt_file_error(path, self.compression or "text", exc)

    def read(
        self, path: str, text_field: TextFields, on_bad_row: str, columns: Sequence[str] | None = None
    ) -> ReadResult:
        """The whole file (text_field=None: objects only, no text checks; several: each checked), rows
        indexed by file position."""
        try:
            with open_decompressed(path) as stream:
                check_jsonl_head(path, stream, self.compression)
                records, bad, positions = parse_jsonl_lines(path, stream, text_field, on_bad_row)
        except DECOMPRESSION_ERRORS as exc:
            raise self.corrupt_error(path, exc) from exc
        except (
            OSError
        ) as exc:  # gzip.BadGzipFile and bz2's bad data are OSErrors; so are read errors mid-file
            raise self.corrupt_error(path, exc) from exc
        return _result(records, bad, positions, text_field, columns)

    def read_frame(self, path: str, columns: Sequence[str] | None) -> pd.DataFrame:
        """The whole file as pandas, objects only, with a fresh RangeIndex (as `pandas.read_json` gives)."""
        frame = as_pandas_reads_it(self.read(path, None, "error").frame.reset_index(drop=True))
        if columns is not None:
            frame = frame[[c for c in columns if c in frame.columns]]
        return frame

    def read_cudf(self, path: str, columns: Sequence[str] | None) -> Any:
        try:  # cudf reads the file itself: what file_head finds is said as for the other reads
            with open_decompressed(path) as stream:
                check_jsonl_head(path, stream, self.compression)
        except (*DECOMPRESSION_ERRORS, OSError) as exc:
            raise self.corrupt_error(path, exc) from exc
        frame = import_cudf().read_json(path, lines=True, compression=self.compression)
        if columns is not None:
            frame = frame[[c for c in columns if c in frame.columns]]
        return frame

    def content_bytes(self, path: str, size: int, limit: int) -> int:
        """The bytes a whole read of the file (`size` bytes on disk) decompresses: exact up to `limit`, a
        number over `limit` beyond it. A compressed file no larger than `limit` on disk is decompressed
        (up to `limit` + 1 bytes) to know, as text compresses 3-10x; a corrupt one counts its size on disk
        (its read says what is wrong)."""
        if not self.content_bytes_reads(size, limit):
            return size
        try:
            within = decompressed_size_within(path, limit)
        except (*DECOMPRESSION_ERRORS, OSError):
            return size
        return limit + 1 if within is None else within

    def content_bytes_reads(self, size: int, limit: int) -> bool:
        """Whether `content_bytes` opens the file (a compressed one no larger than `limit` on disk); else
        it answers `size` at no cost."""
        return self.compression is not None and size <= limit

    def plan_pieces(self, path: str, size: int, piece_bytes: int) -> list[Piece]:
        if self.streamed:
            raise ValueError(f"{path} is compressed: its pieces are found while streaming it")
        count = max(1, math.ceil(size / piece_bytes))
        bounds = [min(size, i * piece_bytes) for i in range(count)] + [size]
        return [Piece(i, bounds[i], bounds[i + 1]) for i in range(count)]

    def read_piece(
        self,
        path: str,
        piece: Piece,
        text_field: TextFields,
        on_bad_row: str,
        columns: Sequence[str] | None,
    ) -> ReadResult:
        try:
            with open(path, "rb") as stream:
                check_jsonl_head(path, stream, None)  # every piece: each would read its lines as bad rows
                offset, lines_before, rows_before = _first_line_at(stream, piece.start)
                stream.seek(offset)
                records, bad, positions = parse_jsonl_lines(
                    path,
                    _lines_starting_before(stream, offset, piece.stop),
                    text_field,
                    on_bad_row,
                    first_lineno=lines_before + 1,
                    first_position=rows_before,
                )
        except OSError as exc:
            raise self.corrupt_error(path, exc) from exc
        return _result(records, bad, positions, text_field, columns)

    def iter_stream_pieces(
        self,
        path: str,
        piece_bytes: int,
        *,
        text_field: TextFields,
        on_bad_row: str,
        first_index: int,
        skip_lines: int,
        skip_rows: int,
    ) -> Iterator[StreamPiece]:
        try:
            with open_decompressed(path) as stream:
                check_jsonl_head(path, stream, self.compression)
                skipped = sum(1 for _ in itertools.islice(stream, skip_lines))
                if skipped < skip_lines:
                    raise self.corrupt_error(
                        path, EOFError(f"the file ends at line {skipped}, before line {skip_lines}")
                    )
                index, line, row = first_index, skip_lines, skip_rows
                while True:
                    chunk, size = [], 0
                    while size < piece_bytes:
                        raw = stream.readline()
                        if not raw:
                            break
                        chunk.append(raw)
                        size += len(raw)
                    last = size < piece_bytes or not _has_more(stream)
                    records, bad, positions = parse_jsonl_lines(
                        path, chunk, text_field, on_bad_row, first_lineno=line + 1, first_position=row
                    )
                    rows = sum(not is_blank_line(raw, n) for n, raw in enumerate(chunk, start=line + 1))
                    result = _result(records, bad, positions, text_field, None)
                    yield StreamPiece(index, result, line + 1, line + len(chunk), row + rows, last)
                    if last:
                        return
                    index, line, row = index + 1, line + len(chunk), row + rows
                    del chunk, records, bad, positions, result  # not alive while the next piece is read
        except DECOMPRESSION_ERRORS as exc:
            raise self.corrupt_error(path, exc) from exc
        except OSError as exc:
            raise self.corrupt_error(path, exc) from exc

    def write(
        self, df: pd.DataFrame, fileobj: BinaryIO, path: str, source: str | None = None, types: Any = None
    ) -> None:
        """`df` (index dropped) as JSONL, compressed as `path`'s extension says; `source` as `write_frame`'s
        (`types`, Parquet's Arrow types, mean nothing to JSON)."""
        write_jsonl_rows(frame_rows(df, source), fileobj, path, source)

    def assemble(self, parts: Sequence[str], out: BinaryIO, source: str | None = None) -> None:
        """Parts written by `write`, in order: lines concatenate, and so do gzip members, zstd frames and
        bzip2 and xz streams (`source`, the input file, is for Parquet's errors: concatenation changes no
        value)."""
        concat_files(parts, out)


def concat_files(paths: Sequence[str], out: BinaryIO) -> None:
    for path in paths:
        with open(path, "rb") as part:
            shutil.copyfileobj(part, out, _COPY_CHUNK)


def _result(
    records: list[dict],
    bad: list,
    positions: list[int],
    text_field: TextFields,
    columns: Sequence[str] | None,
) -> ReadResult:
    frame = records_to_frame(records, text_field)
    frame.index = pd.RangeIndex(0) if not positions else pd.Index(positions, dtype="int64")
    if columns is not None:
        keep = [c for c in columns if c in frame.columns]
        keep += [f for f in text_fields(text_field) if f in frame.columns and f not in keep]
        frame = frame[keep]
    return ReadResult(frame=frame, bad_rows=bad)


def _first_line_at(stream: BinaryIO, start: int) -> tuple[int, int, int]:
    """(offset of the first line starting at or after `start`, lines before it, non-blank lines before it).

    Counting the lines before a piece reads the file up to it: that is what gives bad rows their file line
    numbers and lean outputs their row numbers, exactly as a whole-file read would. It reads fixed-size
    chunks and counts their newlines, never a whole line: a 300 MB line before the piece is not loaded, and
    the scan runs at memchr speed rather than a Python step per line."""
    if start <= 0:
        return 0, 0, 0
    stream.seek(0)
    lines = rows = 0
    # The line the scan is inside: bytes seen, and more than whitespace among them. A byte order mark
    # opening the file is a byte of line 1 but not of its row (`is_blank_line`).
    in_line = stream.read(len(UTF8_BOM)) == UTF8_BOM
    base = len(UTF8_BOM) if in_line else stream.seek(0)
    nonblank = False
    while chunk := stream.read(_COUNT_CHUNK):
        stop = chunk.find(b"\n", max(0, start - 1 - base))  # the newline ending the line `start` falls in
        end = len(chunk) if stop < 0 else stop + 1
        first = chunk.find(b"\n", 0, end)
        if first < 0:
            in_line = True
            nonblank = nonblank or _NON_SPACE.search(chunk, 0, end) is not None
        else:
            nonblank = nonblank or _NON_SPACE.search(chunk, 0, first) is not None
            last = chunk.rfind(b"\n", 0, end)
            whole = chunk.count(b"\n", first + 1, last + 1)  # the lines wholly inside the chunk
            blank = sum(1 for _ in _BLANK_LINE.finditer(chunk, first + 1, last + 1))
            lines += 1 + whole
            rows += nonblank + whole - blank
            in_line = last + 1 < end
            nonblank = _NON_SPACE.search(chunk, last + 1, end) is not None
        if stop >= 0:
            return base + end, lines, rows
        base += len(chunk)
    return base, lines + in_line, rows + (in_line and nonblank)


def _lines_starting_before(stream: BinaryIO, offset: int, stop: int) -> Iterator[bytes]:
    for raw in stream:
        if offset >= stop:
            return
        offset += len(raw)
        yield raw


def _has_more(stream: Any) -> bool:
    """Whether the stream holds another byte, without consuming it (peek on buffered readers)."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return bool(peek(1))
    position = stream.tell()  # gzip.GzipFile: tell/seek back within the decompressed stream are cheap
    more = bool(stream.read(1))
    stream.seek(position)
    return more
