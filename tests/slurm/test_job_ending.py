"""Ending a job after rank 0's loss (cluster/slurm_job.end_job_for_restart) on the real cluster: the
node that ends the job requeues only the instance it belongs to. Slurm itself requeues a --requeue job whose
batch host it declares DOWN; a requeue sent after that must not end the instance Slurm starts next."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil

import pytest
from test_launcher import wait_until

from hpc_classify.cluster.rank0_heartbeat import planned_ending
from hpc_classify.cluster.slurm_job import (
    RANK0_LOST,
    STILL_RUNNING,
    end_job_for_restart,
    job_instance,
    job_may_be_requeued,
)


@pytest.fixture
def slurm_env(slurm_cluster, monkeypatch: pytest.MonkeyPatch):
    """This process talks to the test cluster, as a node's launcher does to its own."""
    for key, value in slurm_cluster.env.items():
        monkeypatch.setenv(key, value)
    return slurm_cluster


def _sleeper(cluster, tmp_path, *flags: str) -> str:
    job = cluster.sbatch(["-N1", "-n1", *flags, "--wrap", "sleep 600"], cwd=tmp_path)  # its log goes there
    wait_until(lambda: job_instance(job) == ("RUNNING", 0), 60, f"job {job} to run")
    return job


def test_only_the_instance_that_lost_rank0_is_requeued(slurm_env, tmp_path) -> None:
    cluster = slurm_env
    job = _sleeper(cluster, tmp_path, "--requeue")
    try:
        assert job_may_be_requeued(job)
        assert end_job_for_restart(job, True, restart_count=0) == (
            f"requeued job {job}: it restarts and resumes from the markers"
        )
        assert job_instance(job)[1] == 1
        # The same node trying again sends nothing.
        assert end_job_for_restart(job, True, restart_count=0) == (
            f"job {job} was requeued already (restart 1; this was restart 0)"
        )
        # A node of restart 1 that finds the job not running (still COMPLETING restart 0, or PENDING: the
        # requeued job waits 11 s for its old credential to expire) sends nothing either.
        done = end_job_for_restart(job, True, restart_count=1)
        found = re.fullmatch(rf"job {job} is (\w+) already: nothing to end", done)
        assert found is not None and found.group(1) not in STILL_RUNNING, done
        assert job_instance(job)[1] == 1
        # Restart 1 runs: a late requeue from restart 0 leaves it running.
        wait_until(lambda: job_instance(job) == ("RUNNING", 1), 90, f"job {job} to run again")
        assert end_job_for_restart(job, True, restart_count=0).startswith(f"job {job} was requeued already")
        assert job_instance(job) == ("RUNNING", 1)
    finally:
        cluster.run(["scancel", job], check=False)


def test_a_job_that_may_not_be_requeued_is_cancelled(slurm_env, tmp_path) -> None:
    cluster = slurm_env
    job = _sleeper(cluster, tmp_path, "--no-requeue")
    try:
        assert not job_may_be_requeued(job)
        assert end_job_for_restart(job, False, restart_count=0) == (
            f"cancelled job {job}; submit the same command again to resume"
        )
        assert cluster.wait_job(job, timeout=60) == "CANCELLED"
        assert (
            end_job_for_restart(job, False, restart_count=0)
            == f"job {job} is CANCELLED already: nothing to end"
        )
    finally:
        cluster.run(["scancel", job], check=False)


ONE_TRY = dataclasses.replace(RANK0_LOST, tries=1)  # no back-off pauses in the test


@pytest.fixture
def show_job_fails(tmp_path, monkeypatch: pytest.MonkeyPatch):
    """`set_failing(True)`: `scontrol show job` fails (a slurmctld too busy to answer, as it may be while it
    handles a node failure); every other scontrol command is the real one. `set_failing(False)` undoes it."""
    real = shutil.which("scontrol")
    wrapper_dir = tmp_path / "busy-slurmctld"
    wrapper_dir.mkdir()
    wrapper = wrapper_dir / "scontrol"
    wrapper.write_text(
        f'#!/bin/bash\nif [[ "$1" == show ]]; then echo "slurm_load_jobs error: Socket timed out" >&2; exit 1; fi\n'
        f'exec {real} "$@"\n'
    )
    wrapper.chmod(0o755)
    real_path = os.environ["PATH"]

    def set_failing(failing: bool) -> None:
        monkeypatch.setenv("PATH", f"{wrapper_dir}:{real_path}" if failing else real_path)

    return set_failing


@pytest.mark.parametrize("flag", ["--requeue", "--no-requeue"])
def test_when_slurm_does_not_say_a_requeue_is_tried_and_slurm_keeps_no_requeue(
    slurm_env, tmp_path, show_job_fails, flag
) -> None:
    cluster = slurm_env
    job = _sleeper(cluster, tmp_path, flag)
    show_job_fails(True)
    try:
        requeue = job_may_be_requeued(job, ONE_TRY)
        assert requeue is None and job_instance(job, ONE_TRY) is None
        assert "Slurm did not say whether it was submitted with --requeue" in planned_ending(job, requeue)
        done = end_job_for_restart(job, requeue, restart_count=0, patience=ONE_TRY)
        show_job_fails(False)  # read what Slurm did
        if flag == "--requeue":
            assert done == f"requeued job {job}: it restarts and resumes from the markers"
            assert job_instance(job)[1] == 1
        else:  # Slurm refuses to requeue a --no-requeue job: the user's choice holds
            assert done == (
                f"cancelled job {job} (the requeue was refused: Requested operation is presently disabled for "
                f"job {job}); submit the same command again to resume"
            )
            assert cluster.wait_job(job, timeout=60) == "CANCELLED"
    finally:
        cluster.run(["scancel", job], check=False)
