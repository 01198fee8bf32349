"""Worker jobs of `--cluster jobqueue` past their walltime (cluster/worker_jobs.py): Slurm time limits, the
lifetime each worker retires at, and which ended jobs are submitted again. The whole of it runs on the real
test cluster in tests/slurm/test_launcher.py (a run four times longer than one worker job's walltime)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest
from distributed.core import Status

from hpc_classify.cluster.jobqueue import jobqueue_settings
from hpc_classify.cluster.worker_jobs import ENDED_AFTER, JobKeeper, lifetime_environment, slurm_time_seconds
from hpc_classify.config import RunConfig
from hpc_classify.errors import ConfigError


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("30", 1800),
        ("1:30", 90),
        ("00:30:00", 1800),
        ("2-0", 172800),
        ("1-2:3", 93780),
        ("1-02:03:04", 93784),
        ("UNLIMITED", None),
        ("", None),
    ],
)
def test_slurm_time_formats(text, seconds):
    assert slurm_time_seconds(text) == seconds


def test_a_walltime_that_is_no_slurm_time_is_refused():
    with pytest.raises(ConfigError, match=r"jobqueue.slurm.walltime '1h' is not a Slurm time"):
        slurm_time_seconds("1h")


@pytest.mark.parametrize(
    "walltime, lifetime, stagger",
    [("01:00:00", 3600 - 300 - 120, 120), ("00:30:00", 1800 - 180 - 90, 90), ("00:01:00", 60 - 30 - 3, 3)],
)
def test_workers_retire_a_margin_and_their_stagger_before_the_walltime(walltime, lifetime, stagger):
    assert lifetime_environment(walltime, []) == {
        "DASK_DISTRIBUTED__WORKER__LIFETIME__DURATION": f"{lifetime}s",
        "DASK_DISTRIBUTED__WORKER__LIFETIME__STAGGER": f"{stagger}s",
    }
    assert lifetime + stagger < slurm_time_seconds(walltime)  # the latest retirement is still before it


def test_a_sites_own_lifetime_or_no_walltime_adds_none():
    import dask

    assert lifetime_environment("01:00:00", ["--lifetime=50m"]) == {}
    assert lifetime_environment("01:00:00", ["--lifetime", "50m"]) == {}
    with dask.config.set({"distributed.worker.lifetime.duration": "50m"}):
        assert lifetime_environment("01:00:00", []) == {}
    assert lifetime_environment(None, []) == {}
    with pytest.raises(ConfigError, match=r"leaves a worker job no time to work"):
        lifetime_environment("0:40", [])


def test_the_job_script_exports_the_lifetime_for_cpu_and_gpu_workers():
    import dask
    import dask_jobqueue  # noqa: F401  (its defaults: jobqueue.slurm.walltime 00:30:00)

    def prologue(device: str) -> list[str]:
        config = RunConfig(
            classifiers=(SimpleNamespace(device=device),), inputs=["in"], output="out", cluster="jobqueue"
        )
        return jobqueue_settings(config)["job_script_prologue"]

    for device in ("cpu", "cuda"):  # `dask cuda worker` takes no --lifetime: the environment reaches both
        lines = prologue(device)
        for name, value in lifetime_environment("00:30:00", []).items():
            assert f"export {name}={value}" in lines
    with dask.config.set(
        {"jobqueue.slurm.walltime": "02:00:00", "jobqueue.slurm.job-script-prologue": ["x"]}
    ):
        lines = prologue("cpu")
    assert lines[0] == "x" and "export DASK_DISTRIBUTED__WORKER__LIFETIME__DURATION=6780s" in lines


class _Job:
    def __init__(self):
        self.closed = False

    async def close(self):
        self.closed = True


class _Cluster:
    """What JobKeeper reads of a dask-jobqueue cluster: its plan, its jobs and the scheduler's workers. (A
    stand-in: dask-cuda's per-GPU workers cannot start here; the real cluster is in tests/slurm.)"""

    def __init__(self, jobs, connected):
        self.status = Status.running
        self.worker_spec = {job: {} for job in jobs}
        self.workers = {job: _Job() for job in jobs}
        self.connected = connected
        self.scaled = []

    @property
    def scheduler_info(self):
        return {"workers": {f"tcp://h:{i}": {"name": name} for i, name in enumerate(self.connected)}}

    def scale(self, jobs):
        self.scaled.append(jobs)
        self.workers.update({job: _Job() for job in self.worker_spec if job not in self.workers})


def test_only_jobs_whose_workers_left_for_a_while_are_replaced():
    asyncio.run(_jobs_left_for_a_while())  # the keeper runs on the cluster's event loop


async def _jobs_left_for_a_while():
    now = [0.0]
    # Job 0: dask-cuda's two workers (names of the job and a GPU); job 1: one worker; job 2: still queued.
    cluster = _Cluster(["J-0", "J-1", "J-2"], ["J-0-0", "J-0-1", "J-1"])
    keeper = JobKeeper(cluster, clock=lambda: now[0])
    keeper.replace_ended_jobs()
    cluster.connected = ["J-1"]  # job 0's workers left (its walltime)
    keeper.replace_ended_jobs()
    now[0] = ENDED_AFTER - 1
    keeper.replace_ended_jobs()
    assert cluster.scaled == []  # a nanny could still restart them
    old = cluster.workers["J-0"]
    cluster.connected = ["J-1", "J-0-1"]  # one came back: the job runs
    now[0] = ENDED_AFTER + 1
    keeper.replace_ended_jobs()
    assert cluster.scaled == [] and cluster.workers["J-0"] is old
    cluster.connected = ["J-1"]
    keeper.replace_ended_jobs()
    now[0] += ENDED_AFTER
    keeper.replace_ended_jobs()
    assert cluster.scaled == [3]  # job 0 forgotten, then submitted again; the queued job 2 untouched
    assert cluster.workers["J-0"] is not old and set(cluster.workers) == {"J-0", "J-1", "J-2"}
    for closing in list(keeper.closing):
        await closing
    assert old.closed
    # The replacement, named as job 0 was, waits in the queue: it never connected, so it is left alone.
    replacement = cluster.workers["J-0"]
    for _ in range(3):
        now[0] += 2 * ENDED_AFTER
        keeper.replace_ended_jobs()
    assert cluster.scaled == [3] and cluster.workers["J-0"] is replacement and not replacement.closed
    cluster.status = Status.closing
    cluster.connected = []
    now[0] += 10 * ENDED_AFTER
    keeper.replace_ended_jobs()
    assert cluster.scaled == [3]  # a closing cluster is left to close


def test_a_job_spec_cluster_forgot_first_is_replaced_and_its_queued_replacement_kept():
    asyncio.run(_forgotten_by_spec_cluster())


async def _forgotten_by_spec_cluster():
    now = [0.0]
    cluster = _Cluster(["J-0"], ["J-0"])
    keeper = JobKeeper(cluster, clock=lambda: now[0])
    keeper.replace_ended_jobs()
    cluster.connected = []
    del cluster.workers["J-0"]  # SpecCluster's own bookkeeping, lost-worker-timeout (15 s) after it left
    now[0] += 15
    keeper.replace_ended_jobs()
    assert cluster.scaled == [1]
    replacement = cluster.workers["J-0"]  # the same name, queued: never connected
    for _ in range(3):
        now[0] += 2 * ENDED_AFTER
        keeper.replace_ended_jobs()
    assert cluster.scaled == [1] and cluster.workers["J-0"] is replacement and not replacement.closed
