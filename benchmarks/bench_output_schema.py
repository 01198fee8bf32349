"""The end-of-run schema step (driver/output_schema.py) over N small Parquet outputs with their markers. Prints
figures; not a test.

Each pass one thread, then several (`--threads` rewrites and `--read-threads` markers and footers read at once):
over a fresh directory where every `--differ`-th file lacks a column the others have (those are rewritten), over
the same directory again (unified already: markers and footers read, nothing rewritten), and over a directory
where no file differs from the start. On a local disk the reads are page-cache hits: a parallel file system,
where each open is a metadata round trip, gains more from the threads than these figures show; `--latency-ms`
adds such a wait (the GIL released, as in real I/O) before each marker and footer read to emulate one.
Last, a run's end after the step: the report's count of the markers (driver/status.tally_markers) over the
markers the step handed on, against reading them all again (`--read-threads` at once, and one at a time as
releases before 2026-12-07 did).

    .venv/bin/python benchmarks/bench_output_schema.py [--files 2000] [--rows 100] [--differ 2] [--dir DIR]
        [--threads 8] [--read-threads 16] [--latency-ms 1]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import pyarrow as pa
import pyarrow.parquet as pq

from hpc_classify.driver.output_schema import unify_output_schemas
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.status import tally_markers
from hpc_classify.io.markers import CompletionMarker, marker_path, read_marker_files, write_marker
from hpc_classify.io.threaded_map import METADATA_THREADS


def write_outputs(directory: str, files: int, rows: int, differ: int) -> None:
    for i in range(files):
        columns = {"id": list(range(rows)), "text": [f"document {j} of {i}" for j in range(rows)]}
        if not differ or i % differ:  # every `differ`-th file lacks it
            columns["extra"] = [0.5] * rows
        path = os.path.join(directory, f"part-{i:06d}.parquet")
        pq.write_table(pa.table(columns), path)
        marker = CompletionMarker(
            input_path=f"/in/part-{i:06d}.jsonl",
            input_size=1,
            input_mtime=0.0,
            output_path=path,
            rows_in=rows,
            rows_out=rows,
            rows_bad=0,
            label_counts={},
            seconds=0.0,
            node="n",
            worker="w",
            fingerprint="f",
            output_size=os.path.getsize(path),
        )
        write_marker(marker_path(directory, f"part-{i:06d}.jsonl"), marker)


def add_latency(seconds: float) -> None:
    """Each marker and footer read waits `seconds` first: a parallel file system's metadata round trip."""
    from hpc_classify.io import markers

    def delayed(read):
        def read_after_a_round_trip(*args, **kwargs):
            time.sleep(seconds)
            return read(*args, **kwargs)

        return read_after_a_round_trip

    markers.read_marker = delayed(markers.read_marker)
    pq.read_schema = delayed(pq.read_schema)


def timed_pass(directory: str, what: str, threads: int, read_threads: int) -> None:
    started = time.perf_counter()
    outcome = unify_output_schemas(directory, threads=threads, read_threads=read_threads)
    print(
        f"{what}, {threads} rewriting / {read_threads} reading thread(s): {outcome.files} files, "
        f"{outcome.rewritten} rewritten, {time.perf_counter() - started:.2f} s"
    )


def timed_report_count(directory: str, read_threads: int) -> None:
    """The report's count after the step: over the markers it handed on, or over the markers read again."""
    markers = unify_output_schemas(directory, read_threads=read_threads).markers
    planned = {r: PlannedFile(m.input_path, r, m.input_size) for r, m in markers.found.items()}
    ways = (
        ("handed on by the step", lambda: markers),
        (f"read again, {read_threads} at once", lambda: read_marker_files(directory, read_threads)),
        ("read again, one at a time", lambda: read_marker_files(directory)),
    )
    for what, markers_of in ways:
        started = time.perf_counter()
        tally = tally_markers(directory, planned, False, check_inputs=False, markers=markers_of())
        print(
            f"the report's count of {len(tally.done)} markers {what}: {time.perf_counter() - started:.2f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--differ", type=int, default=2, help="every n-th file lacks a column (rewritten)")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    parser.add_argument("--threads", type=int, default=min(8, os.cpu_count() or 1), help="rewrites at once")
    parser.add_argument("--read-threads", type=int, default=METADATA_THREADS, help="footers read at once")
    parser.add_argument(
        "--latency-ms", type=float, default=0.0, help="emulated wait before each metadata read"
    )
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, latency {args.latency_ms} ms"
    )
    if args.latency_ms:
        add_latency(args.latency_ms / 1000)
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        same = os.path.join(root, "same")
        os.makedirs(same)
        write_outputs(same, args.files, args.rows, 0)
        for threads, read_threads in ((1, 1), (args.threads, args.read_threads)):
            differing = os.path.join(root, f"differing-{threads}")
            os.makedirs(differing)
            write_outputs(differing, args.files, args.rows, args.differ)
            timed_pass(differing, f"every {args.differ}-th file differs", threads, read_threads)
            timed_pass(differing, "the same directory again", threads, read_threads)
            timed_pass(same, "no file differs", threads, read_threads)
        timed_report_count(same, args.read_threads)


if __name__ == "__main__":
    main()
