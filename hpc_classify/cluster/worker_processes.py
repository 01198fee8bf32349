"""The worker processes of a local cluster (one child process per Nanny), and killing them: the last resort when
they hang as they start, or when the cluster's close fails or passes its deadline. Such a worker would otherwise
run as long as this process does (a notebook, a long Python session, a test run calling the API): daemonic
workers only end when it exits."""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

logger = logging.getLogger(__name__)


def worker_nannies(cluster: Any) -> list[Any]:
    """The nannies of `cluster`'s workers, running or being made (none for a cluster without local worker
    processes). Taken before a close: a nanny that the close drops can still be asked for its process."""
    found = [*getattr(cluster, "_created", ()), *getattr(cluster, "workers", {}).values()]  # SpecCluster's
    unique = {id(nanny): nanny for nanny in found}
    return [nanny for nanny in unique.values() if hasattr(nanny, "process")]


def kill_worker_processes(nannies: list[Any], *, starting_only: bool = False) -> int:
    """Kill the live worker process of each of `nannies` (with `starting_only`, of those not running yet: their
    nanny's start and close both wait on them); the number killed."""
    killed = 0
    for nanny in nannies:
        if starting_only and getattr(getattr(nanny, "status", None), "name", "running") == "running":
            continue
        process = getattr(getattr(nanny, "process", None), "process", None)  # WorkerProcess -> AsyncProcess
        try:
            if process is None or not process.is_alive():
                continue
            os.kill(process.pid, signal.SIGKILL)
            killed += 1
        except (ProcessLookupError, ValueError):  # gone meanwhile, or its process object closed
            pass
    return killed


def close_or_kill_workers(cluster: Any, timeout: float) -> None:
    """`cluster.close(timeout=timeout)`; when the close fails or passes its deadline, the worker processes
    still alive are killed, then its error is raised."""
    nannies = worker_nannies(cluster)
    try:
        cluster.close(timeout=timeout)
    except BaseException:
        killed = kill_worker_processes(nannies)
        if killed:
            logger.warning(
                "killed %d worker process(es) of the %s that did not close", killed, type(cluster).__name__
            )
        raise
