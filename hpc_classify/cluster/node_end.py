"""The end of a Slurm node's entry (slurm_node.run_node): rank 0 ends its cluster and tells the other nodes,
every node stops the processes it started. After a stop signal every step is bounded by what the stop leaves
(Slurm's KillWait after a SIGTERM; the margin after the time-limit warning's grace): the stop report was
written before (run_node's `on_outcome`), and srun must end in time for the batch script's requeue."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from hpc_classify.cluster.connect import CLOSE_TIMEOUT, STOP_CLOSE_TIMEOUT

logger = logging.getLogger(__name__)

STOP_KILL_AFTER = 2.0  # after a stop signal: seconds the node's processes get between SIGTERM and SIGKILL


def end_node(
    launcher: Any, clean: bool, *, stopping: bool = False, within: Callable[[float], float] = float
) -> None:
    """Rank 0: end the cluster (within STOP_CLOSE_TIMEOUT after a stop signal), then tell the other nodes; every
    node: stop what it started. `launcher`: slurm_node.NodeLauncher (not imported: it imports this module).
    `within(cap)`: what a step of a stop's end whose own limit is `cap` s may take (StopRequest.within: less once
    KillWait is nearly over)."""
    rank0 = launcher.identity.rank == 0
    try:
        if rank0:
            launcher.end_cluster(within(STOP_CLOSE_TIMEOUT) if stopping else CLOSE_TIMEOUT)
        if rank0 and launcher.heartbeat is not None:
            # First the ended beat: the other nodes read the heartbeat by content at every look, so they see
            # the end even while their file system still shows no `shutdown` (see rank0_heartbeat.py).
            launcher.heartbeat.end(clean)
        if rank0 and launcher.job_dir.is_dir():
            # The other nodes then stop their workers at once, also those that never reached the
            # scheduler (they would otherwise wait for their worker or death timeout).
            launcher.incarnation.write(
                launcher.paths.shutdown, {"node": launcher.identity.node_name, "clean": clean}
            )
    except OSError as exc:  # a full or failing file system: the others notice the heartbeat stop instead
        logger.error("could not write %s: %s", launcher.paths.shutdown, exc)
    finally:
        # After rank 0's clean shutdown its children exit by themselves; otherwise, or after a stop signal (which
        # reached them too), nothing waits for them.
        if stopping:
            launcher.processes.stop(grace=0.0, kill_after=within(STOP_KILL_AFTER))
        else:
            launcher.processes.stop(grace=2.0 if clean and rank0 else 0.0)
