"""Decoded sizes are found ahead of the dispatch (driver/content_sizes.py): the files behind the queue's head
are measured by background threads while earlier tasks run, the dispatch of the head never waits for them,
the decisions and groups are exactly those of an inline count, a measurement that raises raises where the
dispatch asks for that file, and a stop cancels the measurements not begun without waiting for those running.
Waits are on events, with a long guard only so that a broken build fails instead of hanging."""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import os
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard
from fake_dispatcher import make_dispatcher

from hpc_classify.driver import content_sizes
from hpc_classify.driver.content_sizes import AHEAD_ITEMS, MEASURING_THREADS
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.grouping import FileQueue
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.pieces import content_bytes

PIECE_BYTES = 64 << 10
GUARD = 30.0  # seconds: only so that a build that never measures ahead fails rather than hangs


class _Future:
    def __init__(self, key: str):
        self.key = key

    def done(self) -> bool:
        return False


class _Client:
    """What the dispatcher's top-up uses of a distributed.Client: submitted tasks are recorded, never run."""

    def __init__(self) -> None:
        self.submitted: list[list[str]] = []

    def nthreads(self) -> dict[str, int]:
        return {"worker": 1}

    def submit(self, fn: Any, first: Any, *args: Any, key: str, **kwargs: Any) -> _Future:
        files = first if isinstance(first, list) else [first]
        self.submitted.append([f.relpath for f in files])
        return _Future(key)


def _dispatcher(tmp_path: Path, client: _Client, **settings: Any) -> Dispatcher:
    return make_dispatcher(client, tmp_path / "out", piece_bytes=PIECE_BYTES, **settings)


def _jsonl(count: int, start: int = 0) -> bytes:
    return b"".join(
        (json.dumps({"id": i, "text": f"document {i}: " + "the same words again " * 40}) + "\n").encode()
        for i in range(start, start + count)
    )


def _planned(path: Path) -> PlannedFile:
    stat = os.stat(path)
    return PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)


def _gz_files(tmp_path: Path, names: list[str], count: int = 20) -> list[PlannedFile]:
    files = []
    for n, name in enumerate(names):
        path = tmp_path / f"{name}.jsonl.gz"
        path.write_bytes(gzip.compress(_jsonl(count, start=1000 * n)))
        files.append(_planned(path))
    return files


def test_the_heads_task_is_submitted_while_the_files_behind_it_are_still_being_measured(
    tmp_path, monkeypatch
):
    files = _gz_files(tmp_path, ["a", "b", "c"])
    c_started, release = threading.Event(), threading.Event()
    measured_on: dict[str, str] = {}
    waited: list[bool] = []

    def measure(path: str, size: int, limit: int) -> int:
        measured_on[Path(path).name] = threading.current_thread().name
        if path.endswith("c.jsonl.gz"):
            c_started.set()
            waited.append(release.wait(GUARD))
        return content_bytes(path, size, limit)

    monkeypatch.setattr(content_sizes, "content_bytes", measure)
    client = _Client()
    dispatcher = _dispatcher(tmp_path, client, tasks_per_worker=1, group_bytes=0)  # one file per task
    queue = FileQueue(files)
    dispatcher._top_up(queue)  # returns with a's task submitted, while c is measured
    assert client.submitted == [["a.jsonl.gz"]]
    assert c_started.wait(GUARD), "c was never measured while a's task ran"
    assert not release.is_set()  # the top-up returned while c's measurement was still held
    release.set()
    dispatcher.in_flight.clear()  # a's task done
    dispatcher._top_up(queue)
    dispatcher.in_flight.clear()
    dispatcher._top_up(queue)
    dispatcher.pieces.close()
    assert client.submitted == [["a.jsonl.gz"], ["b.jsonl.gz"], ["c.jsonl.gz"]]
    assert waited == [True]
    assert all(name.startswith("content-bytes") for name in measured_on.values()), measured_on


