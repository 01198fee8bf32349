"""Worker jobs of `--cluster jobqueue` that outlive their Slurm time limit.

Each worker is a Slurm job with a walltime (`jobqueue.slurm.walltime`, 30 min by default); a run over a
corpus lasts longer. Two things keep such a run going, as dask-jobqueue's docs advise:

- each worker retires by itself a margin before its walltime (worker_lifetime.py);
- a worker job that has ended is submitted again. SpecCluster forgets a worker that left only when its name
  is gone from the scheduler for `lost-worker-timeout` (never for dask-cuda's workers, named after the job
  and a GPU; `keep_worker_jobs` sets it to never, so that a worker its nanny restarts slowly keeps its job),
  and starts one in its place only when it is scaled:
  neither `scale` nor `adapt` (whose target is unchanged) does so by itself, so the run would wait without
  workers until `--worker-wait` stopped it. `keep_worker_jobs` looks every REPLACE_INTERVAL seconds for
  jobs whose workers have left, forgets them, and scales the cluster to its own plan, which starts new ones.

A job whose workers have been gone ENDED_AFTER seconds may have ended (its walltime) or may still run (a nanny
restarting its worker after an OOM kill, slowly on a cold shared file system): the keeper asks `squeue`. Ended
or no longer listed: replaced. Running: kept (logged once), until its workers have been gone GONE_LIMIT
seconds (a worker that crashed for good, a job script that hangs): then cancelled and replaced. Queued again
(requeued after a node failure), suspended: kept, as a job waiting for its first worker. squeue giving no
answer: the timer's verdict, GONE_LIMIT seconds after they left.

A job can also end before its worker ever connected (its node failed, its worker crashed at start, its
walltime ran out while it started): nothing of it reaches the scheduler, so only Slurm can tell it from a
job still waiting in the queue. While jobs wait for their first worker, the keeper asks `squeue` (at most
every QUEUE_LOOK_INTERVAL seconds; slurm_queue.py) and replaces those it no longer lists or lists as ended.
One that squeue lists as running for GONE_LIMIT seconds without its worker connecting (a worker that cannot
reach the scheduler: a firewall, a wrong --interface; a start that hangs) is cancelled and replaced the same
way: it would otherwise hold its node until its walltime, for nothing. A job that fails at start fails again:
after START_FAILURES such jobs in a row in one place of the plan the keeper stops submitting it (the last one
cancelled, should it still run), with an error naming the last job's output files.

A job's submission can fail too (`sbatch` timing out on a busy slurmctld): SpecCluster keeps such a job in
its plan and its list of jobs, with no job id, and never submits that place again. The keeper forgets it and
scales the cluster to its plan, as for a job that ended before connecting, and counts it towards the same
START_FAILURES: an sbatch that keeps failing ends in the keeper's error naming sbatch's error. When that is
every place of the plan and no worker is connected, no worker can come: `why_no_worker_can_start` says so,
and the driver stops at once instead of waiting out --worker-wait (for ever with --worker-wait 0).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

from hpc_classify.cluster.job_start_errors import (
    job_output_files,
    record_start_errors,
    submission_error,
    why_ended,
)
from hpc_classify.cluster.slurm_queue import ENDED, RUNNING, QueueAnswer, job_fate, slurm_job_states

logger = logging.getLogger(__name__)

REPLACE_INTERVAL = 10.0  # seconds between two looks for ended worker jobs
# A worker whose process died is restarted by its nanny, under its name: a job whose workers have been gone
# this long may have ended, which squeue tells (a nanny slow to restart on a cold file system keeps its job).
ENDED_AFTER = 30.0
# A job whose workers have been gone this long while squeue lists it running (its worker crashed for good, its
# script hangs), or while squeue gives no answer, or that has run this long without its worker ever connecting,
# is cancelled and submitted again.
GONE_LIMIT = 600.0
LOST_WORKER_TIMEOUT = "3650 days"  # SpecCluster's own forgetting of a job whose worker left: never
QUEUE_LOOK_INTERVAL = 30.0  # seconds between two `squeue` looks while jobs wait or their workers are gone
START_FAILURES = 3  # jobs in a row of one place in the plan that ended before their worker connected
_CALLBACK = "hpc-classify-replace-worker-jobs"
# id(cluster) -> its keeper, alive while the cluster's periodic callback holds it (a weak key would be kept
# alive by the keeper's own reference to its cluster).
_KEEPERS: weakref.WeakValueDictionary[int, JobKeeper] = weakref.WeakValueDictionary()


def keep_worker_jobs(cluster: Any) -> JobKeeper:
    """Have `cluster` (a dask-jobqueue cluster in this process) submit again, every REPLACE_INTERVAL
    seconds, the worker jobs of its plan that have ended or whose submission failed. Stops when the cluster
    closes. Returns its keeper. Call it before the cluster's first scale, so that a first failed submission
    leaves its error for the keeper's message."""
    import dask
    from tornado.ioloop import PeriodicCallback

    # SpecCluster would close (scancel) a job whose worker left lost-worker-timeout (15 s) ago, e.g. one its
    # nanny restarts after an OOM kill, slowly on a cold shared file system. The keeper alone decides instead,
    # by squeue (read at each removal, long after the cluster starts: set process-wide).
    dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_WORKER_TIMEOUT})
    record_start_errors(cluster)
    keeper = _KEEPERS[id(cluster)] = JobKeeper(cluster)

    def install() -> None:
        callback = PeriodicCallback(keeper.look, REPLACE_INTERVAL * 1000)
        cluster.periodic_callbacks[_CALLBACK] = callback  # stopped by the cluster's close
        callback.start()

    cluster.loop.add_callback(install)
    return keeper


