"""Pieces of one document file: how a large file is cut, and how one piece is read as a stream.

A piece is the unit of work and of checkpointing inside a file. How a file is cut is its format's business
(`io/formats.py`):

- plain JSONL: byte ranges of about `piece_bytes`, each owning the lines that start in it;
- Parquet: row ranges, by row groups (their sizes uncompressed), a row group larger than `piece_bytes` cut
  into row ranges;
- compressed JSONL (.gz, .zst, .bz2, .xz): not seekable, so it is not cut up front: one task reads it as a stream and
  ends a piece after each `piece_bytes` of decompressed lines (`iter_stream_pieces`).

Every reader returns the same `ReadResult` as a whole-file read, with the file's own row positions as the
frame's index and the file's own line numbers in bad rows: a piece's output is the file's output cut.
A reader holds one piece in memory, never the file.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from hpc_classify.errors import ConfigError
from hpc_classify.io.formats import format_of
from hpc_classify.io.rows import Piece, ReadResult, StreamPiece, TextFields, check_bad_row_policy

__all__ = [
    "Piece",
    "StreamPiece",
    "content_bytes",
    "content_bytes_reads",
    "is_streamed",
    "iter_stream_pieces",
    "plan_pieces",
    "read_piece",
]


def is_streamed(path: str) -> bool:
    """Compressed JSONL: read as one stream, its pieces found while reading (not planned up front)."""
    return format_of(path).streamed


def content_bytes(path: str, size: int, limit: int) -> int:
    """The bytes a whole read of the file holds (`size`: on disk), decompressed (compressed JSONL) or
    uncompressed (Parquet's row groups, from the footer): exact up to `limit`, a number over `limit`
    beyond it. Whether a file is cut is decided on this, not on its size on disk (text compresses 3-10x)."""
    return format_of(path).content_bytes(path, size, limit)


def content_bytes_reads(path: str, size: int, limit: int) -> bool:
    """Whether `content_bytes` opens the file (decompresses it, reads its footer): a compressed JSONL or a
    Parquet file no larger than `limit` on disk. Otherwise it answers `size` at no cost."""
    return format_of(path).content_bytes_reads(size, limit)


def plan_pieces(path: str, size: int, piece_bytes: int) -> list[Piece]:
    """The pieces of a plain JSONL or Parquet file (at least one). Compressed JSONL: see is_streamed."""
    _check_piece_bytes(piece_bytes)
    return format_of(path).plan_pieces(path, size, piece_bytes)


def read_piece(
    path: str,
    piece: Piece,
    *,
    text_field: TextFields = "text",
    on_bad_row: str = "error",
    columns: Sequence[str] | None = None,
) -> ReadResult:
    """Read one planned piece, checking rows as `read_documents` does (text_field=None: objects only, as
    `read_frame`). The frame's index holds the rows' 0-based positions in the file."""
    check_bad_row_policy(on_bad_row)
    return format_of(path).read_piece(path, piece, text_field, on_bad_row, columns)


def iter_stream_pieces(
    path: str,
    piece_bytes: int,
    *,
    text_field: TextFields = "text",
    on_bad_row: str = "error",
    first_index: int = 0,
    skip_lines: int = 0,
    skip_rows: int = 0,
) -> Iterator[StreamPiece]:
    """Read a compressed JSONL file from line `skip_lines` (the end of its last done piece: `skip_rows`
    non-blank lines before it) as consecutive pieces of about `piece_bytes` decompressed bytes each.
    The lines skipped are decompressed, not parsed. The last piece yielded has `last=True` (possibly
    empty, when the file ends exactly at a piece's end)."""
    _check_piece_bytes(piece_bytes)
    yield from format_of(path).iter_stream_pieces(
        path,
        piece_bytes,
        text_field=text_field,
        on_bad_row=on_bad_row,
        first_index=first_index,
        skip_lines=skip_lines,
        skip_rows=skip_rows,
    )


def _check_piece_bytes(piece_bytes: int) -> None:
    if piece_bytes <= 0:
        raise ConfigError(f"piece_bytes must be > 0 to cut a file, not {piece_bytes}")
