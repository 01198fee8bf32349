"""Worker jobs of `--cluster jobqueue` past their walltime (cluster/worker_jobs.py): Slurm time limits, the
lifetime each worker retires at, and which ended jobs are submitted again. The whole of it runs on the real
test cluster in tests/slurm/test_launcher.py (a run four times longer than one worker job's walltime)."""

from __future__ import annotations

import asyncio
import logging
import os
from types import SimpleNamespace

import pytest
from distributed.core import Status
from fake_worker_jobs import StandInCluster as _Cluster
from fake_worker_jobs import StandInSqueue as _Squeue

from hpc_classify.cluster.jobqueue import jobqueue_settings, slurm_cluster_class
from hpc_classify.cluster.worker_jobs import (
    ENDED_AFTER,
    QUEUE_LOOK_INTERVAL,
    START_FAILURES,
    JobKeeper,
    slurm_job_states,
)
from hpc_classify.cluster.worker_lifetime import lifetime_environment, slurm_time_seconds
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

    slurm_cluster_class()  # dask_jobqueue's defaults (jobqueue.slurm.walltime 00:30:00), SIGINT's handler kept

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


def test_only_jobs_whose_workers_left_for_a_while_are_replaced():
    asyncio.run(_jobs_left_for_a_while())  # the keeper runs on the cluster's event loop


async def _jobs_left_for_a_while():
    now = [0.0]
    squeue = _Squeue()
    # Job 0: dask-cuda's two workers (names of the job and a GPU); job 1: one worker; job 2: still queued.
    cluster = _Cluster(["J-0", "J-1", "J-2"], ["J-0-0", "J-0-1", "J-1"])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    old, running, queued = (cluster.workers[name] for name in ("J-0", "J-1", "J-2"))
    squeue.states = {old.job_id: "RUNNING", running.job_id: "RUNNING", queued.job_id: "PENDING"}
    await keeper.look()
    cluster.connected = ["J-1"]  # job 0's workers left (its walltime)
    await keeper.look()
    now[0] = ENDED_AFTER - 1
    await keeper.look()
    assert cluster.scaled == []  # a nanny could still restart them
    cluster.connected = ["J-1", "J-0-1"]  # one came back: the job runs
    now[0] = ENDED_AFTER + 1
    await keeper.look()
    assert cluster.scaled == [] and cluster.workers["J-0"] is old
    cluster.connected = ["J-1"]
    await keeper.look()
    now[0] += ENDED_AFTER
    squeue.states[old.job_id] = "COMPLETED"  # its worker retired before the walltime, and the job ended
    await keeper.look()
    assert cluster.scaled == [3]  # job 0 forgotten, then submitted again; the queued job 2 untouched
    assert cluster.workers["J-0"] is not old and set(cluster.workers) == {"J-0", "J-1", "J-2"}
    for closing in list(keeper.closing):
        await closing
    assert old.closed
    # The replacement, named as job 0 was, waits in the queue: it never connected, so it is left alone.
    replacement = cluster.workers["J-0"]
    squeue.states[replacement.job_id] = "PENDING"
    for _ in range(3):
        now[0] += 2 * ENDED_AFTER
        await keeper.look()
    assert cluster.scaled == [3] and cluster.workers["J-0"] is replacement and not replacement.closed
    cluster.status = Status.closing
    cluster.connected = []
    now[0] += 10 * ENDED_AFTER
    await keeper.look()
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


def test_jobs_that_ended_before_their_worker_connected_are_replaced_queued_ones_kept(caplog):
    asyncio.run(_ended_before_connecting(caplog))


async def _ended_before_connecting(caplog):
    now = [0.0]
    squeue = _Squeue()
    # Job 0 runs its worker; job 1 waits in the queue; job 2's node failed before its worker connected.
    cluster = _Cluster(["J-0", "J-1", "J-2"], ["J-0"])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    running, queued, failed = (cluster.workers[name] for name in ("J-0", "J-1", "J-2"))
    squeue.states = {running.job_id: "RUNNING", queued.job_id: "PENDING", failed.job_id: "NODE_FAIL"}
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.worker_jobs"):
        await keeper.look()
    assert cluster.scaled == [3] and cluster.workers["J-1"] is queued and cluster.workers["J-0"] is running
    assert cluster.workers["J-2"] is not failed
    await asyncio.gather(*keeper.closing)
    assert failed.closed and not queued.closed
    assert f"Slurm job {failed.job_id}) ended (NODE_FAIL) before its worker connected" in caplog.text
    assert f"/out/_jobs/jobqueue/dask-worker-{failed.job_id}.err" in caplog.text
    # squeue is asked again only QUEUE_LOOK_INTERVAL later; a job it no longer lists has ended too (Slurm
    # forgets ended jobs after MinJobAge), one it lists as pending or requeued has not.
    replacement = cluster.workers["J-2"]
    squeue.states = {queued.job_id: "PENDING", replacement.job_id: "REQUEUED"}
    now[0] += QUEUE_LOOK_INTERVAL / 2
    await keeper.look()
    assert squeue.asked == 1
    now[0] += QUEUE_LOOK_INTERVAL
    await keeper.look()
    assert squeue.asked == 2 and cluster.scaled == [3] and cluster.workers["J-2"] is replacement
    squeue.states = None  # squeue failed: nothing is concluded from the jobs it did not list
    now[0] += QUEUE_LOOK_INTERVAL
    await keeper.look()
    assert cluster.scaled == [3] and set(cluster.workers.values()) == {running, queued, replacement}
    squeue.states = {queued.job_id: "PENDING"}
    now[0] += QUEUE_LOOK_INTERVAL
    await keeper.look()
    assert cluster.scaled == [3, 3] and cluster.workers["J-2"] is not replacement


