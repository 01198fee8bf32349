"""What detecting changed inputs costs (prints figures; not a test).

1. The content hash every task computes for its marker (streamed SHA-256), against a plain read of the
   same bytes: the marginal cost per file, in MB/s.
2. The resume check over N done files: by size and mtime (the default: one stat each) and by content
   (`--verify-inputs`: every done input read and hashed again).

    .venv/bin/python benchmarks/bench_input_hashing.py [--megabytes 256] [--files 1000] [--dir DIR]

The files are just written, so the reads come from the page cache: on a parallel file system the content
check is bounded by its read bandwidth instead.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

from hpc_classify.driver.input_changes import find_changed_inputs
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.hashing import HASH_CHUNK_BYTES, file_sha256
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker


def write_jsonl(path: str, megabytes: float) -> int:
    line = json.dumps({"text": "a synthetic document about markets, science and sport " * 30}) + "\n"
    target = int(megabytes * 1024 * 1024)
    written = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < target:
            f.write(line)
            written += len(line)
    return os.path.getsize(path)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def plain_read(path: str) -> int:
    total = 0
    with open(path, "rb") as f:
        while chunk := f.read(HASH_CHUNK_BYTES):
            total += len(chunk)
    return total


def done_corpus(root: str, files: int) -> tuple[list[PlannedFile], str]:
    """`files` small inputs (about 64 KiB) with markers, as a finished run leaves them."""
    inputs, output = os.path.join(root, "in"), os.path.join(root, "out")
    os.makedirs(inputs)
    planned = []
    for i in range(files):
        relpath = f"part-{i:06d}.jsonl"
        path = os.path.join(inputs, relpath)
        size = write_jsonl(path, 1 / 16)
        stat = os.stat(path)
        marker = CompletionMarker(
            input_path=path,
            input_size=size,
            input_mtime=stat.st_mtime,
            output_path=os.path.join(output, relpath),
            rows_in=0,
            rows_out=0,
            rows_bad=0,
            label_counts={},
            seconds=0.0,
            node="bench",
            worker="bench",
            fingerprint="bench",
            input_sha256=file_sha256(path),
        )
        write_marker(marker_path(output, relpath), marker)
        planned.append(PlannedFile(path, relpath, size))
    return planned, output


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=float, default=256, help="size of the one large file")
    parser.add_argument("--files", type=int, default=1000, help="done files for the resume check")
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as root:
        big = os.path.join(root, "big.jsonl")
        size = write_jsonl(big, args.megabytes)
        plain_read(big)  # warm the page cache for both measurements alike
        read_s, _ = timed(plain_read, big)
        hash_s, _ = timed(file_sha256, big)
        mb = size / 1e6
        print(f"one {mb:.0f} MB file: read {mb / read_s:,.0f} MB/s, read + SHA-256 {mb / hash_s:,.0f} MB/s")
        print(f"  hashing adds {hash_s - read_s:.2f} s per {mb:.0f} MB to the task that reads it")

        planned, output = done_corpus(root, args.files)
        quick_s, quick = timed(find_changed_inputs, planned, output, verify=False)
        verify_s, verified = timed(find_changed_inputs, planned, output, verify=True)
        total_mb = sum(p.size for p in planned) / 1e6
        print(f"resume check over {args.files} done files ({total_mb:.0f} MB):")
        print(f"  size and mtime: {quick_s:.2f} s ({len(quick)} changed)")
        print(
            f"  --verify-inputs: {verify_s:.2f} s ({len(verified)} changed, {total_mb / verify_s:,.0f} MB/s)"
        )


if __name__ == "__main__":
    main()
