"""Driver scale benchmark (prints figures; not a test): 100,000 small files.

1. Stream N files through `run_classification` on a local cluster while sampling the driver's RSS. The
   per-file task is replaced by a stub that writes a real completion marker but classifies nothing: what is
   measured is the driver (planning, bounded submission, collecting markers), not the model.
2. Rerun: the resume scan over N completed markers (expand inputs, stat, scan _markers/), no cluster.
3. `compute_status` over the N markers (reads and parses every one).

    .venv/bin/python benchmarks/bench_resume.py [--files 100000] [--workers 2] [--threads 4] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

from hpc_classify.classifiers import DomainClassifier
from hpc_classify.config import RunConfig
from hpc_classify.driver import dispatch
from hpc_classify.driver import run as driver_run
from hpc_classify.driver.file_group import FileOutcome
from hpc_classify.driver.status import compute_status
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker

LABELS = [f"label_{i:02d}" for i in range(26)]


def stub_task(input_files, output_dir, config, fingerprint, unit="", size=0) -> list[FileOutcome]:
    """Stands in for run_task_on_worker: a realistic marker (26 label counts) per file, written for real."""
    outcomes = []
    for input_file in input_files:
        counts = dict.fromkeys(LABELS, 0)
        counts[LABELS[hash(input_file.relpath) % 26]] = 1
        stat = os.stat(input_file.path)
        marker = CompletionMarker(
            input_file.path,
            stat.st_size,
            stat.st_mtime,
            os.path.join(output_dir, input_file.relpath),
            1,
            1,
            0,
            {"domain_pred": counts},
            0.001,
            "bench",
            "w",
            fingerprint,
        )
        write_marker(marker_path(output_dir, input_file.relpath), marker)
        outcomes.append(FileOutcome(input_file.relpath, marker=marker))
    return outcomes


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    def __init__(self, interval: float = 0.5):
        super().__init__(daemon=True)
        self.interval, self.samples, self._stop_event = interval, [], threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while not self._stop_event.wait(self.interval):
            self.samples.append((time.monotonic() - start, rss_mib()))

    def stop(self) -> None:
        self._stop_event.set()
        self.join()


def start_external_cluster(scheduler_file: str, workers: int, threads: int) -> list[subprocess.Popen]:
    dask = os.path.join(os.path.dirname(sys.executable), "dask")
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.abspath(__file__))}
    quiet = {"stderr": subprocess.DEVNULL, "env": env}
    procs = [
        subprocess.Popen([dask, "scheduler", "--scheduler-file", scheduler_file, "--port", "0"], **quiet)
    ]
    for _ in range(workers):
        cmd = [
            dask,
            "worker",
            "--scheduler-file",
            scheduler_file,
            "--nthreads",
            str(threads),
            "--no-dashboard",
        ]
        procs.append(subprocess.Popen(cmd, **quiet))
    return procs


def make_inputs(root: str, n: int) -> None:
    for i in range(n):
        sub = os.path.join(root, f"d{i // 1000:03d}")
        if i % 1000 == 0:
            os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"f{i:06d}.jsonl"), "w") as f:
            f.write(json.dumps({"id": i, "text": "x"}) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--tasks-per-worker", type=int, default=8)
    parser.add_argument(
        "--dir", default=None, help="work directory (default: a temporary one, removed after)"
    )
    parser.add_argument(
        "--external-scheduler",
        action="store_true",
        help="run the scheduler and workers as separate processes joined by --scheduler-file (as under Slurm); "
        "by default a LocalCluster puts the scheduler inside the driver process, so its RSS counts too",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    work = args.dir or tempfile.mkdtemp(prefix="bench-resume-")
    inputs, output = os.path.join(work, "in"), os.path.join(work, "out")
    try:
        t0 = time.perf_counter()
        make_inputs(inputs, args.files)
        print(f"created {args.files} input files in {time.perf_counter() - t0:.1f} s")

        # The stub replaces the Dask task; the fingerprint needs no model.
        dispatch.run_task_on_worker = stub_task
        driver_run._fingerprint_details = lambda config: {"bench": True}
        external: list[subprocess.Popen] = []
        scheduler_file = None
        if args.external_scheduler:
            scheduler_file = os.path.join(work, "scheduler.json")
            external = start_external_cluster(scheduler_file, args.workers, args.threads)
        config = RunConfig(
            scheduler_file=scheduler_file,
            inputs=(inputs,),
            output=output,
            classifiers=(DomainClassifier(device="cpu"),),
            # An external cluster's workers were started with these (RunConfig refuses them with a scheduler).
            workers=None if scheduler_file else args.workers,
            threads_per_worker=None if scheduler_file else args.threads,
            tasks_per_worker=args.tasks_per_worker,
            progress_interval=30,
        )
        base = rss_mib()
        sampler = RssSampler()
        sampler.start()
        t0 = time.perf_counter()
        result = driver_run.run_classification(config)
        wall = time.perf_counter() - t0
        sampler.stop()
        s = result.summary
        print(
            f"stream: {s['files_processed']} files in {wall:.1f} s ({s['files_processed'] / wall:.0f} files/s), exit {result.exit_code}"
        )
        print(f"driver RSS before the run {base:.0f} MiB; during it:")
        for frac in (0.1, 0.25, 0.5, 0.75, 1.0):
            t, mib = sampler.samples[min(len(sampler.samples) - 1, int(frac * len(sampler.samples)) - 1)]
            print(f"  at {t:7.1f} s: {mib:.0f} MiB")
        print(f"  peak {max(m for _, m in sampler.samples):.0f} MiB")

        for proc in external:
            proc.terminate()
            proc.wait()
        t0 = time.perf_counter()
        again = driver_run.run_classification(config)
        print(
            f"resume scan over {again.summary['files_skipped']} completed markers: {time.perf_counter() - t0:.2f} s "
            f"(processed {again.summary['files_processed']}, no cluster started)"
        )
        t0 = time.perf_counter()
        status = compute_status(output)
        print(f"status over {status['files_done']} markers: {time.perf_counter() - t0:.2f} s")
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
