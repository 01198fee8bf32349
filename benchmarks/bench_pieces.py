"""What pieces cost and what they buy (prints figures; not a test). The classifier is a model-free one
(hpc_classify/bench/length_classifier.py), so that the figures are the driver's, the readers', the writers'
and the markers', which a transformer's cost would hide.

1. Peak RSS of every process (driver with its scheduler, each worker) classifying one large JSONL file in
   pieces (default 1 GiB; target below 1 GiB whatever the file size), and a smaller file (128 MiB) in pieces
   and whole (--piece-bytes 0) for comparison.
2. One file of that size on 2 workers against two files of half the size (target: within 10%), the two
   alternated and each timed --repeats times (min reported: the machine may be busy).
3. The driver's cost per piece: planning and resuming N pieces (layouts and piece markers written for real,
   then the resume scan and `status`).

    .venv/bin/python benchmarks/bench_pieces.py [--megabytes 1024] [--piece-mib 64] [--whole-megabytes 128] [--repeats 2]
        [--pieces 100000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time

import psutil

from hpc_classify import run
from hpc_classify.bench.length_classifier import LengthClassifier


def write_corpus(path: str, megabytes: float) -> int:
    """JSONL of ~2 kB documents (some short, some long) up to `megabytes`."""
    target = int(megabytes * 1024 * 1024)
    written = index = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            words = "markets science sport travel " * (10 + index % 120)
            line = json.dumps({"id": index, "text": words}) + "\n"
            f.write(line)
            written += len(line)
            index += 1
    return index


class PeakRss:
    """Polls this process and its descendants; keeps each one's peak resident set size."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peaks, self._stop = interval, {}, threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _poll(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            for proc in [me, *me.children(recursive=True)]:
                try:
                    rss, name = proc.memory_info().rss, " ".join(proc.cmdline()[-2:])[-60:]
                except psutil.Error:
                    continue
                key = (proc.pid, "driver" if proc.pid == me.pid else name)
                self.peaks[key] = max(self.peaks.get(key, 0), rss)
            self._stop.wait(self.interval)


def classify(inputs: list[str], output: str, piece_bytes: int) -> tuple[float, dict]:
    started = time.perf_counter()
    result = run(
        LengthClassifier(),
        inputs,
        output,
        workers=2,
        threads_per_worker=1,
        piece_bytes=piece_bytes,
        progress_interval=3600,
    )
    seconds = time.perf_counter() - started
    if result.exit_code != 0:
        raise SystemExit(f"run into {output} failed: exit {result.exit_code}")
    return seconds, result.summary


def memory(args: argparse.Namespace, workdir: str, big: str) -> None:
    # Whole files for comparison on a smaller file: a worker holds all of it, several times over.
    small = os.path.join(workdir, "small", "small.jsonl")
    os.makedirs(os.path.dirname(small))
    write_corpus(small, args.whole_megabytes)
    runs = (
        (f"{args.megabytes:.0f} MiB in pieces", big, args.piece_mib << 20),
        (f"{args.whole_megabytes:.0f} MiB in pieces", small, args.piece_mib << 20),
        (f"{args.whole_megabytes:.0f} MiB whole (--piece-bytes 0)", small, 0),
    )
    for label, path, piece_bytes in runs:
        with PeakRss() as rss:
            seconds, summary = classify(
                [path], os.path.join(workdir, f"rss-{len(label)}-{piece_bytes}"), piece_bytes
            )
        worst = max(rss.peaks.values()) / 2**20
        print(
            f"  {label}: {seconds:.1f} s, {summary['documents_in']} documents; peak RSS per process (MiB): "
            + ", ".join(
                f"{name or pid}: {peak / 2**20:.0f}" for (pid, name), peak in sorted(rss.peaks.items())
            )
            + f"; largest {worst:.0f} MiB"
        )


