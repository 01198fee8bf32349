"""The end-of-run schema step (driver/output_schema.py) over N small Parquet outputs with their markers. Prints
figures; not a test.

Three passes: over a directory where every `--differ`-th file lacks a column the others have (those are
rewritten), over the same directory again (unified already: markers and footers read, nothing rewritten), and
over a directory where no file differs from the start.

    .venv/bin/python benchmarks/bench_output_schema.py [--files 2000] [--rows 100] [--differ 2] [--dir DIR]
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
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker


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


def timed_pass(directory: str, what: str) -> None:
    started = time.perf_counter()
    outcome = unify_output_schemas(directory)
    print(
        f"{what}: {outcome.files} files, {outcome.rewritten} rewritten, {time.perf_counter() - started:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--differ", type=int, default=2, help="every n-th file lacks a column (rewritten)")
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        differing, same = os.path.join(root, "differing"), os.path.join(root, "same")
        os.makedirs(differing)
        os.makedirs(same)
        write_outputs(differing, args.files, args.rows, args.differ)
        write_outputs(same, args.files, args.rows, 0)
        timed_pass(differing, f"every {args.differ}-th file differs")
        timed_pass(differing, "the same directory again")
        timed_pass(same, "no file differs")


if __name__ == "__main__":
    main()
