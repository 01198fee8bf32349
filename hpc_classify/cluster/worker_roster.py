"""Which nodes' workers have joined rank 0's scheduler: each node publishes how many workers it starts
(`<job dir>/<node>/workers.json`; nodes may differ, e.g. 8 and 4 GPUs), and its workers are named
`<node>-<i>`. Rank 0 waits on this before running the driver, and names the nodes missing at its deadline."""

from __future__ import annotations

from hpc_classify.cluster.job_incarnation import Incarnation
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_files import log_tail
from hpc_classify.errors import ClusterError


class WorkerRoster:
    def __init__(
        self, paths: JobPaths, incarnation: Incarnation, node_names: tuple[str, ...], worker_timeout: float
    ):
        self.paths = paths
        self.incarnation = incarnation
        self.node_names = node_names
        self.worker_timeout = worker_timeout
        self._published: dict[str, int | None] = {}  # the counts read so far

    def expected_workers(self) -> dict[str, int | None]:
        """Each node's worker count as that node published it (None until it has). A published count never
        changes in a job: read once, not at every poll of the shared file system."""
        for node in self.node_names:
            if self._published.get(node) is None:
                published = self.incarnation.read(self.paths.node_workers(node))
                self._published[node] = published.get("workers") if published else None
        return dict(self._published)

    def missing_nodes(self, worker_names: list[str]) -> list[str]:
        """The nodes whose workers have not all joined (or that have not said how many they start)."""

        def joined(node: str) -> int:
            prefix = f"{node}-"
            return sum(
                1 for n in worker_names if n == node or (n.startswith(prefix) and n[len(prefix) :].isdigit())
            )

        return [
            node
            for node, expected in self.expected_workers().items()
            if expected is None or joined(node) < expected
        ]

    def missing_error(self, missing: list[str], exited: bool) -> ClusterError:
        """The error naming the `missing` nodes, with their worker logs' tails."""
        parts = []
        for node in missing:
            log = self.paths.log(node, "worker")
            parts.append(f"--- {node}: {log} ---\n{log_tail(log)}")
        why = "its worker exited" if exited else f"not within {self.worker_timeout:.0f} s"
        return ClusterError(
            f"no worker from {', '.join(missing)} joined the scheduler ({why}); "
            f"expected per node: {self.expected_workers()} (None: the node never started its workers).\n"
            + "\n".join(parts),
            hint="check --interface/--protocol (the workers must reach the scheduler), that the Python "
            "environment is the same on every node, and the node logs in " + str(self.paths.job_dir),
        )
