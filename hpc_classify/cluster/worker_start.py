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
import threading
from typing import Any

from hpc_classify.cluster.worker_processes import close_or_kill_workers, kill_worker_processes, worker_nannies
from hpc_classify.cluster.worker_signals import stop_signals_held, with_this_preload
from hpc_classify.errors import ClusterError

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT = 60.0  # seconds the cluster of workers that did not start may take to close
_AFTER_KILL = 30.0  # seconds the nannies may take to notice their killed processes


def start_with_deadline(cluster_class: type, options: dict[str, Any], wait: float | None) -> Any:
    """`cluster_class(**options)` with its `n_workers` started within `wait` seconds (None or 0: no deadline),
    else a ClusterError. A worker that fails at once still fails at once, as in the constructor."""
    options = with_this_preload(options)
    workers = local_worker_count(options.pop("n_workers", None), options)
    cluster = None
    try:
        with stop_signals_held():  # the workers its loop thread spawns are spared the run's stop signals
            cluster = cluster_class(n_workers=0, **options)
        # A Ctrl-C held while the cluster was made arrives here, as the mask is restored: inside the try.
        cluster.sync(_start_workers, cluster, workers, wait or None)
    except BaseException:
        if cluster is not None:
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


def construct_with_deadline(
    cluster_class: type, options: dict[str, Any], wait: float | None, knob: str
) -> Any:
    """`cluster_class(**options)` within `wait` s (None or 0: no deadline), for a cluster that starts its workers
    in its constructor and cannot be made without them (dask-cuda's LocalCUDACluster refuses n_workers=0, so
    start_with_deadline's scale-up cannot serve): made on a thread of its own. Past the deadline the worker
    processes still starting are killed (the constructor then fails and its thread ends), a cluster that comes up
    after all is closed, and a ClusterError names the deadline and `knob`, the setting that gives it."""
    options = with_this_preload(options)
    made: list[Any] = []

    class Recorded(cluster_class):  # type: ignore[misc,valid-type]  # the object before it returns: its nannies
        def __init__(self, **kwargs: Any) -> None:
            made.append(self)
            super().__init__(**kwargs)

    Recorded.__name__ = Recorded.__qualname__ = cluster_class.__name__
    outcome: dict[str, Any] = {}
    lock = threading.Lock()

    def build() -> None:
        try:
            with stop_signals_held():  # see start_with_deadline
                cluster = Recorded(**options)
        except BaseException as exc:  # the constructor's own error, raised by the caller
            outcome["error"] = exc
            return
        with lock:
            outcome["cluster"] = cluster
            late = "abandoned" in outcome
        if late:  # the caller has raised already: nobody else would close it
            try:
                close_or_kill_workers(cluster, CLOSE_TIMEOUT)
            except Exception as exc:
                logger.warning("error while closing the local cluster that started too late: %s", exc)

    thread = threading.Thread(target=build, name=f"start-{cluster_class.__name__}", daemon=True)
    thread.start()
    try:
        thread.join(wait or None)
    except BaseException:  # Ctrl-C in a notebook: a cluster coming up later would hold the GPUs, unowned
        with lock:
            outcome["abandoned"] = True
            cluster = outcome.get("cluster")
        if cluster is not None:
            close_or_kill_workers(cluster, CLOSE_TIMEOUT)
        elif made:
            kill_worker_processes(worker_nannies(made[0]), starting_only=True)
        raise
    with lock:
        outcome["abandoned"] = True
        if "cluster" in outcome:
            return outcome["cluster"]  # came up at the deadline: kept
    if "error" in outcome:
        raise outcome["error"]
    hung = kill_worker_processes(worker_nannies(made[0]), starting_only=True) if made else 0
    if hung:
        thread.join(_AFTER_KILL)
    which = f"{hung} worker(s)" if hung else "the workers"
    raise ClusterError(
        f"{which} of the local {cluster_class.__name__} did not start within {wait:g} s ({knob}) and were "
        "stopped. A GPU worker hangs at start when its GPU is held by another process or has less free memory "
        "than the RMM pool asks, when a worker preload or plugin blocks, or when it cannot reach the scheduler "
        "over its protocol",
        hint=f"nvidia-smi shows what holds the GPUs; the workers log into this process's stderr above; if they "
        f"only start slowly, give a longer {knob}",
    )
