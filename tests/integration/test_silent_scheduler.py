"""Joining a scheduler address that accepts connections but never speaks Dask (a dashboard's port, another
program on a port a scheduler left): NeMo's `get_client` and `run`'s connect fail within the connect timeout,
naming the address (and the scheduler file that names it). They used to wait for ever: distributed reads the
peer's handshake without a deadline. And `get_client(scheduler_address=)` waits under `worker_wait` for a
scheduler that does not accept connections yet, as it waits for a scheduler file (it used to fail after 30 s)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import LocalCluster
from scheduler_waits import scheduler_on_warning, within

from hpc_classify import get_client
from hpc_classify.cluster import first_worker, nemo_client
from hpc_classify.cluster.connect import connect
from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError

WAITS = logging.getLogger("hpc_classify.cluster.first_worker")
RETURN_WITHIN = 60.0  # seconds, far above the 1 s connect timeout; a hung call fails the test instead
SILENT = "accepts connections but does not answer as a Dask scheduler (no handshake within 1 s)"


@pytest.fixture(autouse=True)
def short_waits(monkeypatch):
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(first_worker, "NOTICE_AFTER", 1.5)
    monkeypatch.setattr(nemo_client, "CONNECT_TIMEOUT_S", 1)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections (the kernel's backlog) and never sends a byte."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield sock.getsockname()[1]


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _file_naming(tmp_path: Path, address: str) -> Path:
    path = tmp_path / "scheduler.json"
    path.write_text(f'{{"type": "Scheduler", "address": "{address}", "id": "Scheduler-x"}}')
    return path


def test_get_client_of_a_file_naming_a_silent_port_fails_naming_both(tmp_path, silent_port) -> None:
    address = f"tcp://127.0.0.1:{silent_port}"
    path = _file_naming(tmp_path, address)
    with pytest.raises(ClusterError) as raised:
        within(RETURN_WITHIN, lambda: get_client(scheduler_file=str(path), worker_wait=120))
    message, hint = str(raised.value).split("\nHINT: ")
    assert message.startswith(f"the scheduler file {path} (written at ")
    assert message.endswith(f") names {address}, which {SILENT}")
    assert "another program taken its port" in hint and "remove the file" in hint


def test_get_client_of_a_dashboard_address_fails_naming_it(tmp_path) -> None:
    with LocalCluster(n_workers=1, processes=False, dashboard_address="127.0.0.1:0") as cluster:
        dashboard = f"tcp://127.0.0.1:{cluster.scheduler.http_server.port}"  # HTTP: waits for a request
        with pytest.raises(ClusterError) as raised:
            within(RETURN_WITHIN, lambda: get_client(scheduler_address=dashboard, worker_wait=120))
    message, hint = str(raised.value).split("\nHINT: ")
    assert message == f"the scheduler {dashboard} {SILENT}"
    assert hint == "check the address: the scheduler's port (8786 by default), not its dashboard's (8787)"


@pytest.mark.parametrize("join", ["scheduler_file", "scheduler_address"])
def test_run_connect_to_a_silent_port_fails_within_its_timeout(tmp_path, silent_port, join) -> None:
    address = f"tcp://127.0.0.1:{silent_port}"
    where = str(_file_naming(tmp_path, address)) if join == "scheduler_file" else address
    config = RunConfig(classifiers=["domain"], inputs=["in"], output="out", **{join: where})
    with pytest.raises(ClusterError) as raised:
        within(RETURN_WITHIN, lambda: connect(config, timeout=1))
    message = str(raised.value).split("\nHINT: ")[0]
    if join == "scheduler_file":
        assert message.startswith(f"the scheduler file {where} (written at ")
        assert message.endswith(f") names {address}, which {SILENT}")
    else:
        assert message == f"the scheduler {address} {SILENT}"


def test_get_client_waits_for_a_scheduler_address_started_later(free_port, caplog) -> None:
    address = f"tcp://127.0.0.1:{free_port}"
    caplog.set_level(logging.INFO, logger=WAITS.name)
    with scheduler_on_warning(free_port, WAITS):
        client = within(RETURN_WITHIN, lambda: get_client(scheduler_address=address, worker_wait=120))
        try:
            assert client.scheduler.address == address
            assert len(client.nthreads()) == 1
            assert client.submit(sum, [1, 2, 3]).result() == 6
        finally:
            client.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"still waiting for the scheduler {address} after 1.5 s, up to 120 s (worker_wait): "
        "check the address, and that its scheduler runs or is queued"
    ]


def test_a_scheduler_address_not_up_within_worker_wait_is_an_error_naming_it(free_port) -> None:
    with pytest.raises(ClusterError) as raised:
        within(RETURN_WITHIN, lambda: get_client(scheduler_address=f"127.0.0.1:{free_port}", worker_wait=0.5))
    message, hint = str(raised.value).split("\nHINT: ")
    assert (
        message
        == f"the scheduler tcp://127.0.0.1:{free_port} did not accept a connection within 0.5 s (worker_wait)"
    )
    assert hint == (
        "check the address, and that its scheduler runs or waits in the queue; "
        "give worker_wait=0 to wait as long as the queue takes"
    )
