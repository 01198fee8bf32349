"""Pieces of one document file: how a large file is cut, and how one piece is read as a stream.

A piece is the unit of work and of checkpointing inside a file. How a file is cut depends on its format:

- plain JSONL: byte ranges of about `piece_bytes`; a piece owns the lines that *start* in its range
  [start, stop), so that pieces never split a line and every line belongs to exactly one piece (the
  layout is arithmetic on the file size: no scan);
- Parquet: row ranges, by row groups (consecutive groups up to `piece_bytes` on disk), a row group larger
  than that cut into row ranges;
- compressed JSONL (.gz, .zst): not seekable, so it is not cut up front: one task reads it as a stream and
  ends a piece after each `piece_bytes` of decompressed lines (`iter_stream_pieces`).

Every reader returns the same `ReadResult` as a whole-file read, with the file's own row positions as the
frame's index and the file's own line numbers in bad rows: a piece's output is the file's output cut.
A reader holds one piece in memory, never the file.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

import pandas as pd

from hpc_classify.errors import ConfigError
from hpc_classify.io.compression import DECOMPRESSION_ERRORS, compression_of, open_decompressed
from hpc_classify.io.readers import (
    BAD_ROW_POLICIES,
    ReadResult,
    check_parquet_table,
    corrupt_file_error,
    is_parquet,
    parse_jsonl_lines,
    records_to_frame,
)

_PARQUET_BATCH_ROWS = 8192  # rows decoded at a time inside a row group larger than a piece


@dataclass(frozen=True)
class Piece:
    """Piece `index` of a file: bytes [start, stop) of a plain JSONL file, rows [start, stop) of Parquet."""

    index: int
    start: int
    stop: int

    def to_list(self) -> list[int]:
        return [self.index, self.start, self.stop]


def is_streamed(path: str) -> bool:
    """Compressed JSONL: read as one stream, its pieces found while reading (not planned up front)."""
    return not is_parquet(path) and compression_of(path) is not None


def plan_pieces(path: str, size: int, piece_bytes: int) -> list[Piece]:
    """The pieces of a plain JSONL or Parquet file (at least one). Compressed JSONL: see is_streamed."""
    if piece_bytes <= 0:
        raise ConfigError(f"piece_bytes must be > 0 to cut a file, not {piece_bytes}")
    if is_streamed(path):
        raise ValueError(f"{path} is compressed: its pieces are found while streaming it")
    if is_parquet(path):
        return _plan_parquet(path, piece_bytes)
    count = max(1, math.ceil(size / piece_bytes))
    bounds = [min(size, i * piece_bytes) for i in range(count)] + [size]
    return [Piece(i, bounds[i], bounds[i + 1]) for i in range(count)]


def _plan_parquet(path: str, piece_bytes: int) -> list[Piece]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        metadata = pq.ParquetFile(path).metadata
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_file_error(path, exc) from exc
    ranges: list[tuple[int, int]] = []
    start = row = pending_bytes = 0
    for group in range(metadata.num_row_groups):
        meta = metadata.row_group(group)
        rows = meta.num_rows
        on_disk = sum(meta.column(c).total_compressed_size for c in range(meta.num_columns))
        if on_disk > piece_bytes:  # a large row group: cut into row ranges of about piece_bytes
            if row > start:
                ranges.append((start, row))
            cuts = min(rows, math.ceil(on_disk / piece_bytes))
            edges = [row + rows * i // cuts for i in range(cuts + 1)]
            ranges.extend(zip(edges[:-1], edges[1:], strict=True))
            start, pending_bytes = row + rows, 0
        elif pending_bytes + on_disk > piece_bytes and row > start:
            ranges.append((start, row))
            start, pending_bytes = row, on_disk
        else:
            pending_bytes += on_disk
        row += rows
    if row > start or not ranges:
        ranges.append((start, row))
    return [Piece(i, lo, hi) for i, (lo, hi) in enumerate(ranges)]


def read_piece(
    path: str,
    piece: Piece,
    *,
    text_field: str | None = "text",
    on_bad_row: str = "error",
    columns: Sequence[str] | None = None,
) -> ReadResult:
    """Read one planned piece, checking rows as `read_documents` does (text_field=None: objects only, as
    `read_frame`). The frame's index holds the rows' 0-based positions in the file."""
    if on_bad_row not in BAD_ROW_POLICIES:
        raise ConfigError(f"on_bad_row must be one of {', '.join(BAD_ROW_POLICIES)}, not {on_bad_row!r}")
    if is_parquet(path):
        return _read_parquet_piece(path, piece, text_field, on_bad_row, columns)
    try:
        with open(path, "rb") as stream:
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
        raise corrupt_file_error(path, exc) from exc
    return _jsonl_result(records, bad, positions, text_field, columns)


def _first_line_at(stream: BinaryIO, start: int) -> tuple[int, int, int]:
    """(offset of the first line starting at or after `start`, lines before it, non-blank lines before it).

    Counting the lines before a piece reads the file up to it: that is what gives bad rows their file line
    numbers and lean outputs their row numbers, exactly as a whole-file read would."""
    if start <= 0:
        return 0, 0, 0
    offset = lines = rows = 0
    for raw in stream:
        if offset >= start:
            break
        offset += len(raw)
        lines += 1
        rows += bool(raw.strip())
    return offset, lines, rows


def _lines_starting_before(stream: BinaryIO, offset: int, stop: int) -> Iterator[bytes]:
    for raw in stream:
        if offset >= stop:
            return
        offset += len(raw)
        yield raw


def _jsonl_result(
    records: list[dict],
    bad: list,
    positions: list[int],
    text_field: str | None,
    columns: Sequence[str] | None,
) -> ReadResult:
    frame = records_to_frame(records, text_field)
    frame.index = pd.RangeIndex(0) if not positions else pd.Index(positions, dtype="int64")
    if columns is not None:
        keep = [c for c in columns if c in frame.columns]
        if text_field is not None and text_field in frame.columns and text_field not in keep:
            keep.append(text_field)
        frame = frame[keep]
    return ReadResult(frame=frame, bad_rows=bad)


def _read_parquet_piece(
    path: str, piece: Piece, text_field: str | None, on_bad_row: str, columns: Sequence[str] | None
) -> ReadResult:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        wanted = None
        if columns is not None:
            present = set(parquet.schema_arrow.names)
            extra = [text_field] if text_field else []
            wanted = [c for c in dict.fromkeys([*columns, *extra]) if c in present]
        tables = list(_parquet_rows(parquet, piece.start, piece.stop, wanted))
        table = pa.concat_tables(tables) if tables else parquet.schema_arrow.empty_table()
        if wanted is not None and not tables:
            table = table.select(wanted)
    except (pa.ArrowException, OSError) as exc:
        raise corrupt_file_error(path, exc) from exc
    if text_field is None:
        frame = table.to_pandas()
        frame.index = pd.RangeIndex(piece.start, piece.start + len(frame))
        return ReadResult(frame=frame)
    frame, bad = check_parquet_table(path, table, text_field, on_bad_row, first_row=piece.start)
    return ReadResult(frame=frame, bad_rows=bad)


def _parquet_rows(parquet: Any, start: int, stop: int, columns: list[str] | None) -> Iterator[Any]:
    """Tables holding rows [start, stop) of the file, decoded a row group (or a batch of one) at a time."""
    import pyarrow as pa

    metadata = parquet.metadata
    first = 0
    for group in range(metadata.num_row_groups):
        rows = metadata.row_group(group).num_rows
        lo, hi = max(start, first), min(stop, first + rows)
        if lo < hi:
            if lo == first and hi == first + rows:
                yield parquet.read_row_group(group, columns=columns)
            else:  # part of a large row group: stream its batches, keep the slice
                at = first
                for batch in parquet.iter_batches(
                    batch_size=_PARQUET_BATCH_ROWS, row_groups=[group], columns=columns
                ):
                    b_lo, b_hi = max(lo, at), min(hi, at + batch.num_rows)
                    if b_lo < b_hi:
                        yield pa.Table.from_batches([batch.slice(b_lo - at, b_hi - b_lo)])
                    at += batch.num_rows
                    if at >= hi:
                        break
        first += rows
        if first >= stop:
            break


@dataclass
class StreamPiece:
    """One piece of a compressed file read as a stream: its rows, and where it ends in the file."""

    index: int
    result: ReadResult
    first_line: int  # 1-based line number of its first line
    end_line: int  # lines of the file up to the end of this piece
    end_row: int  # non-blank lines of the file up to the end of this piece
    last: bool  # the file ends with this piece


def iter_stream_pieces(
    path: str,
    piece_bytes: int,
    *,
    text_field: str | None = "text",
    on_bad_row: str = "error",
    first_index: int = 0,
    skip_lines: int = 0,
    skip_rows: int = 0,
) -> Iterator[StreamPiece]:
    """Read a compressed JSONL file from line `skip_lines` (the end of its last done piece: `skip_rows`
    non-blank lines before it) as consecutive pieces of about `piece_bytes` decompressed bytes each.
    The lines skipped are decompressed, not parsed. The last piece yielded has `last=True` (possibly
    empty, when the file ends exactly at a piece's end)."""
    if piece_bytes <= 0:
        raise ConfigError(f"piece_bytes must be > 0 to cut a file, not {piece_bytes}")
    try:
        with open_decompressed(path) as stream:
            skipped = sum(1 for _ in itertools.islice(stream, skip_lines))
            if skipped < skip_lines:
                raise corrupt_file_error(
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
                rows = sum(1 for raw in chunk if raw.strip())
                result = _jsonl_result(records, bad, positions, text_field, None)
                yield StreamPiece(index, result, line + 1, line + len(chunk), row + rows, last)
                if last:
                    return
                index, line, row = index + 1, line + len(chunk), row + rows
    except DECOMPRESSION_ERRORS as exc:
        raise corrupt_file_error(path, exc) from exc
    except OSError as exc:
        raise corrupt_file_error(path, exc) from exc


def _has_more(stream: Any) -> bool:
    """Whether the stream holds another byte, without consuming it (peek on buffered readers)."""
    peek = getattr(stream, "peek", None)
    if peek is not None:
        return bool(peek(1))
    position = stream.tell()  # gzip.GzipFile: tell/seek back within the decompressed stream are cheap
    more = bool(stream.read(1))
    stream.seek(position)
    return more
