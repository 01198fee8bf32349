"""A node that refuses its options (a ConfigError before it starts anything: its GPU count differs from
--workers-per-node, --rmm-pool-size on CPU workers, ...) says so where the other nodes look, so that they stop
at once instead of after --worker-timeout: its node-exit record, `<job dir>/<node>/node-exit.json` (as a node
that stops after rank 0's loss writes one), with its error and exit code.

The job directory is rank 0's to take first, and the other nodes write nothing there before rank 0 has
published its scheduler file (job_incarnation.py). So:
- rank 0 refusing takes the directory, records its refusal and writes `shutdown`: the other nodes, waiting
  for its scheduler file, find `shutdown` instead and stop, naming rank 0's node and its error;
- another node refusing waits until rank 0 has published its scheduler file (or ended), then records its
  refusal: rank 0, waiting for that node's workers, fails at once naming it, and its `shutdown` stops the rest.
Both waits look at the files with a backoff (file_looks.py): "at once" is within its LONGEST_GAP.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable

from hpc_classify.cluster.file_looks import Backoff
from hpc_classify.cluster.job_incarnation import Incarnation
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.errors import ClusterError, ConfigError

logger = logging.getLogger(__name__)


def rank0_published(paths: JobPaths, incarnation: Incarnation) -> str | None:
    """Which of rank 0's files is there: "scheduler" to join, or "shutdown" when rank 0 ended first."""
    if incarnation.read(paths.shutdown) is not None:
        return "shutdown"
    return "scheduler" if incarnation.read(paths.scheduler_file) is not None else None


def report_refusal(
    identity: NodeIdentity, error: ConfigError, job_root: str, *, wait: float, poll_interval: float
) -> None:
    """Record this node's refusal (`error`, which the caller still raises) where the other nodes look; a node
    other than rank 0 waits up to `wait` seconds (--worker-timeout) for rank 0 to start first."""
    paths = JobPaths.for_job(job_root, identity.job_id, identity.restart_count)
    incarnation = Incarnation(identity.incarnation)
    node = identity.node_name
    try:
        if identity.rank == 0:
            incarnation.take_job_dir(paths, node)
        elif not _rank0_started(paths, incarnation, wait, poll_interval):
            logger.error(
                "node %s: rank 0 started nothing within --worker-timeout: refusal not recorded", node
            )
            return
        paths.node_dir(node).mkdir(parents=True, exist_ok=True)
        record = {"node": node, "exit_code": error.exit_code, "reason": error.one_line()}
        incarnation.write(paths.exit_record(node, "node"), record)
        if identity.rank == 0:
            incarnation.write(paths.shutdown, {"node": node, "clean": False})
    except (OSError, ClusterError) as exc:  # the refusal stays this node's error and exit code
        logger.error("node %s: could not record its refusal in %s: %s", node, paths.job_dir, exc)


def _rank0_started(paths: JobPaths, incarnation: Incarnation, wait: float, poll_interval: float) -> bool:
    deadline, looks = time.monotonic() + wait, Backoff(poll_interval)
    while rank0_published(paths, incarnation) is None:
        if time.monotonic() > deadline:
            return False
        looks.sleep()
    return True


def refusals_error(paths: JobPaths, incarnation: Incarnation, nodes: Iterable[str]) -> ConfigError | None:
    """Rank 0's error when any of `nodes` (whose workers it waits for) refused its options; None if none did."""
    records = [r for node in nodes if (r := incarnation.read(paths.exit_record(node, "node")))]
    if not records:
        return None
    return ConfigError("; ".join(f"node {r['node']} refused its options: {r['reason']}" for r in records))


def rank0_refusal(paths: JobPaths, incarnation: Incarnation) -> str | None:
    """Rank 0's node and error, when it ended because it refused its options; else None."""
    node = (incarnation.read(paths.shutdown) or {}).get("node")
    record = incarnation.read(paths.exit_record(node, "node")) if node else None
    return f"{node}: {record['reason']}" if record else None