def why_no_worker_can_start(cluster: Any) -> str | None:
    """Why no worker of `cluster` can start (its keeper gave up on every place of its plan and none is
    connected), or None: another kind of cluster, or workers may still come."""
    keeper = _KEEPERS.get(id(cluster))
    return keeper.no_worker_can_start if keeper is not None and keeper.cluster is cluster else None


class JobKeeper:
    """Finds the worker jobs that have ended: by `squeue` (a job still queued is left alone), for those whose
    worker never connected and those whose workers connected once and have been gone ENDED_AFTER seconds;
    forgets them (scancel, should one still run) and scales the cluster back to its plan. A job's workers are
    named after it (`SLURMCluster-3`; `SLURMCluster-3-0`, `-1`... for dask-cuda's worker per GPU, a name
    SpecCluster itself never matches to its job); a replacement takes its predecessor's name, its place."""

    def __init__(
        self,
        cluster: Any,
        clock: Any = None,
        job_states: Callable[[], Awaitable[dict[str, str] | None]] = slurm_job_states,
    ):
        import time

        self.cluster = cluster
        self.clock = clock or time.monotonic
        self.job_states = job_states
        # Job objects, held weakly: SpecCluster's close asserts that every job still alive was closed, and
        # dask-jobqueue's close (scancel) leaves a job's status running; one only the keeper holds is gone.
        self.connected_once: weakref.WeakSet[Any] = weakref.WeakSet()
        self.gone_since: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.told_still_running: weakref.WeakSet[Any] = weakref.WeakSet()  # gone, still running, wait logged
        # Jobs never connected, since squeue first listed them running.
        self.running_unconnected: weakref.WeakKeyDictionary[Any, float] = weakref.WeakKeyDictionary()
        self.closing: set[asyncio.Future] = set()
        self.start_failures: dict[str, int] = {}  # name -> jobs in a row that ended before connecting
        # The last of those: kept in the plan, never submitted again.
        self.given_up: weakref.WeakSet[Any] = weakref.WeakSet()
        self.looked_at = float("-inf")
        # Why no worker can start (every place given up, none connected), else None: read by the driver's
        # thread, written by the cluster's loop (one assignment).
        self.no_worker_can_start: str | None = None

    async def look(self) -> None:
        """One round: ask Slurm about the jobs that only it can judge, then replace those that ended."""
        self.replace_ended_jobs(await self.ask_slurm())

    async def ask_slurm(self) -> QueueAnswer | None:
        """squeue's answer about the jobs still waiting for their first worker and those whose workers have
        been gone ENDED_AFTER s, at most every QUEUE_LOOK_INTERVAL s and once as a job's workers reach
        ENDED_AFTER; None when not asked."""
        now = self.clock()
        waiting, gone = [], []
        for job in self.cluster.workers.values():
            if not getattr(job, "job_id", None):
                continue
            if job not in self.connected_once:
                if job not in self.given_up:
                    waiting.append(job)
            elif job in self.gone_since and now - self.gone_since[job] >= ENDED_AFTER:
                gone.append(job)
        not_asked_since_gone = any(self.gone_since[job] + ENDED_AFTER > self.looked_at for job in gone)
        if not not_asked_since_gone and (not (waiting or gone) or now - self.looked_at < QUEUE_LOOK_INTERVAL):
            return None
        self.looked_at = now
        states = await self.job_states()  # after the jobs were listed: each of those was in the queue already
        return QueueAnswer(states, frozenset(waiting + gone))

    def replace_ended_jobs(self, answer: QueueAnswer | None = None) -> None:
        from distributed.core import Status

        cluster = self.cluster
        if cluster.status != Status.running:
            return
        names = [str(w.get("name")) for w in cluster.scheduler_info.get("workers", {}).values()]
        now = self.clock()
        # By job object, not name: a replacement takes its predecessor's name, and while it waits in the
        # queue it must not pass for the ended job.
        for name, job in list(cluster.workers.items()):
            state = answer.state(job) if answer is not None else None
            if self._submission_failed(job) and job not in self.given_up:
                self._ended_before_connecting(name, job, None)
            elif any(worker == name or worker.startswith(f"{name}-") for worker in names):
                self.connected_once.add(job)
                self.gone_since.pop(job, None)
                self.told_still_running.discard(job)
                self.running_unconnected.pop(job, None)
                self.start_failures.pop(name, None)
            elif job in self.connected_once:
                self._judge_gone(name, job, now - self.gone_since.setdefault(job, now), answer, state)
            elif state is not None:
                self._judge_unconnected(name, job, state, now)
        jobs = set(cluster.workers.values())  # forget the jobs SpecCluster forgot, or this loop did
        self.connected_once &= jobs
        self.given_up &= jobs
        self.told_still_running &= jobs
        for job in [job for job in self.gone_since if job not in jobs]:
            del self.gone_since[job]
        missing = len(cluster.worker_spec) - len(cluster.workers)
        if missing > 0:
            logger.info("jobqueue: submitting %d worker job(s) in place of those that ended", missing)
            cluster.scale(jobs=len(cluster.worker_spec))
        self.no_worker_can_start = self._all_given_up(connected=bool(names))

    def _judge_gone(
        self, name: str, job: Any, gone: float, answer: QueueAnswer | None, state: str | None
    ) -> None:
        """A job whose workers connected once have been gone `gone` s: squeue's `state` (None: no answer in
        `answer`, or none asked this round) decides, once they have been gone ENDED_AFTER s."""
        if gone < ENDED_AFTER or answer is None:
            return  # a nanny may still restart them; or squeue is asked in a round to come
        job_text = f"worker job {name} (Slurm job {job.job_id})"
        if state is None:
            if gone >= GONE_LIMIT:  # squeue failed: the timer's verdict, late
                logger.warning(
                    "jobqueue: %s: its workers have been gone %.0f s and squeue gives no answer; taking it as "
                    "ended: cancelling it and submitting another",
                    job_text,
                    gone,
                )
                self._forget(name, job)
            return
        fate = job_fate(state)
        if fate == ENDED:
            logger.info("jobqueue: %s has ended (%s; its workers left %.0f s ago)", job_text, state, gone)
            self._forget(name, job)
        elif fate == RUNNING and gone >= GONE_LIMIT:
            logger.warning(
                "jobqueue: %s is still %s but its workers have been gone %.0f s (a worker that crashed for "
                "good, or a job script that hangs): cancelling it and submitting another; its output: %s",
                job_text,
                state,
                gone,
                job_output_files(job),
            )
            self._forget(name, job)
        elif fate == RUNNING and job not in self.told_still_running:
            self.told_still_running.add(job)
            logger.warning(
                "jobqueue: the workers of %s left %.0f s ago but the job is still %s: waiting for them (a "
                "nanny restarting one), at most %.0f s before it is cancelled and submitted again",
                job_text,
                gone,
                state,
                GONE_LIMIT,
            )
        elif (
            fate != RUNNING
        ):  # queued again (requeued after a node failure), suspended...: waits, as one queued
            logger.info(
                "jobqueue: the workers of %s left and the job is %s: left to start again", job_text, state
            )
            self.connected_once.discard(job)
            self.gone_since.pop(job, None)
            self.told_still_running.discard(job)

    @staticmethod
    def _submission_failed(job: Any) -> bool:
        """Whether a job of `cluster.workers` has no job id because its submission failed. SpecCluster lists
        a job only once its start (sbatch) is over (one still being submitted is not there yet), and its
        status becomes running only when that start succeeded: one still `created`, without an id, failed."""
        from distributed.core import Status

        return getattr(job, "job_id", None) is None and getattr(job, "status", None) != Status.running

    def _all_given_up(self, *, connected: bool) -> str | None:
        plan = list(self.cluster.workers.values())
        if connected or not plan or any(job not in self.given_up for job in plan):
            return None
        last = max(plan, key=lambda job: int(job.job_id) if str(job.job_id).isdigit() else -1)
        return (
            f"every worker job of the jobqueue cluster ended before its worker connected or could not be "
            f"submitted, {START_FAILURES} times in a row in each of the plan's {len(plan)} place(s): no worker "
            f"can start. {why_ended(last)}"
        )

    def _judge_unconnected(self, name: str, job: Any, state: str, now: float) -> None:
        """A job whose worker never connected, listed by squeue as `state`: ended, or running GONE_LIMIT s
        without its worker, it failed to start; queued (again), it is left to start."""
        fate = job_fate(state)
        if fate == ENDED:
            self._ended_before_connecting(name, job, state)
        elif fate == RUNNING:
            ran = now - self.running_unconnected.setdefault(job, now)
            if ran >= GONE_LIMIT:
                self._ended_before_connecting(name, job, state, ran_for=ran)
        else:
            self.running_unconnected.pop(job, None)

    def _ended_before_connecting(
        self, name: str, job: Any, state: str | None, ran_for: float | None = None
    ) -> None:
        """A job of place `name` ended (squeue's `state`) before its worker connected, has run `ran_for` s
        without it, or its submission failed (`state` None)."""
        from distributed.core import Status

        failures = self.start_failures[name] = self.start_failures.get(name, 0) + 1
        if state is None:
            job.status = Status.failed  # as record_start_errors marks it: no job of it will ever run
            ended = f"worker job {name} could not be submitted"
        elif ran_for is not None:
            ended = (
                f"worker job {name} (Slurm job {job.job_id}) has been {state} for {ran_for:.0f} s and its worker "
                "never connected (can it reach the scheduler? a firewall, --interface; a start that hangs): "
                "cancelling it"
            )
        else:
            ended = f"worker job {name} (Slurm job {job.job_id}) ended ({state}) before its worker connected"
        if failures >= START_FAILURES:
            # Left in the plan, so that SpecCluster starts nothing in its place: the run goes on with the
            # workers it has, or --worker-wait ends it. One still running is cancelled (it holds a node).
            self.given_up.add(job)
            if ran_for is not None:
                self._close(job)
            logger.error(
                "jobqueue: %s, %d jobs in a row: not submitting it again. %s",
                ended,
                failures,
                why_ended(job),
            )
            return
        logger.warning(
            "jobqueue: %s; submitting another (%d such end(s) in a row; at %d it is not submitted again); %s",
            ended,
            failures,
            START_FAILURES,
            f"sbatch's error: {submission_error(job)}"
            if state is None
            else f"its output: {job_output_files(job)}",
        )
        self._forget(name, job)

    def _forget(self, name: str, job: Any) -> None:
        del self.cluster.workers[name]
        self._close(job)

    def _close(self, job: Any) -> None:
        closing = asyncio.ensure_future(job.close())  # scancel, should it still run (or be requeued)
        self.closing.add(closing)
        closing.add_done_callback(self.closing.discard)
