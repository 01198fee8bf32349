"""Files' decoded sizes, found ahead of the dispatch, so that the driver never decompresses on its own thread.

Whether a file is cut, and how much it weighs in a group of small files, go by what it holds decoded
(`io.pieces.content_bytes`): for a compressed JSONL file no larger than a piece on disk that is a
decompression of up to `piece_bytes` + 1 bytes (at the GPU default of 256 MiB about 1 s for gzip, 7 s for
bz2), for a Parquet file no larger than a piece one footer read (an open on a shared file system). Done when
the queue reached the file, that was serial time on the dispatch thread while GPUs waited. So the
dispatcher names the next `AHEAD_ITEMS` queued items on each top-up, and those that need a read are
measured by a few threads; `of(planned)` returns the value found, waits for the one being found, or
measures inline a file never named. The same function computes every value: decisions and groups are
those of an inline count, and a measurement that raises raises where the dispatch asks for that file.

A stop cancels the measurements not begun and does not wait for those running (at most `threads`, each at
most `piece_bytes` + 1 decoded bytes or a footer): they finish in the background, and the interpreter's
exit waits for them (concurrent.futures joins its threads): at 256 MiB pieces about 1 s (gzip, zstd) to
7 s (bz2) at worst, after the summary is written.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from hpc_classify.driver.grouping import MAX_FILES_PER_GROUP
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.pieces import content_bytes, content_bytes_reads

# How far ahead of the queue's head files are measured: one take() weighs up to MAX_FILES_PER_GROUP files
# and looks at the next, so twice that keeps a whole group and the next one measured before they are asked
# for. Bounded in count, whatever the queue's length: at most this many futures are held, and no more
# files are open at once than there are threads.
AHEAD_ITEMS = 2 * MAX_FILES_PER_GROUP

# zlib, bz2, lzma, zstandard and pyarrow's footer reads release the GIL, so threads measure in parallel.
# A few: the driver shares its node with the Dask scheduler, and a footer read waits on the file system.
MEASURING_THREADS = min(4, os.cpu_count() or 1)


class ContentSizes:
    """`content_bytes` of the driver's files, by relpath, measured ahead of their dispatch where they need
    a read. Used from the dispatch thread only (the threads run nothing but `content_bytes`)."""

    def __init__(self, piece_bytes: int, threads: int = MEASURING_THREADS):
        self.piece_bytes = piece_bytes
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="content-bytes")
        self._found: dict[str, int] = {}
        self._measuring: dict[str, Future[int]] = {}  # named ahead, not yet asked for

    def measure_ahead(self, upcoming: Iterable[Any]) -> None:
        """Start measuring the files among `upcoming` (the queue's next items) that need a read and are
        neither measured nor being measured."""
        if self.piece_bytes <= 0:
            return
        for planned in upcoming:
            if (
                isinstance(planned, PlannedFile)
                and planned.relpath not in self._found
                and planned.relpath not in self._measuring
                and content_bytes_reads(planned.path, planned.size, self.piece_bytes)
            ):
                self._measuring[planned.relpath] = self._pool.submit(
                    content_bytes, planned.path, planned.size, self.piece_bytes
                )

    def of(self, planned: PlannedFile) -> int:
        """The file's `content_bytes` up to `piece_bytes` (its size on disk when files are not cut): found
        once, ahead if it was named, else now. Raises what the measurement raised."""
        if self.piece_bytes <= 0:
            return planned.size
        found = self._found.get(planned.relpath)
        if found is not None:
            return found
        future = self._measuring.pop(planned.relpath, None)
        if future is None or future.cancelled():
            found = content_bytes(planned.path, planned.size, self.piece_bytes)
        else:
            found = future.result()
        self._found[planned.relpath] = found
        return found

    def close(self, *, wait: bool = True) -> None:
        """Cancel the measurements not begun; wait for those running unless `wait` is false (a stop)."""
        self._pool.shutdown(wait=wait, cancel_futures=True)
        self._measuring.clear()