def one_against_two(args: argparse.Namespace, workdir: str, big: str) -> None:
    halves = [os.path.join(workdir, "halves", f"half-{i}.jsonl") for i in range(2)]
    os.makedirs(os.path.dirname(halves[0]), exist_ok=True)
    for half in halves:
        write_corpus(half, args.megabytes / 2)
    times: dict[str, list[float]] = {"one file": [], "two halves": []}
    for repeat in range(args.repeats):
        for label, inputs in (("one file", [big]), ("two halves", halves)):
            seconds, _ = classify(
                inputs, os.path.join(workdir, f"pair-{label[:3]}-{repeat}"), args.piece_mib << 20
            )
            times[label].append(seconds)
    one, two = min(times["one file"]), min(times["two halves"])
    print(
        f"  one {args.megabytes:.0f} MiB file: {one:.1f} s; two {args.megabytes / 2:.0f} MiB files: {two:.1f} s; "
        f"ratio {one / two:.2f} (all runs: {times})"
    )


def driver_cost(args: argparse.Namespace, workdir: str) -> None:
    from hpc_classify.driver import piece_files
    from hpc_classify.driver.pieces import PieceScheduler, partly_done
    from hpc_classify.driver.plan import PlannedFile
    from hpc_classify.io.markers import CompletionMarker, write_marker
    from hpc_classify.io.pieces import plan_pieces

    out = os.path.join(workdir, "cost")
    files, per_file = max(1, args.pieces // 1000), min(1000, args.pieces)
    source = os.path.join(workdir, "cost-input.jsonl")
    size = per_file * 1024
    with open(source, "wb") as f:
        f.truncate(size)
    started = time.perf_counter()
    for i in range(files):
        relpath = f"shard-{i:05d}.jsonl"
        layout = piece_files.PieceLayout(1024, size, 0.0, tuple(plan_pieces(source, size, 1024)))
        piece_files.write_layout(out, relpath, layout)
        for index in range(per_file - 1):  # all but the last piece done
            marker = CompletionMarker(
                source,
                size,
                0.0,
                source,
                1,
                1,
                0,
                {"pred": {"a": 1}},
                0.1,
                "node",
                "w",
                "f",
                extra={"piece": index},
            )
            write_marker(piece_files.piece_marker_path(out, relpath, index), marker)
    written = time.perf_counter() - started
    planned = [PlannedFile(source, f"shard-{i:05d}.jsonl", size) for i in range(files)]
    started = time.perf_counter()
    scheduler = PieceScheduler(out, 1024)
    jobs = [job for file in planned for job in scheduler.expand(file)]
    resume = time.perf_counter() - started
    started = time.perf_counter()
    partial = partly_done(out, {f.relpath for f in planned})
    status = time.perf_counter() - started
    pieces = files * per_file
    print(
        f"  {pieces} pieces in {files} files ({pieces - files} done): writing layouts and piece markers "
        f"{written:.1f} s; resume scan (layouts read, done pieces listed, {len(jobs)} pending) {resume:.2f} s "
        f"= {resume / pieces * 1e6:.1f} us per piece; status (every piece marker read) {status:.2f} s "
        f"= {status / pieces * 1e6:.1f} us per piece ({len(partial)} files partly done)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=1024)
    parser.add_argument("--piece-mib", type=int, default=64)
    parser.add_argument("--whole-megabytes", type=float, default=128)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--pieces", type=int, default=100_000)
    parser.add_argument("--dir", default=None)
    args = parser.parse_args()
    print(
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()}"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as workdir:
        big = os.path.join(workdir, "big", "big.jsonl")
        os.makedirs(os.path.dirname(big))
        documents = write_corpus(big, args.megabytes)
        print(
            f"1. peak memory, one {os.path.getsize(big) / 2**20:.0f} MiB JSONL file ({documents} documents), "
            f"{args.piece_mib} MiB pieces, 2 workers:"
        )
        memory(args, workdir, big)
        print("2. one file against two halves (2 workers, min of repeats):")
        one_against_two(args, workdir, big)
        print("3. the driver's cost per piece:")
        driver_cost(args, workdir)
        print(f"load after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
