"""`map_in_threads`: a function over many small files' metadata (footers, markers) by a few threads, results
in the items' order. On a parallel file system (Lustre, GPFS) each open is a metadata round trip of about a
millisecond: 100,000 files read one after another wait minutes on the network, where 16 at once wait seconds.
pyarrow and the os release the GIL while they wait."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

METADATA_THREADS = 16  # footers and markers read at once: round trips overlapped, not bandwidth
WINDOW_PER_THREAD = 64  # items submitted ahead per thread: 100,000 futures at once would be ~100 MB


def map_in_threads(fn: Callable[[Item], Result], items: Iterable[Item], threads: int) -> Iterator[Result]:
    """fn(item) for each item, `threads` at a time (1: in this thread), yielded in the items' order whatever
    order they finish in. An exception of fn is raised at its item, once the items submitted with it end."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, not {threads}")
    if threads == 1:
        yield from map(fn, items)
        return
    remaining = iter(items)
    with ThreadPoolExecutor(threads, thread_name_prefix="metadata") as pool:
        while window := list(islice(remaining, threads * WINDOW_PER_THREAD)):
            yield from pool.map(fn, window)
