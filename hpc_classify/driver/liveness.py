"""Liveness of the cluster: a run whose workers are all gone (node lost, OOM-killed) stops instead of
waiting until its walltime.

`WorkerWatch.check()` is called from the dispatch loop; once the scheduler has had no worker at all for
`worker_wait` seconds it returns a message naming the workers last seen and where their logs are, and the
driver stops with the resumable exit code (3). Workers that come back in time (a nanny restart, a
requeued node job) reset the clock. A jobqueue run whose worker jobs all keep ending before their worker
connects stops at once: none can come (worker_jobs.why_no_worker_can_start). A worker that leaves while others remain (one node of a Slurm job
lost) is named in the log and in the summary's `workers_lost`; Dask reruns its tasks on the others.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.worker_jobs import why_no_worker_can_start
from hpc_classify.config import RunConfig
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)

CHECK_INTERVAL = 2.0  # seconds between two looks at the scheduler's worker list (one RPC each)
_LISTED = 10
NO_ANSWER = "the scheduler did not answer"
NO_WORKER = "no Dask worker connected to the scheduler"


class WorkerWatch:
    def __init__(self, client: Any, config: RunConfig):
        self.client = client
        self.wait = config.worker_wait
        self.log_hint = worker_log_hint(config)
        self.config_scheduler_file = config.scheduler_file
        self.last_seen: dict[str, str] = {}  # worker address -> "name on host"
        self.none_since: float | None = None
        self.none_why: str | None = None  # what was last said about having no worker
        self.lost: dict[str, str] = {}  # worker name -> "name on host": left and not back (by name)
        self._checked_at = float("-inf")

    def check(self) -> str | None:
        """None while workers exist (or the wait is not over); else why the run must stop."""
        now = time.monotonic()
        if now - self._checked_at < CHECK_INTERVAL:
            return None
        self._checked_at = now
        workers = self._workers()
        if workers is None:
            # No answer is not an empty list: no worker is said to have left (a scheduler whose event loop
            # was busy once made every worker "leave" and "come back" two seconds later). Only the wait's
            # clock runs, as with no worker: a scheduler that never answers again ends the run alike.
            return self._without_workers(now, NO_ANSWER)
        self._note_departures(workers)
        if workers:
            if self.none_why == NO_ANSWER:
                logger.info("the scheduler answers again: %d worker(s)", len(workers))
            elif self.none_since is not None:
                logger.info("%d worker(s) connected again", len(workers))
            self.last_seen, self.none_since, self.none_why = workers, None, None
            return None
        hopeless = why_no_worker_can_start(getattr(self.client, "cluster", None))  # a jobqueue run's keeper
        if hopeless:
            return f"{hopeless}. Rerun the same command to resume once that is fixed"
        return self._without_workers(now, NO_WORKER)

    def _without_workers(self, now: float, why: str) -> str | None:
        if self.none_why != why:  # said once per state, not at every check
            limit = (
                f"stopping in {self.wait:g} s (--worker-wait)" if self.wait else "waiting (--worker-wait 0)"
            )
            until = "unless one joins" if why == NO_WORKER else "unless it answers with workers"
            logger.warning("%s; %s %s", why, limit, until)
            self.none_why = why
        if self.none_since is None:
            self.none_since = now
        if not self.wait or now - self.none_since < self.wait:
            return None
        seen = sorted(self.last_seen.values())
        listed = first_and_count(seen, _LISTED)
        answer = "" if why == NO_WORKER else f" ({why})"
        return (
            f"no Dask worker for {self.wait:g} s (--worker-wait){answer}: the workers last seen were "
            f"{listed or 'none'}; {self.log_hint}. Rerun the same command to resume once workers can run"
        )

    def _note_departures(self, workers: dict[str, str]) -> None:
        names = {_name(seen) for seen in workers.values()}
        for name in [n for n in self.lost if n in names]:
            logger.info("worker %s is back", name)
            del self.lost[name]
        for address, seen in self.last_seen.items():
            name = _name(seen)
            if address in workers or name in names or name in self.lost:
                continue
            self.lost[name] = seen
            logger.warning(
                "worker %s left the cluster (its node lost, or the process died); Dask reruns its tasks on "
                "the %d worker(s) left; %s",
                seen,
                len(workers),
                self._log_of(name),
            )

    def _log_of(self, worker_name: str) -> str:
        if self.config_scheduler_file:
            # The Slurm launcher names workers <node>-<i> and publishes the scheduler file in its job dir.
            node = re.sub(r"-\d+$", "", worker_name)
            job_dir = Path(self.config_scheduler_file).absolute().parent
            log = JobPaths(job_dir).log(node, "worker")
            if log.exists():
                return f"its log: {log}"
        return self.log_hint

    def _workers(self) -> dict[str, str] | None:
        """The scheduler's workers; None when it did not answer (gone, or too busy to reply in time)."""
        try:
            info = self.client.scheduler_info(n_workers=-1)
        except Exception as exc:
            logger.debug("scheduler_info failed: %s", exc)
            return None
        return {
            address: f"{w.get('name', address)} on {w.get('host', '?')}"
            for address, w in (info.get("workers") or {}).items()
        }


def _name(seen: str) -> str:
    return seen.split(" on ", 1)[0]


def worker_log_hint(config: RunConfig) -> str:
    """Where the workers' logs are, as far as the driver can tell from how it reached the cluster."""
    if config.scheduler_file:
        # The Slurm launcher keeps its nodes' logs in the job dir, beside the file.
        logs = JobPaths(Path(config.scheduler_file).absolute().parent).node_logs()
        if logs:
            return "their logs: " + ", ".join(map(str, logs[:_LISTED]))
        return f"their logs are where the workers of {config.scheduler_file} were started"
    if config.scheduler_address:
        return f"their logs are where the workers of {config.scheduler_address} were started"
    if config.cluster == "jobqueue":
        return "their logs are the worker jobs' output files (see squeue/sacct for the jobs and their state)"
    return "local workers log into this process's output above (an OOM kill shows in dmesg)"
