"""How long `hpc-classify report` takes for a large run: synthetic bookkeeping of `--files` done files
(100,000 by default; the issue asks for under 30 s), then the report's phases timed (prints figures; not
a test).

The output directory gets `_plan.json`, `_run.json`, `_summary.json`, `_failures.ndjson` (1 in 1,000 files
failed) and one marker per done file: three output columns (26 domain labels, 3 quality labels, a score
histogram in tenths), 16 nodes x 4 workers, one shard in 500 skewed to one label, 1 in 200 with bad rows.
Markers are written plainly (no fsync: building is not what is measured) and read from the page cache
(a cold Lustre read is slower; run it twice on the real file system to see both).

    .venv/bin/python benchmarks/bench_report.py [--files 100000] [--dir DIR] [--keep] [--reuse]

Wall and CPU seconds are printed for each phase: on a shared machine the CPU seconds are the steadier figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import shutil
import tempfile
import time

from hpc_classify.classifiers.value_counts import TENTHS
from hpc_classify.io.markers import marker_path
from hpc_classify.models.tiny import DOMAIN_LABELS, QUALITY_LABELS
from hpc_classify.report.gather import collect_report
from hpc_classify.report.render import render_page
from hpc_classify.report.write import write_report

NODES, WORKERS_PER_NODE = 16, 4


def build_run(output: str, files: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    relpaths = [f"crawl-{i // 1000:03d}/part-{i:06d}.jsonl" for i in range(files)]
    failed = set(rng.sample(range(files), files // 1000))
    start = time.time() - 3600.0
    clocks = [start] * (NODES * WORKERS_PER_NODE)
    for i, relpath in enumerate(relpaths):
        if i in failed:
            continue
        worker = i % len(clocks)
        rows = rng.randint(500, 1500)
        seconds = rows / rng.uniform(80, 120)
        begin = clocks[worker] + rng.expovariate(5.0)  # small idle gaps between files
        clocks[worker] = begin + seconds
        skewed = i % 500 == 7
        bad = rng.randint(1, 5) if i % 200 == 3 else 0
        marker = {
            "input_path": f"/data/in/{relpath}",
            "input_size": rows * 2000,
            "input_mtime": start - 86400,
            "output_path": f"{output}/{relpath}",
            "rows_in": rows,
            "rows_out": rows,
            "rows_bad": bad,
            "label_counts": {
                "domain_pred": _counts(rng, DOMAIN_LABELS, rows, skewed),
                "quality_pred": _counts(rng, QUALITY_LABELS, rows, False),
                "complexity": _counts(rng, TENTHS, rows, False),
            },
            "seconds": round(seconds, 6),
            "node": f"node{worker // WORKERS_PER_NODE + 1:03d}",
            "worker": f"node{worker // WORKERS_PER_NODE + 1:03d}-{worker % WORKERS_PER_NODE}",
            "fingerprint": "benchfingerprint",
            "quarantine_path": f"{output}/_{relpath}.quarantine" if bad else None,
            "started_at": _iso(begin),
            "finished_at": _iso(begin + seconds),
            "bad_rows_by_kind": {"invalid JSON": bad} if bad else {},
        }
        path = marker_path(output, relpath)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            json.dump(marker, f)
    _write_json(
        output, "_plan.json", {"inputs": ["/data/in"], "files": [{"relpath": r, "size": 1} for r in relpaths]}
    )
    details = {
        "package_version": "bench",
        "classifiers": [
            {"class": "bench.Synthetic", "model": {"model": "synthetic"}, "columns": ["domain_pred"]}
        ],
        "output_format": "jsonl",
    }
    _write_json(output, "_run.json", {"fingerprint": "benchfingerprint", "details": details})
    _write_json(output, "_summary.json", {"command": "hpc-classify run ...", "exit_code": 1})
    with open(os.path.join(output, "_failures.ndjson"), "w") as f:
        for i in sorted(failed):
            entry = {
                "relpath": relpaths[i],
                "error_type": "TimeoutError",
                "error": "task lost",
                "attempts": 3,
            }
            f.write(json.dumps(entry) + "\n")


def _counts(rng: random.Random, values, rows: int, skewed: bool) -> dict[str, int]:
    counts = dict.fromkeys(values, 0)
    for _ in range(min(rows, 60)):  # a coarse draw scaled up: building 100,000 markers stays quick
        counts[values[0] if skewed else rng.choice(values)] += 1
    scale = rows / sum(counts.values())
    return {value: round(n * scale) for value, n in counts.items()}


def _iso(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, tz=dt.UTC).isoformat(timespec="milliseconds")


def _write_json(output: str, name: str, data: dict) -> None:
    with open(os.path.join(output, name), "w") as f:
        json.dump(data, f)


def machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            cpu = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""
            )
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}"


def timed(fn, *args):
    """fn(*args) and 'W s wall, C s CPU'."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn(*args)
    return result, f"{time.perf_counter() - wall:.2f} s wall, {time.process_time() - cpu:.2f} s CPU"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--dir", default=None, help="where to build the run (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the built run (to open its report)")
    parser.add_argument(
        "--reuse", action="store_true", help="time the run kept in --dir by an earlier --keep"
    )
    args = parser.parse_args()
    root = args.dir or tempfile.mkdtemp(prefix="bench-report-")
    output = os.path.join(root, "out")
    os.makedirs(output, exist_ok=True)
    try:
        if not (args.reuse and os.path.exists(os.path.join(output, "_plan.json"))):
            began = time.perf_counter()
            build_run(output, args.files)
            print(f"built {args.files} files' bookkeeping in {time.perf_counter() - began:.1f} s")
        print(f"machine: {machine()}")
        report, gathered = timed(collect_report, output)
        page, rendered = timed(render_page, report)
        _, total = timed(write_report, output)
        size = os.path.getsize(os.path.join(output, "_report.html"))
        json_size = os.path.getsize(os.path.join(output, "_report.json"))
        print(f"markers read: {report['files']['done']}, failed: {report['files']['failed']}")
        print(f"gather {gathered}, render {rendered} (page {len(page) / 1e6:.1f} MB)")
        print(
            f"write_report (gather + render + write) {total}: _report.html {size / 1e6:.1f} MB, "
            f"_report.json {json_size / 1e6:.1f} MB; load average now {os.getloadavg()[0]:.2f}"
        )
        top = report["drift"]["ranking"][0]
        print(f"most drifted: {top['relpath']} ({top['distance']})")
    finally:
        if args.keep:
            print(f"kept: {output}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
