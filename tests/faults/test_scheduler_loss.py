"""The Dask scheduler killed mid-run (SIGKILL: out of memory, a crash, its node gone): the driver stops as on a
stop signal, exit 3 with the summary naming the lost scheduler, so that a batch script requeues the job; what
the workers finished before the loss counts, and a rerun on a new cluster completes every file exactly once.

A real `dask scheduler` and `dask worker` are started as processes of their own, as the Slurm launcher and a
user's own cluster run them (--scheduler-file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from driver_support import (
    CLI,
    all_ids,
    cli_env,
    make_corpus,
    markers,
    output_ids,
    run_args,
    run_cli,
    summary,
    temp_files,
    wait_for,
)

PRELOAD = str(Path(__file__).with_name("fault_preload.py"))


def start_process(argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    with open(log, "w") as out:  # the child keeps its own descriptor
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def stop_group(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=60)


def scheduler_address(scheduler_file: Path) -> str | None:
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):
        return None  # not written yet (the scheduler writes it once it listens)


# --dask-report: Dask's performance report is kept by the scheduler; its end must not hold up or fail the run.
@pytest.mark.parametrize("report", [(), ("--dask-report",)], ids=["plain", "dask-report"])
def test_scheduler_killed_mid_run_stops_resumably_then_a_new_cluster_completes(
    tmp_path, tiny_domain_model, report
):
    inputs, output, stall = tmp_path / "in", tmp_path / "out", tmp_path / "stall"
    stall.mkdir()
    expected = make_corpus(inputs, n_files=4, docs_per_file=5)
    with open(inputs / "part-003.jsonl", "a", encoding="utf-8") as f:  # runs until the worker is killed
        f.write(json.dumps({"id": "stall", "text": "XSTALLX waits for the end"}) + "\n")
    expected["part-003.jsonl"] = [*expected["part-003.jsonl"], "stall"]
    scheduler_file = tmp_path / "scheduler.json"
    env = cli_env()
    worker_env = cli_env(
        DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([PRELOAD]),
        HPC_CLASSIFY_TEST_STALL_DIR=str(stall),
        HPC_CLASSIFY_TEST_STALL_TEXT="XSTALLX",
    )
    python = [sys.executable, "-m"]
    scheduler = start_process(
        [*python, "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file)]
        + ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"],
        tmp_path / "scheduler.log",
        env,
    )
    worker = driver = None
    try:
        address = wait_for(lambda: scheduler_address(scheduler_file), timeout=120, what="the scheduler file")
        # Two threads: the other files finish beside the stalled one; all four are in flight at once.
        worker = start_process(
            [*python, "distributed.cli.dask_worker", "--scheduler-file", str(scheduler_file)]
            + ["--nthreads", "2", "--no-dashboard", "--name", "w0"],
            tmp_path / "worker.log",
            worker_env,
        )
        args = ["run", "--input", str(inputs), "--output", str(output), "--model", str(tiny_domain_model)]
        args += ["--device", "cpu", "--scheduler-file", str(scheduler_file), "--group-bytes", "0", *report]
        driver = start_process([*CLI, *args, "--progress-interval", "2"], tmp_path / "run1.log", env)
        wait_for(lambda: list(stall.iterdir()), timeout=240, what="the worker to start the stalled file")
        # The driver is frozen while the other files finish: their results reach no driver before the
        # scheduler is gone, only their markers on disk. They must count as this run's work.
        os.kill(driver.pid, signal.SIGSTOP)
        wait_for(lambda: len(markers(output)) == 3, timeout=240, what="the other files to finish")
        os.kill(scheduler.pid, signal.SIGKILL)
        scheduler.wait(timeout=60)
        os.kill(driver.pid, signal.SIGCONT)
        code = driver.wait(timeout=240)
    finally:
        for proc in (driver, worker, scheduler):
            if proc is not None:
                if proc is driver and proc.poll() is None:
                    os.kill(proc.pid, signal.SIGCONT)
                stop_group(proc)
    log = (tmp_path / "run1.log").read_text()
    assert code == 3, log[-4000:]
    assert f"lost the Dask scheduler at {address}" in log
    assert "Traceback" not in log, log[-4000:]
    if report:
        assert "no Dask performance report: the client lost its scheduler" in log
    s = summary(output)
    assert s["exit_code"] == 3
    assert s["stop_reason"].startswith(f"lost the Dask scheduler at {address}")
    assert s["files_processed"] == 3 == len(markers(output))
    assert s["files_remaining"] == 1 and s["files_failed"] == 0
    assert not (output / "_failures.ndjson").exists() or not (output / "_failures.ndjson").read_text().strip()
    assert temp_files(output) == []

    # A new cluster (the run's own local one): only the stalled file is left, and it is done once.
    result = run_cli(run_args(inputs, output, tiny_domain_model, "--group-bytes", "0"), env=cli_env())
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(output)["files_processed"] == 1
    assert markers(output) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []
