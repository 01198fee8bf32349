"""A local cluster whose workers must start within the run's `--worker-wait` deadline.

LocalCluster's constructor waits for every worker it starts, with no deadline of its own: a worker that hangs
as it starts (a preload or plugin that blocks, a worker that never reaches the scheduler) kept `get_client()`
and `run --cluster local` waiting for ever, and Dask's `death_timeout` does not end it either (the nanny's
start and close both wait on the hung process). So the cluster is made without workers, then scaled, and the
workers' start is awaited for at most the deadline; past it, the hung worker processes are killed (the
nannies' start then fails and the cluster closes) and a ClusterError names the likely causes and the log.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from hpc_classify.cluster.worker_processes import close_or_kill_workers, kill_worker_processes, worker_nannies
from hpc_classify.errors import ClusterError

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 60.0  # seconds the cluster of workers that did not start may take to close
_AFTER_KILL = 30.0  # seconds the nannies may take to notice their killed processes


def start_with_deadline(cluster_class: type, options: dict[str, Any], wait: float | None) -> Any:
    """`cluster_class(**options)` with its `n_workers` started within `wait` seconds (None or 0: no deadline),
    else a ClusterError. A worker that fails at once still fails at once, as in the constructor."""
    options = dict(options)
    workers = local_worker_count(options.pop("n_workers", None), options)
    cluster = cluster_class(n_workers=0, **options)
    try:
        cluster.sync(_start_workers, cluster, workers, wait or None)
    except BaseException:
        try:
            close_or_kill_workers(cluster, CLOSE_TIMEOUT)
        except Exception as exc:  # the start's own error is the one to report
            logger.warning("error while closing the local cluster that did not start: %s", exc)
        raise
    return cluster


def local_worker_count(n_workers: int | None, options: dict[str, Any]) -> int:
    """The workers LocalCluster starts for `n_workers` (None: its own default, as LocalCluster computes it)."""
    if n_workers is not None:
        return n_workers
    from dask.system import CPU_COUNT

    if not options.get("processes", True):
        return 1
    threads = options.get("threads_per_worker")
    if threads:
        return max(1, CPU_COUNT // threads)
    from distributed.deploy.utils import nprocesses_nthreads

    return nprocesses_nthreads()[0]


async def _start_workers(cluster: Any, workers: int, wait: float | None) -> None:
    cluster.scale(workers)
    starting = asyncio.ensure_future(cluster._correct_state())
    done, _ = await asyncio.wait([starting], timeout=wait)
    if done:
        starting.result()  # a worker that failed to start: the constructor's error
        return
    hung = kill_worker_processes(worker_nannies(cluster), starting_only=True)
    done, _ = await asyncio.wait([starting], timeout=_AFTER_KILL)
    if done:
        starting.exception()  # the nannies' failure after the kill: not the cause, retrieved quietly
    which = f"{hung} local Dask worker(s)" if hung else "the local Dask workers"
    raise ClusterError(
        f"{which} did not start within {wait:g} s (the --worker-wait deadline; death_timeout= for "
        "get_client) and were stopped. A worker hangs at start when a worker preload or "
        "plugin blocks (preload=, Dask config distributed.worker.preload), when the main script does work "
        'at import outside `if __name__ == "__main__":` that waits (the workers import it again), when '
        "the worker cannot reach the scheduler over its protocol, or when the machine is too loaded to "
        "start a process",
        hint="the workers log into this process's stderr above (distributed.nanny / distributed.worker "
        "lines); `py-spy dump --pid <worker pid>` shows where a hanging worker waits; if the workers only "
        "start slowly, give a longer --worker-wait (worker_wait=, death_timeout= for get_client)",
    )
