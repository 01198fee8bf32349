"""Metadata calls of a run start and of a no-op resume over N done files (prints counts; not a test).

N tiny input files (1,000 per directory) are made done as a finished run leaves them: an output and a
completion marker each, written directly (nothing is classified). Then `hpc_classify.api.classify` (the
driver plus the report) runs twice over them, and the calls of this process to os.stat/lstat, os.listdir,
os.scandir and open are counted in each phase of the second run (the no-op resume): the run start (listing,
plan, changed inputs, lost outputs, pending files), the summary, the report. Calls made inside os.walk and
os.path count as the os function they make (DirEntry's own stats are not seen).

Counted at 20,000 files: the start made 80,416 calls (3 stats per input, `_markers/` listed three times
besides the temp-file sweep) before one listing and one stat per input, 40,372 after; the report 40,057 (a
stat per input and a read per marker), the whole no-op resume 120,475 -> 80,431.

    .venv/bin/python benchmarks/bench_start_metadata.py [--files 5000 20000] [--dir DIR]
"""

from __future__ import annotations

import argparse
import builtins
import json
import logging
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from hpc_classify.api import classify
from hpc_classify.classifiers import DomainClassifier
from hpc_classify.config import RunConfig
from hpc_classify.driver import run as driver_run
from hpc_classify.driver.fingerprint import check_or_store_fingerprint
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker

BENCH_DETAILS = {"bench": True}
COUNTED = {"stat": os, "lstat": os, "listdir": os, "scandir": os, "open": builtins}


class CallCounter:
    """Counts the calls of the COUNTED functions while installed, by phase."""

    def __init__(self) -> None:
        self.phase = "start"
        self.counts: dict[str, Counter[str]] = {}
        self._saved: dict[str, Callable[..., Any]] = {}

    def __enter__(self) -> CallCounter:
        for name, module in COUNTED.items():
            original = getattr(module, name)
            self._saved[name] = original
            setattr(module, name, self._wrap(name, original))
        return self

    def __exit__(self, *exc: object) -> None:
        for name, module in COUNTED.items():
            setattr(module, name, self._saved[name])

    def _wrap(self, name: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.counts.setdefault(self.phase, Counter())[name] += 1
            return original(*args, **kwargs)

        return counted


def make_done_files(inputs: str, output: str, n: int) -> None:
    os.makedirs(output)
    fingerprint = check_or_store_fingerprint(output, BENCH_DETAILS, overwrite=False)  # as a first run does
    for i in range(n):
        relpath = f"d{i // 1000:03d}/f{i:06d}.jsonl"
        path = os.path.join(inputs, relpath)
        if i % 1000 == 0:
            os.makedirs(os.path.dirname(path))
            os.makedirs(os.path.join(output, os.path.dirname(relpath)))
        with open(path, "w") as f:
            f.write(json.dumps({"id": i, "text": "x"}) + "\n")
        out = os.path.join(output, relpath)
        with open(out, "w") as f:
            f.write(json.dumps({"id": i, "text": "x", "domain_pred": "label_00"}) + "\n")
        stat = os.stat(path)
        marker = CompletionMarker(
            path,
            stat.st_size,
            stat.st_mtime,
            out,
            1,
            1,
            0,
            {"domain_pred": {"label_00": 1}},
            0.001,
            "n",
            "w",
            fingerprint,
        )
        write_marker(marker_path(output, relpath), marker)


def measure(work: str, n: int) -> None:
    inputs, output = os.path.join(work, f"in-{n}"), os.path.join(work, f"out-{n}")
    make_done_files(inputs, output, n)
    config = RunConfig(inputs=(inputs,), output=output, classifiers=(DomainClassifier(device="cpu"),))
    first = classify(config)  # the run that finds them done first: writes the plan, summary and report
    assert first.summary["files_skipped"] == n, first.summary
    counter = CallCounter()
    write_summary = driver_run.write_summary

    def summary_phase(*args: Any, **kwargs: Any) -> Any:
        counter.phase = "summary"
        try:
            return write_summary(*args, **kwargs)
        finally:
            counter.phase = "report"

    driver_run.write_summary = summary_phase
    try:
        t0 = time.perf_counter()
        with counter:
            again = classify(config)
        wall = time.perf_counter() - t0
    finally:
        driver_run.write_summary = write_summary
    assert again.summary["files_skipped"] == n and again.summary["files_processed"] == 0
    print(f"no-op resume of {n} done files: {wall:.2f} s")
    total: Counter[str] = Counter()
    for phase in ("start", "summary", "report"):
        counts = counter.counts.get(phase, Counter())
        total.update(counts)
        print(f"  {phase:8s} {sum(counts.values()):8d}  " + _line(counts, n))
    print(f"  {'total':8s} {sum(total.values()):8d}  " + _line(total, n))


def _line(counts: Counter[str], n: int) -> str:
    return "  ".join(f"{name} {counts[name]} ({counts[name] / n:.2f}/file)" for name in COUNTED)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, nargs="+", default=[5000, 20000])
    parser.add_argument(
        "--dir", default=None, help="work directory (default: a temporary one, removed after)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    driver_run._fingerprint_details = lambda config: BENCH_DETAILS  # no model needed
    work = args.dir or tempfile.mkdtemp(prefix="bench-start-")
    try:
        for n in args.files:
            measure(work, n)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