def test_a_place_whose_jobs_keep_failing_at_start_is_given_up_naming_the_output(caplog):
    asyncio.run(_failing_at_start(caplog))


async def _failing_at_start(caplog):
    now = [0.0]
    squeue = _Squeue()
    cluster = _Cluster(["J-0", "J-1"], ["J-0"])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    submitted = []
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.worker_jobs"):
        for _ in range(START_FAILURES + 2):  # every job of J-1 fails as it starts (a broken prologue)
            submitted.append(cluster.workers["J-1"])
            squeue.states = {cluster.workers["J-0"].job_id: "RUNNING"}
            await keeper.look()
            now[0] += QUEUE_LOOK_INTERVAL
    assert len(set(submitted)) == START_FAILURES and cluster.scaled == [2] * (START_FAILURES - 1)
    last = submitted[-1]
    assert cluster.workers["J-1"] is last and not last.closed  # kept in the plan: SpecCluster starts no other
    assert squeue.asked == START_FAILURES  # only jobs still waiting for a worker are asked about
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "3 jobs in a row: not submitting it again" in errors[0]
    assert f"/out/_jobs/jobqueue/dask-worker-{last.job_id}.err" in errors[0]


def test_a_job_that_connects_resets_its_places_failures():
    asyncio.run(_connects_after_failures())


async def _connects_after_failures():
    now = [0.0]
    squeue = _Squeue()
    cluster = _Cluster(["J-0"], [])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    for _ in range(START_FAILURES - 1):
        await keeper.look()  # not listed: ended
        now[0] += QUEUE_LOOK_INTERVAL
    cluster.connected = ["J-0"]  # the next one starts its worker
    squeue.states = {cluster.workers["J-0"].job_id: "RUNNING"}
    await keeper.look()
    cluster.connected = []  # it retires at its walltime, and its replacement fails at start again
    keeper.replace_ended_jobs()
    now[0] += ENDED_AFTER
    squeue.states = {}  # it has ended: no longer listed
    await keeper.look()
    assert cluster.scaled == [1] * START_FAILURES
    squeue.states = {}
    now[0] += QUEUE_LOOK_INTERVAL
    await keeper.look()
    assert cluster.scaled == [1] * (START_FAILURES + 1)  # one failure since it connected: tried again


def test_squeue_states_are_read_and_a_failed_squeue_is_no_answer(tmp_path, monkeypatch):
    squeue = tmp_path / "squeue"
    squeue.write_text(
        '#!/bin/sh\necho "$@" > "$(dirname "$0")/args"\nprintf "101 PENDING\\n102 NODE_FAIL\\n"\n'
    )
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert asyncio.run(slurm_job_states()) == {"101": "PENDING", "102": "NODE_FAIL"}
    assert "--states=all" in (tmp_path / "args").read_text()  # ended jobs Slurm still keeps are listed
    squeue.write_text(
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller' >&2\nexit 1\n"
    )
    assert asyncio.run(slurm_job_states()) is None


SETTINGS_FROM_THE_ENVIRONMENT = """
import json
from types import SimpleNamespace
from hpc_classify.cluster.jobqueue import jobqueue_settings, slurm_cluster_class
from hpc_classify.config import RunConfig
config = RunConfig(classifiers=(SimpleNamespace(device="cpu"),), inputs=["in"], output="out", cluster="jobqueue")
settings = jobqueue_settings(config)
print(json.dumps([settings["job_script_prologue"][0], settings["worker_extra_args"], settings["memory"]]))
"""


def test_site_settings_given_as_dask_environment_variables_take_effect():
    """DASK_JOBQUEUE__SLURM__JOB_SCRIPT_PROLOGUE and the like: Dask keeps their underscore spelling as the
    key, which a plain dict lookup of `job-script-prologue` missed (the site's `module load` never ran)."""
    import json
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "DASK_JOBQUEUE__SLURM__JOB_SCRIPT_PROLOGUE": '["module load site-python"]',
        "DASK_JOBQUEUE__SLURM__WORKER_EXTRA_ARGS": '["--resources", "gpu=1"]',
        "DASK_JOBQUEUE__SLURM__MEMORY": "16GB",
    }
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_FROM_THE_ENVIRONMENT],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    prologue_first, worker_args, memory = json.loads(done.stdout)
    assert prologue_first == "module load site-python"
    assert worker_args[:2] == ["--resources", "gpu=1"] and memory == "16GB"


def test_no_worker_can_start_once_every_place_is_given_up_and_none_is_connected():
    asyncio.run(_every_place_given_up())


async def _every_place_given_up():
    now = [0.0]
    squeue = _Squeue()
    squeue.states = {}  # every job it is asked about has ended (no longer listed)
    cluster = _Cluster(["J-0", "J-1"], [])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    verdicts = []
    for _ in range(START_FAILURES):
        await keeper.look()
        verdicts.append(keeper.no_worker_can_start)
        now[0] += QUEUE_LOOK_INTERVAL
    assert verdicts[:-1] == [None] * (START_FAILURES - 1)  # places still tried
    last = max(cluster.workers.values(), key=lambda job: int(job.job_id))
    assert "no worker can start" in verdicts[-1]
    assert f"dask-worker-{last.job_id}.err" in verdicts[-1] and f"sacct -j {last.job_id}" in verdicts[-1]
    cluster.connected = ["J-0"]  # a worker of a given-up job connects after all (it was only slow to)
    keeper.replace_ended_jobs()
    assert keeper.no_worker_can_start is None


def test_a_place_still_tried_means_a_worker_may_come():
    asyncio.run(_one_place_left())


async def _one_place_left():
    now = [0.0]
    squeue = _Squeue()
    cluster = _Cluster(["J-0", "J-1"], [])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    for _ in range(START_FAILURES + 1):  # J-0's jobs end at start; J-1's job waits in the queue
        squeue.states = {cluster.workers["J-1"].job_id: "PENDING"}
        await keeper.look()
        now[0] += QUEUE_LOOK_INTERVAL
    assert cluster.workers["J-0"] in keeper.given_up and keeper.no_worker_can_start is None


# A failed submission (cluster/worker_jobs.py): SpecCluster keeps the job, with no job id.
TIMED_OUT = "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation"


def test_a_job_whose_sbatch_failed_is_submitted_again(caplog):
    asyncio.run(_submitted_again(caplog))


async def _submitted_again(caplog):
    now = [0.0]
    squeue = _Squeue()
    cluster = _Cluster(["J-0", "J-1"], ["J-0"])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    cluster.sbatch_errors = [TIMED_OUT]
    del cluster.workers["J-1"]
    cluster.scale(jobs=2)  # J-1's first submission fails: listed, with no job id
    failed = cluster.workers["J-1"]
    assert failed.job_id is None
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.worker_jobs"):
        await keeper.look()
    replacement = cluster.workers["J-1"]
    assert replacement is not failed and replacement.job_id is not None and cluster.scaled[-1] == 2
    assert "worker job J-1 could not be submitted" in caplog.text and TIMED_OUT in caplog.text
    assert squeue.asked == 1  # squeue was asked about the submitted replacement only once it had an id
    squeue.states = {cluster.workers["J-0"].job_id: "RUNNING", replacement.job_id: "PENDING"}
    for _ in range(3):  # the replacement waits in the queue: left alone
        now[0] += QUEUE_LOOK_INTERVAL
        await keeper.look()
    assert cluster.workers["J-1"] is replacement and keeper.no_worker_can_start is None


def test_a_place_whose_sbatch_keeps_failing_is_given_up_naming_sbatchs_error(caplog):
    asyncio.run(_sbatch_keeps_failing(caplog))


async def _sbatch_keeps_failing(caplog):
    now = [0.0]
    cluster = _Cluster(["J-0"], [])
    cluster.sbatch_errors = [TIMED_OUT] * (START_FAILURES + 5)
    del cluster.workers["J-0"]
    cluster.scale(jobs=1)
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=_Squeue())
    with caplog.at_level(logging.WARNING, logger="hpc_classify.cluster.worker_jobs"):
        for _ in range(START_FAILURES + 2):
            await keeper.look()
            now[0] += QUEUE_LOOK_INTERVAL
    # The first scale, then one per failure but the last: the place is kept in the plan, given up.
    assert cluster.scaled == [1] * START_FAILURES
    assert cluster.workers["J-0"] in keeper.given_up
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and f"{START_FAILURES} jobs in a row: not submitting it again" in errors[0]
    assert TIMED_OUT in errors[0]
    assert "no worker can start" in keeper.no_worker_can_start and TIMED_OUT in keeper.no_worker_can_start


def test_sbatch_failures_and_jobs_ending_at_start_count_together():
    asyncio.run(_mixed_failures())


async def _mixed_failures():
    now = [0.0]
    squeue = _Squeue()  # lists nothing: every submitted job has ended
    cluster = _Cluster(["J-0"], [])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    cluster.sbatch_errors = [TIMED_OUT]
    for _ in range(START_FAILURES + 1):  # a job that ended, a failed sbatch, a job that ended: given up
        await keeper.look()
        now[0] += QUEUE_LOOK_INTERVAL
    assert cluster.scaled == [1] * (START_FAILURES - 1) and keeper.no_worker_can_start is not None
