"""Which nodes' workers have joined rank 0's scheduler: each node publishes how many workers it starts
(`<job dir>/<node>/workers.json`; nodes may differ, e.g. 8 and 4 GPUs), and its workers are named
`<node>-<i>`. Rank 0 waits on this before running the driver (`wait`), and names the nodes missing at its
deadline."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from hpc_classify.cluster.file_looks import Backoff
from hpc_classify.cluster.job_incarnation import Incarnation
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_files import log_tail
from hpc_classify.cluster.node_refusal import refusals_error
from hpc_classify.errors import ClusterError
from hpc_classify.stop_request import StopRequest


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
        """Each node's worker count as that node published it (None until it has)."""
        self._read_counts(self.node_names)
        return {node: self._published[node] for node in self.node_names}

    def _read_counts(self, nodes: Iterable[str]) -> None:
        # A published count never changes in a job: read once, not at every poll of the shared file system.
        for node in nodes:
            if self._published.get(node) is None:
                published = self.incarnation.read(self.paths.node_workers(node))
                self._published[node] = published.get("workers") if published else None

    def missing_nodes(self, worker_names: list[str], *, read: bool = True) -> list[str]:
        """The nodes whose workers have not all joined (or whose count is not known). `read`: read the count of
        each node that has workers joined (a node without any is missing whatever its count: not read)."""

        def joined(node: str) -> int:
            prefix = f"{node}-"
            return sum(
                1 for n in worker_names if n == node or (n.startswith(prefix) and n[len(prefix) :].isdigit())
            )

        counts = {node: joined(node) for node in self.node_names}
        if read:
            self._read_counts(node for node, n in counts.items() if n)
        return [
            node for node, n in counts.items() if (count := self._published.get(node)) is None or n < count
        ]

    def wait(
        self,
        client: Any,
        stop: StopRequest,
        deadline: float,
        poll_interval: float,
        each_pass: Callable[[], None],
    ) -> None:
        """Ask the scheduler every `poll_interval` until every node's workers joined (or `stop`); fail when a
        missing node refused its options or its worker exited, or past `deadline` (time.monotonic). The nodes'
        files are read with a backoff (file_looks.py), at once when the workers that joined change."""
        looks = Backoff(poll_interval)
        joined: list[str] = []
        while True:
            info = client.scheduler_info(n_workers=-1)["workers"].values()
            if (names := sorted(str(w.get("name", "")) for w in info)) != joined:
                joined = names
                looks.reset()
            look = looks.due()
            missing = self.missing_nodes(names, read=look)
            if not missing or stop.requested:
                return
            each_pass()
            late = time.monotonic() > deadline
            if look or late:
                if (refused := refusals_error(self.paths, self.incarnation, missing)) is not None:
                    raise refused
                exited = [n for n in missing if self.incarnation.read(self.paths.exit_record(n, "worker"))]
                if exited or late:
                    raise self.missing_error(exited or missing, bool(exited))
            time.sleep(poll_interval)

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
