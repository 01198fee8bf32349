"""A local worker killed again while its nanny restarts it still comes back.

Dask's LocalCluster closes a nanny for good when no worker of its name is connected 15 s
(distributed.deploy.lost-worker-timeout) after one of its removals. A poison document kills each new worker
within seconds, so that moment often falls in a restart: every later file then waited for --worker-wait and
the run stopped with exit 3 (the poison tests failed about one run in four).
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from distributed import Client

from hpc_classify.cluster.connect import close_quietly
from hpc_classify.cluster.local import start_local_cluster

pytestmark = pytest.mark.faults

LOST_WORKER_TIMEOUT = 15.0  # distributed's default, which the cluster no longer applies to its own nannies


def _new_worker_pid(client: Client, old: int | None = None, timeout: float = 60) -> int:
    """The process id of the connected worker once it is not `old`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pids = list(client.run(os.getpid, on_error="ignore").values())
        except OSError:  # the worker went away during the call
            pids = []
        if pids and isinstance(pids[0], int) and pids[0] != old:
            return pids[0]
        time.sleep(0.2)
    raise AssertionError(f"no new worker connected within {timeout} s")


def test_a_worker_killed_again_while_it_restarts_comes_back() -> None:
    cluster = start_local_cluster(workers=1, threads_per_worker=1, device="cpu")
    try:
        with Client(cluster) as client:
            pid = _new_worker_pid(client)
            first_removal = time.monotonic()
            os.kill(pid, signal.SIGKILL)
            # Kill each new worker as soon as it connects, until the removal timer of the first death has fired
            # (it would close the nanny while the worker restarts).
            while time.monotonic() - first_removal < LOST_WORKER_TIMEOUT + 3:
                pid = _new_worker_pid(client, pid)
                os.kill(pid, signal.SIGKILL)
            survivor = _new_worker_pid(client, pid)
            assert client.submit(os.getpid, pure=False).result(timeout=60) == survivor
            assert len(cluster.workers) == 1  # the nanny is still the cluster's
    finally:
        # As the driver closes its cluster, with a deadline: once (in CI) LocalCluster's own close waited for
        # ever on this nanny after the assertions had passed. What this test is about is the restart.
        close_quietly(None, cluster)