def _parquet(path: Path, rows: int, row_group_size: int) -> PlannedFile:
    texts = [f"document {i}: " + "the same words again " * 40 for i in range(rows)]
    table = pa.table({"id": list(range(rows)), "text": texts})
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd", use_dictionary=False)
    return _planned(path)


def _mixed_corpus(tmp_path: Path) -> list[PlannedFile]:
    """Plain, gzip, zstd, bzip2, xz and Parquet files on both sides of PIECE_BYTES, on disk and decoded,
    and a truncated gzip file; largest first, as the plan orders them."""
    compress = {"gz": gzip.compress, "zst": zstandard.compress, "bz2": bz2.compress, "xz": lzma.compress}
    for count in (600, 60, 25, 8):  # ~540 KiB decoded (cut), ~54 KiB (near a piece), ~22 KiB, ~7 KiB
        (tmp_path / f"plain-{count}.jsonl").write_bytes(_jsonl(count))
        for suffix, write in compress.items():
            (tmp_path / f"c-{count}.jsonl.{suffix}").write_bytes(write(_jsonl(count, start=count)))
    for rows in (600, 70, 20):
        _parquet(tmp_path / f"p-{rows}.parquet", rows, 50)
    for n in range(6):  # enough queued bytes on disk for the group budget to take several small files
        (tmp_path / f"small-{n}.jsonl").write_bytes(_jsonl(6, start=10 * n))
    (tmp_path / "corrupt.jsonl.gz").write_bytes(gzip.compress(_jsonl(600))[:3000])
    files = [_planned(p) for p in tmp_path.iterdir() if p.is_file()]
    return sorted(files, key=lambda f: (-f.size, f.relpath))


def _dispatched(tmp_path: Path, files: list[PlannedFile]) -> tuple[list[list[str]], list[str]]:
    """The tasks one dispatcher submits for `files` (their relpaths), two task threads, tasks done each
    round, and the files it cut."""
    tmp_path.mkdir()
    client = _Client()
    dispatcher = _dispatcher(tmp_path, client, tasks_per_worker=2, group_bytes=PIECE_BYTES)
    queue = FileQueue(files)
    while queue:
        dispatcher._top_up(queue)
        dispatcher.in_flight.clear()
    dispatcher.pieces.close()
    return client.submitted, sorted(dispatcher.pieces.started)


def test_decisions_and_groups_are_those_of_an_inline_count(tmp_path, monkeypatch):
    corpus = tmp_path / "in"
    corpus.mkdir()
    files = _mixed_corpus(corpus)
    assert {f.relpath for f in files if f.size <= PIECE_BYTES} and {
        f.relpath for f in files if f.size > PIECE_BYTES
    }
    threads: list[tuple[str, str]] = []  # (file, the thread that counted it)

    def measure(path: str, size: int, limit: int) -> int:
        threads.append((Path(path).name, threading.current_thread().name))
        return content_bytes(path, size, limit)

    monkeypatch.setattr(content_sizes, "content_bytes", measure)
    ahead = _dispatched(tmp_path / "ahead", files)
    measured_ahead = list(threads)
    threads.clear()
    monkeypatch.setattr(PieceScheduler, "measure_ahead", lambda self, upcoming: None)  # as before: inline
    inline = _dispatched(tmp_path / "inline", files)

    assert ahead == inline
    tasks, cut = ahead
    assert sorted(r for task in tasks for r in task if "#" not in r) == sorted(
        f.relpath for f in files if f.relpath not in cut
    )
    assert "c-600.jsonl.gz" in cut and "p-600.parquet" in cut and "c-25.jsonl.gz" not in cut
    assert any(len(task) > 1 for task in tasks)  # small files grouped, by decoded bytes
    # Each file counted once; those that need a read by the measuring threads, ahead; inline, all here.
    reads = {f.relpath for f in files if f.size <= PIECE_BYTES and not f.relpath.endswith(".jsonl")}
    assert sorted(name for name, _ in measured_ahead) == sorted(f.relpath for f in files)
    assert {name for name, thread in measured_ahead if thread.startswith("content-bytes")} == reads
    assert sorted(name for name, _ in threads) == sorted(f.relpath for f in files)
    assert {thread for _, thread in threads} == {threading.current_thread().name}


