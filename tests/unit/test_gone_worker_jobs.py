"""Worker jobs of `--cluster jobqueue` whose workers connected and are gone (cluster/worker_jobs.py): squeue, not
a timer alone, tells a job that ended (replaced) from one whose nanny restarts its worker slowly (kept), and a
bound cancels a job that runs without its workers for too long, or that squeue cannot tell about."""

from __future__ import annotations

import asyncio
import logging

import pytest
from fake_worker_jobs import StandInCluster, StandInSqueue

from hpc_classify.cluster.worker_jobs import (
    ENDED_AFTER,
    GONE_LIMIT,
    QUEUE_LOOK_INTERVAL,
    REPLACE_INTERVAL,
    START_FAILURES,
    JobKeeper,
)

LOGGER = "hpc_classify.cluster.worker_jobs"


class _Run:
    """One worker job J-0 whose worker connected, a keeper looking every REPLACE_INTERVAL s, and its clock."""

    def __init__(self):
        self.now = 0.0
        self.squeue = StandInSqueue()
        self.cluster = StandInCluster(["J-0"], ["J-0"])
        self.keeper = JobKeeper(self.cluster, clock=lambda: self.now, job_states=self.squeue)
        self.job = self.cluster.workers["J-0"]
        self.squeue.states = {self.job.job_id: "RUNNING"}

    async def rounds(self, seconds: float) -> None:
        """The keeper's looks over the next `seconds`."""
        end = self.now + seconds
        while self.now < end:
            self.now += REPLACE_INTERVAL
            await self.keeper.look()
            for job in self.cluster.workers.values():  # a replacement waits in the queue
                if job is not self.job and self.squeue.states is not None and job.job_id:
                    self.squeue.states.setdefault(job.job_id, "PENDING")

    async def leave(self) -> None:
        """The job's worker connects, then leaves (an OOM kill, its walltime...)."""
        await self.keeper.look()
        self.cluster.connected = []
        await self.keeper.look()


def test_a_job_whose_workers_are_gone_but_that_squeue_lists_running_is_kept(caplog):
    """A nanny restarting its worker after an OOM kill, slowly on a cold file system: the job still runs. It
    used to be cancelled (scancel) and submitted again once its worker had been gone ENDED_AFTER s."""
    asyncio.run(_kept_while_running(caplog))


async def _kept_while_running(caplog):
    run = _Run()
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await run.leave()
        await run.rounds(4 * ENDED_AFTER)
    assert run.cluster.scaled == [] and run.cluster.workers["J-0"] is run.job
    await asyncio.gather(*run.keeper.closing)
    assert not run.job.closed
    told = [r.getMessage() for r in caplog.records if "still RUNNING" in r.getMessage()]
    assert len(told) == 1 and f"Slurm job {run.job.job_id}" in told[0]  # logged once
    run.cluster.connected = ["J-0"]  # the restarted worker is back, under its name
    await run.rounds(GONE_LIMIT)
    assert run.cluster.scaled == [] and run.cluster.workers["J-0"] is run.job


@pytest.mark.parametrize("state", ["COMPLETED", "TIMEOUT", None], ids=["completed", "timeout", "not-listed"])
def test_a_job_whose_workers_are_gone_and_that_squeue_lists_ended_or_not_at_all_is_replaced(caplog, state):
    asyncio.run(_replaced_once_ended(caplog, state))


async def _replaced_once_ended(caplog, state):
    run = _Run()
    run.squeue.states = {run.job.job_id: state} if state else {}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        await run.leave()
        await run.rounds(ENDED_AFTER - REPLACE_INTERVAL)
        assert run.cluster.scaled == []  # a nanny could still restart it
        await run.rounds(QUEUE_LOOK_INTERVAL + REPLACE_INTERVAL)
    assert run.cluster.scaled == [1] and run.cluster.workers["J-0"] is not run.job
    await asyncio.gather(*run.keeper.closing)
    assert run.job.closed  # scancel: harmless for a job that has ended
    assert (
        f"worker job J-0 (Slurm job {run.job.job_id}) has ended ({state or 'no longer listed'}" in caplog.text
    )


def test_squeue_is_asked_as_soon_as_a_jobs_workers_have_been_gone_ended_after():
    """An answer from before then is not used (the job may still have been ending its walltime), nor does
    the QUEUE_LOOK_INTERVAL of the looks for jobs still queued delay the verdict."""
    asyncio.run(_asked_once_gone())


async def _asked_once_gone():
    run = _Run()
    run.cluster = StandInCluster(["J-0", "J-1"], ["J-0"])  # J-1 waits in the queue
    run.keeper = JobKeeper(run.cluster, clock=lambda: run.now, job_states=run.squeue)
    run.job, queued = run.cluster.workers["J-0"], run.cluster.workers["J-1"]
    run.squeue.states = {queued.job_id: "PENDING"}  # J-0's job has ended already
    await run.leave()  # squeue asked about J-1
    assert run.squeue.asked == 1 and run.cluster.scaled == []
    await run.rounds(ENDED_AFTER)
    assert run.squeue.asked == 2 and run.cluster.scaled == [2] and run.cluster.workers["J-1"] is queued


def test_a_job_running_without_its_workers_for_gone_limit_is_cancelled_and_replaced(caplog):
    """Its worker crashed for good, or its job script hangs: the job would hold its node for ever."""
    asyncio.run(_cancelled_when_hung(caplog))


async def _cancelled_when_hung(caplog):
    run = _Run()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await run.leave()
        await run.rounds(GONE_LIMIT - 2 * REPLACE_INTERVAL)
        assert run.cluster.scaled == []
        await run.rounds(QUEUE_LOOK_INTERVAL + 2 * REPLACE_INTERVAL)
    assert run.cluster.scaled == [1] and run.cluster.workers["J-0"] is not run.job
    await asyncio.gather(*run.keeper.closing)
    assert run.job.closed
    assert "is still RUNNING but its workers have been gone" in caplog.text and "cancelling it" in caplog.text
    assert f"/out/_jobs/jobqueue/dask-worker-{run.job.job_id}.err" in caplog.text


def test_while_squeue_fails_a_job_whose_workers_are_gone_is_replaced_only_after_gone_limit(caplog):
    """A broken squeue concludes nothing for GONE_LIMIT s (a slow nanny keeps its job), and cannot keep a
    dead place for ever: then the timer's verdict applies."""
    asyncio.run(_squeue_failing(caplog))


async def _squeue_failing(caplog):
    run = _Run()
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        await run.leave()
        run.squeue.states = None
        await run.rounds(GONE_LIMIT - 2 * REPLACE_INTERVAL)
        assert run.cluster.scaled == [] and run.cluster.workers["J-0"] is run.job
        asked = run.squeue.asked
        assert asked <= 2 + GONE_LIMIT / QUEUE_LOOK_INTERVAL  # at most every QUEUE_LOOK_INTERVAL s
        await run.rounds(QUEUE_LOOK_INTERVAL + 2 * REPLACE_INTERVAL)
    assert run.cluster.scaled == [1] and run.cluster.workers["J-0"] is not run.job
    await asyncio.gather(*run.keeper.closing)
    assert run.job.closed
    assert "squeue gives no answer; taking it as ended" in caplog.text


def test_a_job_queued_again_after_its_workers_left_waits_as_a_queued_job():
    """Requeued after a node failure: it waits in the queue, with no bound, and once it has ended (squeue)
    it is replaced as a job that ended before its worker connected."""
    asyncio.run(_requeued())


async def _requeued():
    run = _Run()
    await run.leave()
    run.squeue.states = {run.job.job_id: "PENDING"}
    await run.rounds(2 * GONE_LIMIT)
    assert run.cluster.scaled == [] and run.cluster.workers["J-0"] is run.job and not run.job.closed
    run.squeue.states = {run.job.job_id: "RUNNING"}  # it starts again; its worker is slow to connect
    await run.rounds(GONE_LIMIT / 2)
    run.cluster.connected = ["J-0"]
    await run.rounds(GONE_LIMIT)
    assert run.cluster.scaled == [] and run.cluster.workers["J-0"] is run.job
    run.cluster.connected = []
    run.squeue.states = {run.job.job_id: "PENDING"}
    await run.rounds(ENDED_AFTER + QUEUE_LOOK_INTERVAL)
    run.squeue.states = {run.job.job_id: "NODE_FAIL"}
    await run.rounds(QUEUE_LOOK_INTERVAL + REPLACE_INTERVAL)
    assert run.cluster.scaled == [1] and run.cluster.workers["J-0"] is not run.job


def test_a_job_running_without_its_worker_ever_connecting_is_cancelled_and_replaced(caplog):
    """A worker that cannot reach the scheduler (a firewall, a wrong --interface) or whose start hangs: its job
    ran until its walltime, holding a node for nothing, and its place in the plan never got a worker."""
    asyncio.run(_running_unconnected(caplog))


async def _running_unconnected(caplog):
    now = [0.0]
    squeue = StandInSqueue()
    cluster = StandInCluster(["J-0", "J-1"], ["J-0"])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    connected, silent = cluster.workers["J-0"], cluster.workers["J-1"]
    squeue.states = {connected.job_id: "RUNNING", silent.job_id: "PENDING"}
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        for _ in range(int(GONE_LIMIT // QUEUE_LOOK_INTERVAL)):  # queued first: that wait does not count
            await keeper.look()
            now[0] += QUEUE_LOOK_INTERVAL
        squeue.states[silent.job_id] = "RUNNING"
        while now[0] < 2 * GONE_LIMIT:  # running since, its worker never connecting
            await keeper.look()
            assert cluster.workers["J-1"] is silent and not silent.closed
            now[0] += QUEUE_LOOK_INTERVAL
        await keeper.look()
        await asyncio.gather(*keeper.closing)
    assert silent.closed and cluster.workers["J-1"] is not silent and cluster.scaled == [2]
    assert not connected.closed
    assert (
        f"Slurm job {silent.job_id}) has been RUNNING for {GONE_LIMIT:.0f} s and its worker never"
        in caplog.text
    )
    assert f"/out/_jobs/jobqueue/dask-worker-{silent.job_id}.err" in caplog.text


def test_a_place_whose_jobs_run_without_ever_connecting_is_given_up_and_its_last_job_cancelled(caplog):
    asyncio.run(_never_connecting_place(caplog))


async def _never_connecting_place(caplog):
    now = [0.0]
    squeue = StandInSqueue()
    cluster = StandInCluster(["J-0"], [])
    keeper = JobKeeper(cluster, clock=lambda: now[0], job_states=squeue)
    jobs = []
    with caplog.at_level(logging.ERROR, logger=LOGGER):
        while len(jobs) < START_FAILURES or not jobs[-1].closed:
            job = cluster.workers["J-0"]
            if job not in jobs:
                jobs.append(job)
            squeue.states = {job.job_id: "RUNNING"}
            await keeper.look()
            await asyncio.gather(*keeper.closing)
            now[0] += QUEUE_LOOK_INTERVAL
            assert now[0] < 10 * GONE_LIMIT, "the place was never given up"
    assert len(jobs) == START_FAILURES and all(job.closed for job in jobs)
    assert cluster.workers["J-0"] is jobs[-1]  # kept in the plan, cancelled: SpecCluster starts no other
    assert keeper.no_worker_can_start is not None
    assert "3 jobs in a row: not submitting it again" in caplog.text
