"""The wait for a scheduler address (`run --scheduler-address`, `get_client(scheduler_address=)`) asks with Dask's
own handshake: its plain TCP connect, closed at once, made a live scheduler log "Connection from ... closed before
handshake completed" (INFO, distributed.comm.tcp) at every look before the client joined. A port that accepts and
never speaks Dask is still named as such within the connect timeout; a stop still ends the wait. A real
in-process scheduler."""

from __future__ import annotations

import logging
import socket
import threading

import pytest
from distributed import Client, LocalCluster

from hpc_classify.cluster import first_worker
from hpc_classify.cluster.first_worker import ConnectStopped, WorkerWait
from hpc_classify.cluster.scheduler_handshake import answers_as_scheduler
from hpc_classify.errors import ClusterError


def never() -> bool:
    return False


def _handshake(timeout: float):
    return lambda address: answers_as_scheduler(address, timeout)  # as connect and get_client ask


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_a_live_scheduler_logs_no_connection_closed_before_its_handshake() -> None:
    comm_log = logging.getLogger(
        "distributed.comm.tcp"
    )  # distributed's loggers do not propagate: caplog is blind
    lines = _Lines()
    comm_log.addHandler(lines)
    try:
        with (
            LocalCluster(n_workers=0, processes=False, protocol="tcp", dashboard_address=":0") as cluster,
            Client(cluster) as client,
        ):
            first_worker.wait_for_scheduler_address(
                cluster.scheduler_address, WorkerWait(5, never), answers=_handshake(5)
            )
            # A round trip on a new connection: the scheduler has read the probe's connection to its end by then.
            with Client(cluster.scheduler_address) as again:
                assert again.run_on_scheduler(lambda: "ok") == "ok" and client.status == "running"
    finally:
        comm_log.removeHandler(lines)
    assert [line for line in lines.lines if "before handshake" in line] == []


def test_a_port_that_accepts_and_never_speaks_dask_is_named_within_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # the kernel accepts; nothing ever writes
        address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
        with pytest.raises(ClusterError) as raised:
            first_worker.wait_for_scheduler_address(address, WorkerWait(0, never), answers=_handshake(0.5))
    assert raised.value.one_line() == (
        f"the scheduler {address} accepts connections but does not answer as a Dask scheduler (no handshake "
        "within 0.5 s); HINT: check the address: the scheduler's port (8786 by default), not its dashboard's (8787)"
    )


def test_a_stop_ends_the_wait_for_an_address_nothing_listens_on(monkeypatch) -> None:
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.05)
    with socket.create_server(("127.0.0.1", 0)) as server:
        address = f"tcp://127.0.0.1:{server.getsockname()[1]}"
    looks = iter([False, False, True])
    with pytest.raises(ConnectStopped, match=f"stopped while waiting for the scheduler {address}"):
        first_worker.wait_for_scheduler_address(
            address, WorkerWait(0, lambda: next(looks)), answers=_handshake(5)
        )
    assert next(looks, "done") == "done"


def test_a_scheduler_that_starts_later_is_joined(monkeypatch) -> None:
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.05)
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    started = threading.Event()
    looks = []

    def stopped() -> bool:
        looks.append(1)
        if len(looks) == 2:
            started.set()
        return False

    holder = {}

    def start() -> None:
        started.wait()
        holder["cluster"] = LocalCluster(
            n_workers=0, processes=False, protocol="tcp", dashboard_address=":0", scheduler_port=port
        )

    thread = threading.Thread(target=start)
    thread.start()
    try:
        first_worker.wait_for_scheduler_address(
            f"tcp://127.0.0.1:{port}", WorkerWait(30, stopped), answers=_handshake(5)
        )
    finally:
        thread.join()
        holder["cluster"].close()
    assert len(looks) >= 2