def test_a_corrupt_file_measured_ahead_counts_as_before_and_a_raising_measure_raises_where_asked(
    tmp_path, monkeypatch
):
    good, bad = _gz_files(tmp_path, ["good", "bad"])
    truncated = tmp_path / "truncated.jsonl.gz"
    truncated.write_bytes(gzip.compress(_jsonl(600))[:3000])
    corrupt = _planned(truncated)

    def measure(path: str, size: int, limit: int) -> int:
        if path == bad.path:
            raise RuntimeError(f"cannot read {path}")
        return content_bytes(path, size, limit)

    monkeypatch.setattr(content_sizes, "content_bytes", measure)
    scheduler = PieceScheduler(str(tmp_path / "out"), PIECE_BYTES)
    scheduler.measure_ahead([good, bad, corrupt])  # raises nothing: the error belongs to the file's turn
    assert (
        scheduler.content_bytes(corrupt)
        == corrupt.size
        == content_bytes(corrupt.path, corrupt.size, PIECE_BYTES)
    )
    assert not scheduler.needs_pieces(corrupt)  # whole: its read says what is wrong, as before
    assert scheduler.content_bytes(good) == len(_jsonl(20))
    with pytest.raises(RuntimeError, match=f"^cannot read {bad.path}$"):
        scheduler.needs_pieces(bad)
    with pytest.raises(
        RuntimeError, match=f"^cannot read {bad.path}$"
    ):  # as inline: asked again, raised again
        scheduler.content_bytes(bad)
    scheduler.close()


def test_a_stop_cancels_the_measurements_not_begun_and_does_not_wait_for_those_running(tmp_path, monkeypatch):
    files = [PlannedFile(str(tmp_path / f"f{n}.jsonl.gz"), f"f{n}.jsonl.gz", 100) for n in range(12)]
    release = threading.Event()
    started: list[str] = []
    all_busy = threading.Semaphore(0)

    def measure(path: str, size: int, limit: int) -> int:
        started.append(path)
        all_busy.release()
        release.wait(GUARD)
        return size

    monkeypatch.setattr(content_sizes, "content_bytes", measure)
    scheduler = PieceScheduler(str(tmp_path / "out"), PIECE_BYTES)
    scheduler.measure_ahead(files)
    futures = dict(scheduler._sizes._measuring)
    pool = scheduler._sizes._pool
    for _ in range(MEASURING_THREADS):
        assert all_busy.acquire(timeout=GUARD)
    scheduler.close(abandon=True)  # returns while the measurements in flight are held
    assert not release.is_set()
    running = [f for f in futures.values() if not f.cancelled()]
    assert len(running) == len(started) == MEASURING_THREADS
    assert sum(f.cancelled() for f in futures.values()) == len(files) - MEASURING_THREADS
    release.set()
    for thread in list(pool._threads):
        thread.join(GUARD)
        assert not thread.is_alive()
    assert len(started) == MEASURING_THREADS  # nothing was begun after the stop


def test_the_window_ahead_is_bounded_however_long_the_queue(tmp_path, monkeypatch):
    release = threading.Event()
    monkeypatch.setattr(
        content_sizes, "content_bytes", lambda path, size, limit: release.wait(GUARD) and size
    )
    files = [
        PlannedFile(str(tmp_path / f"f{n:05}.jsonl.zst"), f"f{n:05}.jsonl.zst", 100) for n in range(3000)
    ]
    scheduler = PieceScheduler(str(tmp_path / "out"), PIECE_BYTES)
    queue = FileQueue(files)
    scheduler.measure_ahead(queue.upcoming(AHEAD_ITEMS))
    assert list(scheduler._sizes._measuring) == [f.relpath for f in files[:AHEAD_ITEMS]]
    scheduler.close(abandon=True)
    release.set()
