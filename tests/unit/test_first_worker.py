"""A jobqueue run's wait for its first worker job: --worker-wait's deadline (0: none), not a fixed timeout; it
ends on a stop request and when no worker can start. A real scheduler without workers; the keeper's verdict is
set by hand (the real keeper reaches it in tests/slurm)."""

from __future__ import annotations

import threading

import pytest
from distributed import Client, LocalCluster

from hpc_classify.cluster import first_worker
from hpc_classify.errors import ClusterError


@pytest.fixture(scope="module")
def no_workers():
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        yield client, cluster


def test_it_returns_once_a_worker_joins_past_any_fixed_timeout(no_workers, monkeypatch):
    client, cluster = no_workers
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.2)
    joined = threading.Event()
    looks = []

    def verdict(_cluster):
        looks.append(1)
        if len(looks) == 5:  # a worker joins after several looks; no deadline (--worker-wait 0)
            cluster.scale(1)
            joined.set()
        return None

    monkeypatch.setattr(first_worker, "why_no_worker_can_start", verdict)
    try:
        first_worker.wait_for_first_worker(client, cluster, 0, stopped=lambda: False)
        assert joined.is_set() and len(client.nthreads()) == 1
    finally:
        cluster.scale(0)
        client.retire_workers(list(client.nthreads()))


def test_a_stop_request_ends_the_wait_without_an_error(no_workers, monkeypatch):
    client, cluster = no_workers
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.1)
    looks = iter([False, False, True])
    first_worker.wait_for_first_worker(client, cluster, 0, stopped=lambda: next(looks))
    assert next(looks, "done") == "done"  # asked until it said stop


def test_no_worker_that_can_start_is_an_error_at_once(no_workers, monkeypatch):
    client, cluster = no_workers
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.1)
    monkeypatch.setattr(first_worker, "why_no_worker_can_start", lambda _c: "every worker job ended (X.err)")
    with pytest.raises(ClusterError, match=r"every worker job ended \(X\.err\)"):
        first_worker.wait_for_first_worker(client, cluster, 0, stopped=lambda: False)


def test_worker_wait_ends_the_wait_with_an_error_naming_it(no_workers, monkeypatch):
    client, cluster = no_workers
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.1)
    with pytest.raises(ClusterError, match=r"within 0\.3 s \(--worker-wait\)") as raised:
        first_worker.wait_for_first_worker(client, cluster, 0.3, stopped=lambda: False)
    assert "--worker-wait 0" in raised.value.hint
