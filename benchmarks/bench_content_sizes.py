"""The driver's dispatch time for small compressed shards, their decoded sizes measured inline (on the dispatch
thread, when the queue reaches each file: before driver/content_sizes.py) or ahead (by its threads while
earlier tasks run). Prints figures; not a test.

N .jsonl.gz shards (hard links of one file: the same cost each), each no larger than a piece on disk and
`--decoded-mib` decoded (under `--piece-mib`, so each is decompressed in full and stays whole), go through the
dispatcher's top-up with a stand-in cluster: each round's tasks "run" for `--task-seconds` (a sleep: the GPUs'
time), then the next round is submitted. Reported: the seconds the dispatch thread spent in its top-ups (time
in which no new task is submitted: GPUs wait) and the whole wall time.

    .venv/bin/python benchmarks/bench_content_sizes.py [--shards 40] [--decoded-mib 200] [--piece-mib 256]
        [--task-seconds 1.0] [--tasks-per-round 2] [--dir DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import random
import tempfile
import time
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver.content_sizes import MEASURING_THREADS
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.grouping import FileQueue
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.summary import RunStats
from hpc_classify.stop_request import StopRequest

WORDS = "markets science sport travel health finance games music food law art film news home".split()


class _Future:
    def __init__(self, key: str):
        self.key = key


class _Cluster:
    """A stand-in for the Dask client: `tasks` task threads; a submitted task is only recorded."""

    def __init__(self, tasks: int):
        self.tasks = tasks

    def nthreads(self) -> dict[str, int]:
        return {"worker": self.tasks}

    def submit(self, fn: Any, *args: Any, key: str, **kwargs: Any) -> _Future:
        return _Future(key)


def write_shard(path: str, decoded_mib: int) -> None:
    rng = random.Random(0)
    target, written, index = decoded_mib << 20, 0, 0
    with gzip.open(path, "wb", compresslevel=6) as out:
        while written < target:
            text = " ".join(rng.choice(WORDS) for _ in range(300))
            line = (json.dumps({"id": index, "text": text}) + "\n").encode()
            out.write(line)
            written, index = written + len(line), index + 1


def dispatch(
    files: list[PlannedFile], work: str, args: argparse.Namespace, ahead: bool
) -> tuple[float, float]:
    """(seconds in top-ups, wall seconds) to submit every file, a round of tasks at a time."""
    os.makedirs(work)
    config = RunConfig(inputs=(work,), output=work, classifiers=("stored only",), tasks_per_worker=1)
    dispatcher = Dispatcher(
        _Cluster(args.tasks_per_round),
        RunContext(
            config=config,
            output_dir=work,
            fingerprint="f",
            stats=RunStats(),
            failures=FailureLog(work),
            stop=StopRequest(()),
        ),
        progress=Progress(0, interval=3600),
        piece_bytes=args.piece_mib << 20,
    )
    if not ahead:
        dispatcher.pieces.measure_ahead = lambda upcoming: None  # type: ignore[method-assign]
    queue = FileQueue(files)
    in_top_up, start = 0.0, time.perf_counter()
    while queue:
        began = time.perf_counter()
        dispatcher._top_up(queue)
        in_top_up += time.perf_counter() - began
        time.sleep(args.task_seconds)  # the round's tasks run on the GPUs
        dispatcher.in_flight.clear()
    wall = time.perf_counter() - start
    dispatcher.pieces.close()
    return in_top_up, wall


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=40)
    parser.add_argument("--decoded-mib", type=int, default=200)
    parser.add_argument("--piece-mib", type=int, default=256)
    parser.add_argument("--task-seconds", type=float, default=1.0)
    parser.add_argument("--tasks-per-round", type=int, default=2)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        first = os.path.join(tmp, "shard-0000.jsonl.gz")
        write_shard(first, args.decoded_mib)
        for n in range(1, args.shards):
            os.link(first, os.path.join(tmp, f"shard-{n:04}.jsonl.gz"))
        size = os.path.getsize(first)
        files = [
            PlannedFile(os.path.join(tmp, name), name, size)
            for name in sorted(os.listdir(tmp))
            if name.endswith(".gz")
        ]
        began = time.perf_counter()
        PieceScheduler(os.path.join(tmp, "one"), args.piece_mib << 20).content_bytes(files[0])
        one = time.perf_counter() - began
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"cpu: {cpu_model()}, {os.cpu_count()} cores, load average {load}")
        print(
            f"{args.shards} shards of {size / 2**20:.1f} MiB on disk, {args.decoded_mib} MiB decoded, "
            f"--piece-bytes {args.piece_mib}M; one inline measure {one:.2f} s; "
            f"{args.tasks_per_round} tasks per round of {args.task_seconds} s; {MEASURING_THREADS} measuring threads"
        )
        for ahead in (False, True):
            top_up, wall = dispatch(files, os.path.join(tmp, f"out-{ahead}"), args, ahead)
            mode = "ahead " if ahead else "inline"
            print(f"{mode}: dispatch thread in top-ups {top_up:6.2f} s, wall {wall:6.2f} s")


if __name__ == "__main__":
    main()
