"""The first worker of a `--cluster jobqueue` run. Its worker jobs wait in Slurm's queue for as long as the
cluster is busy (minutes to hours), so the driver waits for the first one under `--worker-wait` (0: as long as
it takes), as it waits for workers later in the run, and not under a fixed connect timeout (two minutes once:
a queue wait longer than that failed the run). The wait ends early on a stop request (the driver then stops
the run as it stops any run before progress) and when the job keeper gave up on every worker job
(`worker_jobs.why_no_worker_can_start`): no worker can come, and waiting would never end with --worker-wait 0.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from hpc_classify.cluster.worker_jobs import why_no_worker_can_start
from hpc_classify.errors import ClusterError

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0  # each look waits this long for a worker: stops and the keeper's verdict are seen as soon


def wait_for_first_worker(client: Any, cluster: Any, worker_wait: float, stopped: Callable[[], bool]) -> None:
    """Return once a worker has joined `client`'s scheduler or `stopped()` is true; raise a ClusterError when
    no worker of `cluster` can start, or none joined within `worker_wait` s (0: no deadline)."""
    started = time.monotonic()
    limit = (
        f"up to {worker_wait:g} s (--worker-wait)" if worker_wait else "as long as it takes (--worker-wait 0)"
    )
    logger.info("jobqueue: waiting %s for the first worker job to start (squeue lists them)", limit)
    while not stopped():
        try:
            client.wait_for_workers(1, timeout=POLL_SECONDS)
            return
        except TimeoutError:
            pass
        hopeless = why_no_worker_can_start(cluster)
        if hopeless:
            raise ClusterError(
                hopeless, hint="fix the cause named in that output, then run the same command again"
            )
        if worker_wait and time.monotonic() - started >= worker_wait:
            raise ClusterError(
                f"no worker job of the jobqueue cluster started within {worker_wait:g} s (--worker-wait)",
                hint="squeue shows whether the jobs still wait for resources (give --worker-wait 0 to wait as "
                "long as the queue takes) or why they cannot start; nothing was classified",
            )
    logger.info("jobqueue: stopping before the first worker job started")
