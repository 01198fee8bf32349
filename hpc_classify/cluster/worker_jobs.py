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

A job can also end before its worker ever connected (its node failed, its worker crashed at start, its
walltime ran out while it started): nothing of it reaches the scheduler, so only Slurm can tell it from a
job still waiting in the queue. While jobs wait for their first worker, the keeper asks `squeue` (at most
every QUEUE_LOOK_INTERVAL seconds) and replaces those it no longer lists or lists as ended. A job that fails
at start fails again: after START_FAILURES such jobs in a row in one place of the plan the keeper stops
submitting it, with an error naming the last job's output files.

A job's submission can fail too (`sbatch` timing out on a busy slurmctld): SpecCluster keeps such a job in
its plan and its list of jobs, with no job id, and never submits that place again. The keeper forgets it and
scales the cluster to its plan, as for a job that ended before connecting, and counts it towards the same
START_FAILURES: an sbatch that keeps failing ends in the keeper's error naming sbatch's error. When that is
every place of the plan and no worker is connected, no worker can come: `why_no_worker_can_start` says so,
and the driver stops at once instead of waiting out --worker-wait (for ever with --worker-wait 0).
"""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import weakref
from collections.abc import Awaitable, Callable
from typing import Any

logger = logging.getLogger(__name__)

REPLACE_INTERVAL = 10.0  # seconds between two looks for ended worker jobs
# A worker whose process died is restarted by its nanny within seconds, under its name: only a job whose
# workers have been gone this long has ended.
ENDED_AFTER = 30.0
LOST_WORKER_TIMEOUT = "3650 days"  # SpecCluster's own forgetting of a job whose worker left: never
QUEUE_LOOK_INTERVAL = 30.0  # seconds between two `squeue` looks while jobs wait for their first worker
SQUEUE_TIMEOUT = 60.0  # a slurmctld too busy to answer: no answer, nothing concluded
START_FAILURES = 3  # jobs in a row of one place in the plan that ended before their worker connected
# squeue's states (%T) of a job that has ended, or is ending (COMPLETING): its worker will never connect.
# Any other state (PENDING, RUNNING, REQUEUED after a node failure...) is a job that may still start.
ENDED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "COMPLETING",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
NOT_LISTED = "no longer listed by squeue"
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
    # nanny restarts after an OOM kill, slowly on a cold shared file system. The keeper's ENDED_AFTER is the
    # only clock instead (read at each removal, long after the cluster starts: set process-wide).
    dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_WORKER_TIMEOUT})
    record_start_errors(cluster)
    keeper = _KEEPERS[id(cluster)] = JobKeeper(cluster)

    def install() -> None:
        callback = PeriodicCallback(keeper.look, REPLACE_INTERVAL * 1000)
        cluster.periodic_callbacks[_CALLBACK] = callback  # stopped by the cluster's close
        callback.start()

    cluster.loop.add_callback(install)
    return keeper


def record_start_errors(cluster: Any) -> None:
    """Have the jobs `cluster` starts from now keep the error of a failed submission as `start_error`:
    SpecCluster raises it in a task of its own, which neither it nor the keeper can read afterwards."""
    spec = getattr(cluster, "new_spec", None)
    if not spec or getattr(spec.get("cls"), "_records_start_error", False):
        return
    job_class = spec["cls"]
    if isinstance(job_class, str):
        from distributed.utils import import_term

        job_class = import_term(job_class)

    async def start(self: Any) -> None:
        from distributed.core import Status

        try:
            await job_class.start(self)
        except Exception as exc:
            # Its text, not the exception: its traceback would hold the job (SpecCluster's close asserts that
            # the jobs still alive are closed or failed, as this one now is).
            self.start_error = str(exc) or repr(exc)
            self.status = Status.failed
            raise

    # In place: the plan's entries are this very dict (SpecCluster's new_worker_spec hands it out).
    spec["cls"] = type(job_class.__name__, (job_class,), {"start": start, "_records_start_error": True})


def submission_error(job: Any) -> str:
    """The error of a job's failed submission, for a log line: sbatch's own message where it gave one
    (dask-jobqueue's error holds the command, its stdout and its stderr)."""
    error = getattr(job, "start_error", None)
    if error is None:
        return "its error is in the log of the cluster's loop"
    text = str(error)
    stderr = text.partition("stderr:\n")[2].strip()
    return " ".join((stderr or text).split())


def why_no_worker_can_start(cluster: Any) -> str | None:
    """Why no worker of `cluster` can start (its keeper gave up on every place of its plan and none is
    connected), or None: another kind of cluster, or workers may still come."""
    keeper = _KEEPERS.get(id(cluster))
    return keeper.no_worker_can_start if keeper is not None and keeper.cluster is cluster else None


async def slurm_job_states() -> dict[str, str] | None:
    """squeue's state of each job of this user (job id -> state, e.g. "PENDING"), ended ones it still keeps
    included; None when squeue gave no answer (then nothing may be concluded from a job missing)."""
    try:
        user = getpass.getuser()  # KeyError where this uid has no passwd entry and no $USER
        command = ["squeue", "--noheader", "--states=all", f"--user={user}", "--format=%i %T"]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except (OSError, KeyError) as exc:
        logger.warning("jobqueue: could not run squeue to find worker jobs that ended: %r", exc)
        return None
    try:
        out, err = await asyncio.wait_for(process.communicate(), SQUEUE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        logger.warning("jobqueue: squeue did not answer within %.0f s", SQUEUE_TIMEOUT)
        return None
    if process.returncode != 0:
        logger.warning("jobqueue: %s failed: %s", " ".join(command), err.decode(errors="replace").strip())
        return None
    return dict(line.split(None, 1) for line in out.decode().splitlines() if len(line.split(None, 1)) == 2)


def job_output_files(job: Any) -> str:
    """Where Slurm writes a worker job's output (dask-jobqueue's -o/-e with a log directory)."""
    if getattr(job, "log_directory", None):
        stem = os.path.join(job.log_directory, f"{getattr(job, 'job_name', None) or 'worker'}-{job.job_id}")
        return f"{stem}.err and {stem}.out"
    return f"slurm-{job.job_id}.out in the directory the run was started from"


class JobKeeper:
    """Finds the worker jobs whose workers connected once and have been gone for ENDED_AFTER seconds, and
    the jobs that ended before their worker ever connected (by `squeue`; a job still queued is left alone),
    forgets them, and scales the cluster back to its plan. A job's workers are named after it
    (`SLURMCluster-3`; `SLURMCluster-3-0`, `-1`... for dask-cuda's worker per GPU, a name SpecCluster itself
    never matches to its job); a replacement takes its predecessor's name, its place in the plan."""

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
        self.connected_once: set[Any] = set()  # job objects
        self.gone_since: dict[Any, float] = {}
        self.closing: set[asyncio.Future] = set()
        self.start_failures: dict[str, int] = {}  # name -> jobs in a row that ended before connecting
        self.given_up: set[Any] = set()  # the last of those: kept in the plan, never submitted again
        self.looked_at = float("-inf")
        # Why no worker can start (every place given up, none connected), else None: read by the driver's
        # thread, written by the cluster's loop (one assignment).
        self.no_worker_can_start: str | None = None

    async def look(self) -> None:
        """One round: ask Slurm about the jobs still waiting for their first worker, then replace."""
        self.replace_ended_jobs(await self.jobs_ended_unconnected())

    async def jobs_ended_unconnected(self) -> dict[Any, str]:
        """Jobs (submitted, never seen connected) that squeue lists as ended or no longer lists -> why."""
        waiting = [
            job
            for job in self.cluster.workers.values()
            if getattr(job, "job_id", None) and job not in self.connected_once and job not in self.given_up
        ]
        now = self.clock()
        if not waiting or now - self.looked_at < QUEUE_LOOK_INTERVAL:
            return {}
        self.looked_at = now
        states = await self.job_states()  # after `waiting` was taken: each of those was in the queue already
        if states is None:
            return {}
        ended = {job: states.get(str(job.job_id), NOT_LISTED) for job in waiting}
        return {job: state for job, state in ended.items() if state == NOT_LISTED or state in ENDED_STATES}

    def replace_ended_jobs(self, ended_unconnected: dict[Any, str] | None = None) -> None:
        from distributed.core import Status

        cluster = self.cluster
        if cluster.status != Status.running:
            return
        names = [str(w.get("name")) for w in cluster.scheduler_info.get("workers", {}).values()]
        now = self.clock()
        # By job object, not name: a replacement takes its predecessor's name, and while it waits in the
        # queue it must not pass for the ended job.
        for name, job in list(cluster.workers.items()):
            if self._submission_failed(job) and job not in self.given_up:
                self._ended_before_connecting(name, job, None)
            elif any(worker == name or worker.startswith(f"{name}-") for worker in names):
                self.connected_once.add(job)
                self.gone_since.pop(job, None)
                self.start_failures.pop(name, None)
            elif job in self.connected_once and now - self.gone_since.setdefault(job, now) >= ENDED_AFTER:
                logger.info(
                    "jobqueue: worker job %s has ended (its workers left %.0f s ago)", name, ENDED_AFTER
                )
                self._forget(name, job)
            elif ended_unconnected and job in ended_unconnected:
                self._ended_before_connecting(name, job, ended_unconnected[job])
        jobs = set(cluster.workers.values())  # forget the jobs SpecCluster forgot, or this loop did
        self.connected_once &= jobs
        self.given_up &= jobs
        self.gone_since = {job: since for job, since in self.gone_since.items() if job in jobs}
        missing = len(cluster.worker_spec) - len(cluster.workers)
        if missing > 0:
            logger.info("jobqueue: submitting %d worker job(s) in place of those that ended", missing)
            cluster.scale(jobs=len(cluster.worker_spec))
        self.no_worker_can_start = self._all_given_up(connected=bool(names))

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
            f"can start. {_why_ended(last)}"
        )

    def _ended_before_connecting(self, name: str, job: Any, state: str | None) -> None:
        """A job of place `name` ended (squeue's `state`) before its worker connected, or its submission
        failed (`state` None)."""
        from distributed.core import Status

        failures = self.start_failures[name] = self.start_failures.get(name, 0) + 1
        if state is None:
            job.status = Status.failed  # as record_start_errors marks it: no job of it will ever run
            ended = f"worker job {name} could not be submitted"
        else:
            ended = f"worker job {name} (Slurm job {job.job_id}) ended ({state}) before its worker connected"
        if failures >= START_FAILURES:
            # Left in the plan, so that SpecCluster starts nothing in its place: the run goes on with the
            # workers it has, or --worker-wait ends it.
            self.given_up.add(job)
            logger.error(
                "jobqueue: %s, %d jobs in a row: not submitting it again. %s",
                ended,
                failures,
                _why_ended(job),
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
        closing = asyncio.ensure_future(job.close())  # scancel, should it still run (or be requeued)
        self.closing.add(closing)
        closing.add_done_callback(self.closing.discard)


def _why_ended(job: Any) -> str:
    """Where to look for why a job that never connected ended (or was never submitted)."""
    if getattr(job, "job_id", None) is None:
        return (
            f"Its submission failed: {submission_error(job)} (check the site's jobqueue.slurm settings, or "
            "whether slurmctld answers)"
        )
    return (
        f"Its output: {job_output_files(job)}; `sacct -j {job.job_id}` tells why it ended (check the job "
        "script's prologue, the worker command and the site's jobqueue.slurm settings)"
    )
