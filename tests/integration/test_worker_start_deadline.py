"""A local worker that hangs as it starts (here a preload that never returns) ends the start of a local cluster
at the --worker-wait deadline with an error naming the likely causes and the log, for NeMo's get_client and for
the run's own local cluster (both used to wait for ever)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import dask
import pytest

from hpc_classify import get_client
from hpc_classify.cluster import local
from hpc_classify.errors import ClusterError

HANG_PRELOAD = str(Path(__file__).with_name("hang_worker_preload.py"))


def worker_processes() -> set[int]:
    """The pids of this process's Dask worker children (an earlier test's may still be there: not counted by
    the tests below, which compare with the ones present before they start)."""
    return {p.pid for p in multiprocessing.active_children() if "Dask Worker" in p.name}


def test_get_client_stops_at_the_worker_wait_deadline_naming_causes_and_log(monkeypatch):
    monkeypatch.setattr(local, "DEFAULT_WORKER_WAIT", 3.0)  # --worker-wait's default, shortened for the test
    before = worker_processes()
    with pytest.raises(ClusterError) as caught:
        get_client(n_workers=1, preload=[HANG_PRELOAD])
    message = str(caught.value)
    assert "1 local Dask worker(s) did not start within 3 s (the --worker-wait deadline" in message
    assert "preload" in message and "__main__" in message and "this process's stderr" in message
    assert worker_processes() <= before  # the hung worker was stopped, not left behind


def test_the_runs_local_cluster_stops_at_its_worker_wait():
    before = worker_processes()
    with dask.config.set({"distributed.worker.preload": [HANG_PRELOAD]}):
        with pytest.raises(ClusterError, match=r"did not start within 2 s \(the --worker-wait deadline"):
            local.start_local_cluster(workers=2, device="cpu", worker_wait=2)
    assert worker_processes() <= before


def test_dask_death_timeout_given_to_get_client_is_the_deadline():
    with pytest.raises(ClusterError, match=r"did not start within 2 s"):
        get_client(n_workers=1, preload=[HANG_PRELOAD], death_timeout="2s")
