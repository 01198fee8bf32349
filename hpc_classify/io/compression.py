"""Compression chosen by file extension: plain, gzip (.gz), zstandard (.zst), bzip2 (.bz2) or xz (.xz), for
reading and writing (pandas, which NeMo reads with, infers the same four from the suffix)."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
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
    lzma.LZMAError,  # bz2 raises OSError ("Invalid data stream"), which every reader also catches
)

# suffix -> compression, named as pandas' and cuDF's `compression=` name them.
COMPRESSION_SUFFIXES = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".xz": "xz"}


def compression_of(path: str) -> str | None:
    """Return "gzip", "zstd", "bz2", "xz" or None from the file name's last suffix."""
    lower = str(path).lower()
    return next((kind for suffix, kind in COMPRESSION_SUFFIXES.items() if lower.endswith(suffix)), None)


@contextmanager
def open_decompressed(path: str) -> Iterator[BinaryIO]:
    """Open `path` for binary reading, decompressing by extension; iterating yields lines ending in b"\\n"."""
    kind = compression_of(path)
    with open(path, "rb") as raw:
        if kind == "gzip":
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream
        elif kind == "zstd":
            # A BufferedReader gives linear-time line iteration over the raw decompressed bytes.
            with io.BufferedReader(ZstdFramesReader(raw), buffer_size=1 << 20) as stream:
                yield stream
        elif kind == "bz2":  # both read concatenated streams (assembled pieces) and raise EOFError on a cut
            with bz2.BZ2File(raw, mode="rb") as stream:
                yield stream
        elif kind == "xz":
            with lzma.LZMAFile(raw, mode="rb") as stream:
                yield stream
        else:
            yield raw


def decompressed_size_within(path: str, limit: int) -> int | None:
    """The decompressed size of compressed file `path` if it is at most `limit` bytes, else None; found by
    decompressing it (in 1 MiB chunks, no more than `limit` + 1 bytes), except a zstd file whose first frame
    declares a larger content size (the zstd CLI writes it), answered from its header. Raises what its
    decompressor raises on a corrupt or truncated file. Neither gzip's ISIZE trailer (modulo 2**32, and
    the last member's only) nor any other header bounds the whole file, so nothing cheaper is exact."""
    if compression_of(path) == "zstd":
        with open(path, "rb") as raw:
            head = raw.read(18)  # the longest frame header
        try:
            declared = zstandard.frame_content_size(head)
        except zstandard.ZstdError:  # not a zstd frame: the reading below raises what a read raises
            declared = -1
        if declared > limit:
            return None
    buffer = bytearray(1 << 20)
    total = 0
    with open_decompressed(path) as stream:
        while total <= limit:
            count = stream.readinto(buffer)
            if not count:
                return total
            total += count
    return None


class ZstdFramesReader(io.RawIOBase):
    """The decompressed bytes of a .zst file: its frames one after another (files made by concatenating
    frames, as pzstd, appends and our assembled pieces do, read in full), and EOFError where the file ends
    inside a frame. zstandard's stream reader returns a cut frame as a normal end of file, so a truncated
    file read as a shorter valid one and got a completion marker; gzip raises on the same cut."""

    def __init__(self, raw: BinaryIO, chunk_size: int = 1 << 16):  # small: its output is not capped
        self._raw = raw
        self._chunk_size = chunk_size
        self._decompressor = zstandard.ZstdDecompressor()
        self._frame: zstandard.ZstdDecompressionObj | None = None  # the frame being decompressed
        self._out = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        while not self._out:
            data = self._raw.read(self._chunk_size)
            if not data:
                if self._frame is not None and not self._frame.eof:
                    raise EOFError("the zstd data ends inside a frame (a truncated file?)")
                return 0
            self._out = memoryview(self._decompress(data))
        n = min(len(buffer), len(self._out))
        buffer[:n] = self._out[:n]
        self._out = self._out[n:]
        return n

    def _decompress(self, data: bytes) -> bytes:
        parts = []
        while data:
            if self._frame is None or self._frame.eof:
                self._frame = self._decompressor.decompressobj()
            parts.append(self._frame.decompress(data))
            data = self._frame.unused_data if self._frame.eof else b""
        return b"".join(parts)


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
    elif kind == "bz2":
        with bz2.BZ2File(fileobj, mode="wb", compresslevel=9) as stream:
            yield stream
    elif kind == "xz":
        # preset 3: about as much faster than the default 6 as gzip 6 and zstd 3 are mid levels.
        with lzma.LZMAFile(fileobj, mode="wb", preset=3) as stream:
            yield stream
    else:
        yield fileobj
