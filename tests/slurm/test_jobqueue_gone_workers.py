"""A jobqueue worker job whose worker is gone longer than ENDED_AFTER while its job still runs (a nanny
restarting it after an OOM kill, slowly on a cold file system) keeps its job: squeue lists it RUNNING
(cluster/worker_jobs.py). It used to be cancelled and submitted again. Unit tests: tests/unit/test_gone_worker_jobs.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from test_launcher import assert_complete_exactly_once, run_args, wait_until, write_corpus

from hpc_classify.cluster.job_layout import jobqueue_log_dir

# The driver, with the keeper's clocks shortened (the test holds the nanny's restart past ENDED_AFTER).
SHORT_CLOCKS_DRIVER = """
import sys
from hpc_classify.cluster import worker_jobs
worker_jobs.ENDED_AFTER = 1.0
worker_jobs.REPLACE_INTERVAL = 0.5
worker_jobs.QUEUE_LOOK_INTERVAL = 1.0
from hpc_classify.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "in")


def test_jobqueue_worker_restarted_by_its_nanny_after_ended_after_keeps_its_job(
    slurm_cluster, tiny_domain_model, corpus, tmp_path, gated
) -> None:
    gate, gate_env = gated
    out = tmp_path / "out"
    cmd = [sys.executable, "-c", SHORT_CLOCKS_DRIVER, "run", "--cluster", "jobqueue", "--workers", "1"]
    cmd += run_args(corpus, out, tiny_domain_model)
    env = {**slurm_cluster.env, **gate_env}
    log_path = tmp_path / "run.log"
    log = log_path.open("w")
    proc = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    try:

        def worker_pids() -> set[int]:
            return {int(p.name.split("-")[2]) for p in gate.glob("started-*")}

        wait_until(lambda: bool(worker_pids()), 240, "the worker to hold a file")
        (first,) = worker_pids()
        (gate / "hold-start").touch()  # the nanny's new worker waits at its start until the keeper has judged
        os.kill(first, signal.SIGKILL)  # as the kernel's OOM killer: its nanny starts another worker
        still_running = "is still RUNNING: waiting for them"
        wait_until(lambda: still_running in log_path.read_text(), 240, "the keeper to find the job running")
        (gate / "hold-start").unlink()
        wait_until(lambda: worker_pids() - {first}, 240, "the nanny's new worker to take the file up")
        # Before the run ends (its end retires the worker: then the job does end).
        before_the_end = log_path.read_text()
        (gate / "hold").unlink()
        assert proc.wait(timeout=240) == 0, log_path.read_text()
    finally:
        proc.kill()
        log.close()
    # The keeper held the kept job: the cluster's close then failed its check that every job was closed.
    assert "error while closing" not in log_path.read_text(), log_path.read_text()
    assert "has ended" not in before_the_end and "cancelling it" not in before_the_end, before_the_end
    assert_complete_exactly_once(corpus, out)
    assert len(list(Path(jobqueue_log_dir(str(out))).glob("*.out"))) >= 1
    wait_until(lambda: not slurm_cluster.run(["squeue", "-h"]).stdout.strip(), 60, "worker jobs to end")
