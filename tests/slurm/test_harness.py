"""The Slurm test harness itself: three nodes, srun inside sbatch, the caller's environment,
signal + requeue, failure reporting, and a teardown that leaves nothing running."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest


def wait_until(ready: Callable[[], bool], timeout: float, what: str, poll_interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout} s")
        time.sleep(poll_interval)


def test_srun_in_sbatch_runs_one_task_per_node(slurm_cluster, tmp_path: Path) -> None:
    job = slurm_cluster.sbatch(
        [
            "-N3",
            "-o",
            "out-%j.txt",
            "--wrap",
            # Single quotes inside: the batch shell (on node1) must not expand them first.
            "srun --ntasks-per-node=1 bash -c 'echo $SLURMD_NODENAME $SLURM_NODEID'",
        ],
        cwd=tmp_path,
    )
    assert slurm_cluster.wait_job(job, timeout=60) == "COMPLETED"
    lines = (tmp_path / f"out-{job}.txt").read_text().split("\n")
    assert sorted(line for line in lines if line) == ["node1 0", "node2 1", "node3 2"]


def test_job_inherits_the_callers_environment(slurm_cluster, tmp_path: Path) -> None:
    """sbatch's default --export=ALL: our variables and the venv's python reach every node."""
    job = slurm_cluster.sbatch(
        [
            "-N3",
            "-o",
            "out.txt",
            "--wrap",
            "srun --ntasks-per-node=1 python -c "
            "\"import os, hpc_classify; print(os.environ['SLURMD_NODENAME'], os.environ['HPC_TEST_MARK'])\"",
        ],
        cwd=tmp_path,
        env={"HPC_TEST_MARK": "inherited-42"},
    )
    assert slurm_cluster.wait_job(job, timeout=60) == "COMPLETED", (tmp_path / "out.txt").read_text()
    lines = sorted((tmp_path / "out.txt").read_text().split())
    assert lines == sorted(["node1", "node2", "node3"] + ["inherited-42"] * 3)


def test_signal_to_batch_script_then_requeue_restarts_the_job(slurm_cluster, tmp_path: Path) -> None:
    """What classify.sbatch relies on: `--signal`/`scancel --signal=USR1 --batch` reaches the script's
    trap, `scontrol requeue` puts the job back, and the rerun sees SLURM_RESTART_COUNT=1."""
    script = tmp_path / "job.sh"
    script.write_text(
        "#!/bin/bash\n"
        'echo "start ${SLURM_RESTART_COUNT:-0}" >> events\n'
        'if [ -n "$SLURM_RESTART_COUNT" ]; then exit 0; fi\n'
        "trap 'echo usr1 >> events; scontrol requeue $SLURM_JOB_ID; exit 0' USR1\n"
        "touch ready\n"
        "tail -f /dev/null & wait $!\n"
    )
    job = slurm_cluster.sbatch(["-N1", "--requeue", "-o", "out.txt", str(script)], cwd=tmp_path)
    wait_until((tmp_path / "ready").exists, 60, "job start")
    slurm_cluster.run(["scancel", "--signal=USR1", "--batch", job])
    assert slurm_cluster.wait_job(job, timeout=120) == "COMPLETED", slurm_cluster.job_info(job)
    assert (tmp_path / "events").read_text().split("\n") == ["start 0", "usr1", "start 1", ""]
    assert slurm_cluster.job_info(job)["Restarts"] == "1"


def test_start_failure_names_the_daemon_and_leaves_nothing_running(slurm_harness, tmp_path: Path) -> None:
    """A slurmd that cannot bind its port: start() fails at once with that node's log, then tears down."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen()
    busy_port = blocker.getsockname()[1]

    class PortTaken(slurm_harness.SlurmCluster):
        def write_config(self) -> None:
            super().write_config()
            text = self.conf_path.read_text()
            start = text.index("NodeName=node3")
            line = text[start : text.index("\n", start)]
            port = next(word for word in line.split() if word.startswith("Port="))
            self.conf_path.write_text(text.replace(line, line.replace(port, f"Port={busy_port}")))

    cluster = PortTaken(tmp_path / "c")
    with blocker, pytest.raises(slurm_harness.SlurmClusterError) as failure:
        cluster.start(timeout=60)
    message = str(failure.value)
    assert "slurmd-node3" in message
    assert "Address already in use" in message
    assert_nothing_running(cluster)


def test_teardown_stops_daemons_and_running_jobs(slurm_harness, tmp_path: Path) -> None:
    """A second cluster beside the session's (own ports), torn down while a job still runs."""
    cluster = slurm_harness.SlurmCluster(tmp_path / "c")
    with cluster:
        job = cluster.sbatch(
            ["-N3", "--wrap", "srun bash -c 'touch started-$SLURM_NODEID; tail -f /dev/null'"], cwd=tmp_path
        )
        wait_until(lambda: len(list(tmp_path.glob("started-*"))) == 3, 60, "job steps on 3 nodes")
        pids = {label: pid for label, pid in cluster._pids().items()}
        assert all(pids.values()), pids
        assert cluster.job_processes(), "job steps should carry this cluster's SLURM_CONF"
        assert cluster.job_info(job)["JobState"] == "RUNNING"
    assert_nothing_running(cluster)


def assert_nothing_running(cluster) -> None:
    from slurm_cluster import _pid_alive

    alive = {label: pid for label, pid in cluster._pids().items() if pid and _pid_alive(pid)}
    assert alive == {}
    assert cluster.job_processes() == []
