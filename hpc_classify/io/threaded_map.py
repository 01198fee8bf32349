"""`map_in_threads`: a function over many small files' metadata (footers, markers) by a few threads, results
in the items' order. On a parallel file system (Lustre, GPFS) each open is a metadata round trip of about a
millisecond: 100,000 files read one after another wait minutes on the network, where 16 at once wait seconds.
pyarrow and the os release the GIL while they wait. `run_until_stopped`: a slower function (a file's rewrite)
over a list, a few at a time, none started once a stop is asked."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from itertools import islice, takewhile
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")

METADATA_THREADS = 16  # footers and markers read at once: round trips overlapped, not bandwidth
WINDOW_PER_THREAD = 64  # items submitted ahead per thread: 100,000 futures at once would be ~100 MB


def map_in_threads(
    fn: Callable[[Item], Result],
    items: Iterable[Item],
    threads: int,
    stopped: Callable[[], bool] | None = None,
) -> Iterator[Result]:
    """fn(item) for each item, `threads` at a time (1: in this thread), yielded in the items' order whatever
    order they finish in. An exception of fn is raised at its item, once the items submitted with it end.
    `stopped()`: asked as each item is taken (a window of them at a time with threads); once true no other is
    taken, those taken are still yielded: the caller sees fewer results than items."""
    if threads < 1:
        raise ValueError(f"threads must be >= 1, not {threads}")
    if stopped is not None:
        items = takewhile(lambda _item: not stopped(), items)
    if threads == 1:
        yield from map(fn, items)
        return
    remaining = iter(items)
    with ThreadPoolExecutor(threads, thread_name_prefix="metadata") as pool:
        while window := list(islice(remaining, threads * WINDOW_PER_THREAD)):
            yield from pool.map(fn, window)


def run_until_stopped(
    fn: Callable[[Item], Result], items: Sequence[Item], threads: int, stopped: Callable[[], bool]
) -> tuple[list[tuple[Item, Result]], bool]:
    """([(item, fn(item)) in `items`' order], whether stopped), at most `threads` at once. `stopped()` is asked
    before each start: once true, none starts and those in flight finish. An error (disk full, a
    KeyboardInterrupt) starts none either and is raised once those in flight have ended, each whole."""
    results: dict[int, Result] = {}
    queue = iter(enumerate(items))
    error: BaseException | None = None
    was_stopped = False
    with ThreadPoolExecutor(threads, thread_name_prefix="conform") as pool:
        in_flight: dict[Future[Result], int] = {}
        while True:
            while error is None and not was_stopped and len(in_flight) < threads:
                index, item = next(queue, (None, None))
                if index is None:
                    break
                if stopped():
                    was_stopped = True
                    break
                in_flight[pool.submit(fn, item)] = index  # type: ignore[arg-type]
            if not in_flight:
                break
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                index = in_flight.pop(future)
                try:
                    results[index] = future.result()
                except BaseException as exc:  # noqa: BLE001 (raised below, once the others have ended)
                    error = error or exc
    if error is not None:
        raise error
    return [(items[index], results[index]) for index in sorted(results)], was_stopped
