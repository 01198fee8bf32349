"""Compression chosen by file extension: plain, gzip (.gz) or zstandard (.zst), for reading and writing."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

import zstandard

# Exceptions the decompressors raise on truncated or corrupt input; readers turn them into InputFileError.
DECOMPRESSION_ERRORS: tuple[type[BaseException], ...] = (
    gzip.BadGzipFile,
    EOFError,
    zlib.error,
    zstandard.ZstdError,
)


def compression_of(path: str) -> str | None:
    """Return "gzip", "zstd" or None from the file name's last suffix."""
    lower = str(path).lower()
    if lower.endswith(".gz"):
        return "gzip"
    if lower.endswith(".zst"):
        return "zstd"
    return None


@contextmanager
def open_decompressed(path: str) -> Iterator[BinaryIO]:
    """Open `path` for binary reading, decompressing by extension; iterating yields lines ending in b"\\n"."""
    kind = compression_of(path)
    with open(path, "rb") as raw:
        if kind == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        elif kind == "zstd":
            # read_across_frames: files made by concatenating zstd frames (pzstd, appends) read in full.
            reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True, closefd=False)
            # The zstd reader has no efficient readline; a BufferedReader gives linear-time line iteration.
            with io.BufferedReader(reader, buffer_size=1 << 20) as stream:
                yield stream
        else:
            yield raw


@contextmanager
def open_compressed_writer(fileobj: BinaryIO, path: str) -> Iterator[BinaryIO]:
    """Wrap an open binary file so bytes written are compressed as `path`'s extension says.

    The wrapper is finished on exit but `fileobj` stays open, so the caller can still fsync it.
    """
    kind = compression_of(path)
    if kind == "gzip":
        # mtime=0: identical content gives identical bytes (reproducible outputs).
        with gzip.GzipFile(fileobj=fileobj, mode="wb", compresslevel=6, mtime=0) as stream:
            yield stream
    elif kind == "zstd":
        writer = zstandard.ZstdCompressor(level=3).stream_writer(fileobj, closefd=False)
        with writer as stream:
            yield stream
    else:
        yield fileobj
