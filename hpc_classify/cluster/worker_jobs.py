"""Worker jobs of `--cluster jobqueue` that outlive their Slurm time limit.

Each worker is a Slurm job with a walltime (`jobqueue.slurm.walltime`, 30 min by default); a run over a
corpus lasts longer. Two things keep such a run going, as dask-jobqueue's docs advise:

- each worker retires by itself (Dask's worker lifetime) a margin before its walltime, its start of the
  margin staggered so that the jobs do not all leave at once: Slurm's kill would count the files in flight as
  suspects of the worker's death (`allowed-failures`), a worker's own retirement does not;
- a worker job that has ended is submitted again. SpecCluster forgets a worker that left only when its name
  is gone from the scheduler for `lost-worker-timeout` (never for dask-cuda's workers, named after the job
  and a GPU), and starts one in its place only when it is scaled:
  neither `scale` nor `adapt` (whose target is unchanged) does so by itself, so the run would wait without
  workers until `--worker-wait` stopped it. `keep_worker_jobs` looks every REPLACE_INTERVAL seconds for
  jobs whose workers have left, forgets them, and scales the cluster to its own plan, which starts new ones.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

from hpc_classify.errors import ConfigError

logger = logging.getLogger(__name__)

REPLACE_INTERVAL = 10.0  # seconds between two looks for ended worker jobs
# A worker whose process died is restarted by its nanny within seconds, under its name: only a job whose
# workers have been gone this long has ended.
ENDED_AFTER = 30.0
_CALLBACK = "hpc-classify-replace-worker-jobs"
_TIME = re.compile(r"(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?")


def slurm_time_seconds(text: str) -> int | None:
    """Seconds of a Slurm time limit ("minutes", "minutes:seconds", "hours:minutes:seconds", "days-hours",
    "days-hours:minutes", "days-hours:minutes:seconds"); None for no limit ("", "UNLIMITED", "INFINITE")."""
    text = str(text).strip()
    if text.upper() in ("", "UNLIMITED", "INFINITE", "-1"):
        return None
    match = _TIME.fullmatch(text)
    if not match:
        raise ConfigError(
            f"jobqueue.slurm.walltime {text!r} is not a Slurm time",
            hint="give minutes, MM:SS, HH:MM:SS or D-HH:MM:SS, as sbatch --time takes",
        )
    days, first, second, third = match.groups()
    if days is not None:  # days-hours[:minutes[:seconds]]
        parts = [int(first), int(second or 0), int(third or 0)]
        return int(days) * 86400 + parts[0] * 3600 + parts[1] * 60 + parts[2]
    if third is not None:  # hours:minutes:seconds
        return int(first) * 3600 + int(second) * 60 + int(third)
    return int(first) * 60 + int(second or 0)  # minutes[:seconds]


def lifetime_environment(walltime: Any, site_args: list[str]) -> dict[str, str]:
    """Dask's worker lifetime settings, as environment variables of the job script (`dask cuda worker` has no
    `--lifetime` flag; both read Dask's config): retire a margin before the job's `walltime`, a tenth of it (at
    least 30 s, at most 5 min), with a stagger of a twentieth (at most 2 min) taken off too. None where the
    site sets a lifetime (its worker arguments or Dask config), or there is no walltime."""
    import dask

    if dask.config.get("distributed.worker.lifetime.duration", default=None) is not None or any(
        arg == "--lifetime" or arg.startswith("--lifetime=") for arg in site_args
    ):
        return {}
    seconds = None if walltime is None else slurm_time_seconds(walltime)
    if seconds is None:
        return {}
    margin = min(300, max(30, seconds // 10))
    stagger = min(120, seconds // 20)
    lifetime = seconds - margin - stagger
    if lifetime < 20:
        raise ConfigError(
            f"jobqueue.slurm.walltime {walltime!r} leaves a worker job no time to work: it retires {margin} s "
            "before the walltime",
            hint="give the worker jobs a walltime of 2 minutes or more",
        )
    return {
        "DASK_DISTRIBUTED__WORKER__LIFETIME__DURATION": f"{lifetime}s",
        "DASK_DISTRIBUTED__WORKER__LIFETIME__STAGGER": f"{stagger}s",
    }


def keep_worker_jobs(cluster: Any) -> None:
    """Have `cluster` (a dask-jobqueue cluster in this process) submit again, every REPLACE_INTERVAL
    seconds, the worker jobs of its plan that have ended. Stops when the cluster closes."""
    from tornado.ioloop import PeriodicCallback

    keeper = JobKeeper(cluster)

    def install() -> None:
        callback = PeriodicCallback(keeper.replace_ended_jobs, REPLACE_INTERVAL * 1000)
        cluster.periodic_callbacks[_CALLBACK] = callback  # stopped by the cluster's close
        callback.start()

    cluster.loop.add_callback(install)


class JobKeeper:
    """Finds the worker jobs whose workers connected once and have been gone for ENDED_AFTER seconds (a job
    still queued has never connected: it is left alone), forgets them, and scales the cluster back to its
    plan. A job's workers are named after it (`SLURMCluster-3`; `SLURMCluster-3-0`, `-1`... for dask-cuda's
    worker per GPU, a name SpecCluster itself never matches to its job)."""

    def __init__(self, cluster: Any, clock: Any = None):
        import time

        self.cluster = cluster
        self.clock = clock or time.monotonic
        self.connected_once: set[Any] = set()  # job objects
        self.gone_since: dict[Any, float] = {}
        self.closing: set[asyncio.Future] = set()

    def replace_ended_jobs(self) -> None:
        from distributed.core import Status

        cluster = self.cluster
        if cluster.status != Status.running:
            return
        names = [str(w.get("name")) for w in cluster.scheduler_info.get("workers", {}).values()]
        now = self.clock()
        # By job object, not name: a replacement takes its predecessor's name, and while it waits in the
        # queue it must not pass for the ended job.
        for name, job in list(cluster.workers.items()):
            if any(worker == name or worker.startswith(f"{name}-") for worker in names):
                self.connected_once.add(job)
                self.gone_since.pop(job, None)
            elif job in self.connected_once and now - self.gone_since.setdefault(job, now) >= ENDED_AFTER:
                logger.info(
                    "jobqueue: worker job %s has ended (its workers left %.0f s ago)", name, ENDED_AFTER
                )
                del cluster.workers[name]
                closing = asyncio.ensure_future(job.close())  # scancel, should it still run
                self.closing.add(closing)
                closing.add_done_callback(self.closing.discard)
        jobs = set(cluster.workers.values())  # forget the jobs SpecCluster forgot, or this loop did
        self.connected_once &= jobs
        self.gone_since = {job: since for job, since in self.gone_since.items() if job in jobs}
        missing = len(cluster.worker_spec) - len(cluster.workers)
        if missing > 0:
            logger.info("jobqueue: submitting %d worker job(s) in place of those that ended", missing)
            cluster.scale(jobs=len(cluster.worker_spec))
