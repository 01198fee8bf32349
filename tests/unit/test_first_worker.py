"""Waiting for a cluster the driver joins: the first worker and the scheduler file under --worker-wait's
deadline (0: none), not a fixed timeout; a stop request ends the waits (ConnectStopped), and so does a
jobqueue keeper's verdict that no worker can start. A real scheduler without workers; the keeper's verdict is
set by hand (the real keeper reaches it in tests/slurm)."""

from __future__ import annotations

import threading

import pytest
from distributed import Client, LocalCluster

from hpc_classify.cluster import first_worker
from hpc_classify.cluster.first_worker import ConnectStopped, WorkerWait
from hpc_classify.errors import ClusterError, ConfigError

TARGET = "the test scheduler"


@pytest.fixture(scope="module")
def no_workers():
    with (
        LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        yield client, cluster


@pytest.fixture(autouse=True)
def short_polls(monkeypatch):
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.1)


def never() -> bool:
    return False


def test_it_returns_once_a_worker_joins_past_any_fixed_timeout(no_workers, monkeypatch):
    client, cluster = no_workers
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
        first_worker.wait_for_first_worker(client, cluster, WorkerWait(0, never), TARGET)
        assert joined.is_set() and len(client.nthreads()) == 1
    finally:
        cluster.scale(0)
        client.retire_workers(list(client.nthreads()))


def test_a_stop_request_ends_the_wait(no_workers):
    client, cluster = no_workers
    looks = iter([False, False, True])
    with pytest.raises(ConnectStopped, match="the first worker of the test scheduler"):
        first_worker.wait_for_first_worker(client, cluster, WorkerWait(0, lambda: next(looks)), TARGET)
    assert next(looks, "done") == "done"  # asked until it said stop


def test_no_worker_that_can_start_is_an_error_at_once(no_workers, monkeypatch):
    client, cluster = no_workers
    monkeypatch.setattr(first_worker, "why_no_worker_can_start", lambda _c: "every worker job ended (X.err)")
    with pytest.raises(ClusterError, match=r"every worker job ended \(X\.err\)"):
        first_worker.wait_for_first_worker(client, cluster, WorkerWait(0, never), TARGET)


def test_worker_wait_ends_the_wait_with_an_error_naming_it(no_workers):
    client, cluster = no_workers
    with pytest.raises(ClusterError, match=r"no worker joined the test scheduler within 0\.3 s") as raised:
        first_worker.wait_for_first_worker(client, cluster, WorkerWait(0.3, never), TARGET)
    assert "--worker-wait 0" in raised.value.hint


def test_a_scheduler_file_written_later_is_waited_for(tmp_path):
    path = tmp_path / "scheduler.json"
    looks = []

    def stopped() -> bool:
        looks.append(1)
        if len(looks) == 3:
            path.write_text("{}")
        return False

    first_worker.wait_for_scheduler_file(str(path), WorkerWait(0, stopped))
    assert len(looks) == 3


def test_a_scheduler_file_never_written_is_an_error_after_the_wait_or_a_stop(tmp_path):
    path = str(tmp_path / "missing.json")
    with pytest.raises(ClusterError, match=r"missing\.json was not written within 0\.3 s \(--worker-wait\)"):
        first_worker.wait_for_scheduler_file(path, WorkerWait(0.3, never))
    looks = iter([False, True])
    with pytest.raises(ConnectStopped, match="missing.json"):
        first_worker.wait_for_scheduler_file(path, WorkerWait(0, lambda: next(looks)))


@pytest.mark.parametrize("address", ["tcp://127.0.0.1", "tcp://10.0.0.5:", "tls://host:port"])
def test_an_address_without_a_port_is_refused_at_once_not_waited_for(address):
    """No scheduler can ever answer there (under --worker-wait 0 the wait would never end): refused at once."""
    with pytest.raises(ConfigError) as caught:
        first_worker.wait_for_scheduler_address(
            address, WorkerWait(0.5, never), answers=lambda _a: True
        )  # the old code: 0.5 s, then another error
    assert caught.value.one_line() == (
        f"the scheduler address {address} names no host and port; HINT: give the scheduler's address as its "
        "log or scheduler file says, e.g. tcp://10.0.0.5:8786"
    )


def test_a_long_wait_warns_once_naming_what_it_waits_for(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(first_worker, "NOTICE_AFTER", 0.2, raising=False)  # absent where it never warned
    path = tmp_path / "scheduler.json"
    looks = []

    def stopped() -> bool:
        looks.append(1)
        if len(looks) == 6:  # ~0.5 s of looks: past NOTICE_AFTER, long enough to warn twice if it did
            path.write_text("{}")
        return False

    first_worker.wait_for_scheduler_file(str(path), WorkerWait(0, stopped))
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        f"still waiting for the scheduler file {path} after 0.2 s, as long as it takes (--worker-wait 0): "
        "check the path, and that its scheduler runs or is queued"
    ]
