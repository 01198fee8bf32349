"""Get a Dask client for a run: join an existing scheduler (--scheduler-file / --scheduler-address, what the
Slurm launcher uses), start a jobqueue cluster, or start a local one. Never imports torch."""

from __future__ import annotations

import logging
from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError
from hpc_classify.worker_env import quiet_ucx_here

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 120.0


def connect(config: RunConfig, *, timeout: float = DEFAULT_CONNECT_TIMEOUT) -> tuple[Any, Any | None]:
    """Return `(client, cluster)`; `cluster` is None when joining a scheduler someone else runs (then the
    caller must not shut it down). Waits, up to `timeout`, until at least one worker has joined."""
    from distributed import Client

    if config.protocol == "ucxx":
        quiet_ucx_here()
    cluster = None
    if config.scheduler_file:
        target = f"scheduler file {config.scheduler_file}"
        client = _join(lambda: Client(scheduler_file=config.scheduler_file, timeout=timeout), target)
    elif config.scheduler_address:
        address = config.scheduler_address
        if "://" not in address:
            address = f"{config.protocol}://{address}"
        target = f"scheduler {address}"
        client = _join(lambda: Client(address, timeout=timeout), target)
    elif config.cluster == "jobqueue":
        from hpc_classify.cluster import jobqueue  # lazily: dask-jobqueue is only needed here

        cluster = jobqueue.start_jobqueue_cluster(config)
        target = "the jobqueue cluster"
        client = Client(cluster)
    else:  # "local": RunConfig refuses any other kind
        from hpc_classify.cluster.local import start_local_cluster

        cluster = start_local_cluster(
            workers=config.workers,
            threads_per_worker=config.threads_per_worker,
            protocol=config.protocol,
            device=config.device,
        )
        target = "the local cluster"
        client = Client(cluster)
    try:
        client.wait_for_workers(1, timeout=timeout)
    except TimeoutError as exc:
        close_quietly(client, cluster)
        raise ClusterError(
            f"no worker joined {target} within {timeout:.0f} s",
            hint="check the workers' logs; under Slurm, that the node jobs started and can reach the scheduler",
        ) from exc
    return client, cluster


def close_quietly(client: Any, cluster: Any | None) -> None:
    """Close the client, and the cluster when we started it; errors on the way down are only logged."""
    for thing in (client, cluster):
        if thing is None:
            continue
        try:
            thing.close()
        except Exception as exc:  # shutting down after a failure must not hide the original error
            logger.warning("error while closing %s: %s", type(thing).__name__, exc)


def _join(make_client: Any, target: str) -> Any:
    try:
        return make_client()
    except (OSError, TimeoutError) as exc:
        raise ClusterError(
            f"could not connect to {target}: {exc}",
            hint="is the scheduler running, and reachable over this protocol and interface?",
        ) from exc
