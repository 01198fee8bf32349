"""A scheduler file left by a scheduler that ended (last week's job): `run --scheduler-file` and NeMo's
`get_client(scheduler_file=)` wait over it as over a missing file, until a new scheduler overwrites it, and say
what the file names and since when if none does within the wait. They used to fail after the 30 s connect
timeout with a bare "could not connect"."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from scheduler_waits import handler_on, within

from hpc_classify import get_client
from hpc_classify.cluster import first_worker, nemo_client
from hpc_classify.cluster.connect import connect
from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError

WAITS = logging.getLogger("hpc_classify.cluster.first_worker")
RETURN_WITHIN = 60.0  # seconds; a hung call fails the test instead
LAST_WEEK = time.time() - 7 * 86_400


@pytest.fixture(autouse=True)
def short_waits(monkeypatch):
    monkeypatch.setattr(first_worker, "POLL_SECONDS", 0.2)
    monkeypatch.setattr(nemo_client, "CONNECT_TIMEOUT_S", 1)


@pytest.fixture
def dead_port() -> Iterator[int]:
    """A port bound but listened on by nobody: a connect is refused, as at a scheduler that ended."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def _stale_file(tmp_path: Path, port: int) -> tuple[Path, str]:
    path = tmp_path / "scheduler.json"
    path.write_text(f'{{"type": "Scheduler", "address": "tcp://127.0.0.1:{port}", "id": "Scheduler-old"}}')
    os.utime(path, (LAST_WEEK, LAST_WEEK))
    names = (
        f"the scheduler file {path} (written at "
        f"{time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(LAST_WEEK))}) names tcp://127.0.0.1:{port}"
    )
    return path, names


def test_get_client_names_a_dead_schedulers_file_after_worker_wait(tmp_path, dead_port) -> None:
    path, names = _stale_file(tmp_path, dead_port)
    with pytest.raises(ClusterError) as raised:
        within(RETURN_WITHIN, lambda: get_client(scheduler_file=str(path), worker_wait=1))
    assert str(raised.value).split("\nHINT: ")[0] == (
        f"{names}, which does not answer: its scheduler may have ended (a previous job's file?), and no "
        "scheduler overwrote it within 1 s (worker_wait)"
    )
    assert raised.value.hint.startswith("remove the file or start the scheduler")
    assert "give worker_wait=0 to wait" in raised.value.hint


def test_run_names_a_dead_schedulers_file_after_worker_wait(tmp_path, dead_port) -> None:
    path, names = _stale_file(tmp_path, dead_port)
    config = RunConfig(
        classifiers=["domain"], inputs=["in"], output="out", scheduler_file=str(path), worker_wait=1
    )
    with pytest.raises(ClusterError) as raised:
        within(RETURN_WITHIN, lambda: connect(config, timeout=1))
    assert str(raised.value).split("\nHINT: ")[0] == (
        f"{names}, which does not answer: its scheduler may have ended (a previous job's file?), and no "
        "scheduler overwrote it within 1 s (--worker-wait)"
    )
    assert "give --worker-wait 0 to wait" in raised.value.hint


def test_a_scheduler_started_later_overwrites_a_dead_ones_file_and_is_joined(
    tmp_path, dead_port, caplog
) -> None:
    """The driver's job started first and found last week's file; the scheduler's job starts later."""
    path, names = _stale_file(tmp_path, dead_port)
    caplog.set_level(logging.WARNING, logger=WAITS.name)
    with LocalCluster(n_workers=1, processes=False, dashboard_address=":0") as cluster:
        overwritten = threading.Event()

        class _OnWaiting(logging.Handler):  # the readiness signal: get_client says it waits over the file
            def emit(self, record: logging.LogRecord) -> None:
                if "waiting up to 120 s (worker_wait) for a new scheduler" in record.getMessage():
                    if not overwritten.is_set():
                        overwritten.set()
                        with Client(cluster) as owner:
                            owner.write_scheduler_file(str(path))

        with handler_on(WAITS, _OnWaiting()):
            client = within(RETURN_WITHIN, lambda: get_client(scheduler_file=str(path), worker_wait=120))
        try:
            assert client.scheduler.address == cluster.scheduler_address
            assert len(client.nthreads()) == 1
        finally:
            client.close()
    warnings = [r.getMessage() for r in caplog.records if r.name == WAITS.name]
    assert warnings[0] == (
        f"{names}, which does not answer: its scheduler may have ended (a previous job's file?); waiting up to "
        "120 s (worker_wait) for a new scheduler to overwrite it"
    )


def test_a_connect_that_fails_anyway_names_the_file_and_its_address(tmp_path, dead_port) -> None:
    """Where the wait cannot judge the address (ucx), or its scheduler ended since: the connect's error says it."""
    path, names = _stale_file(tmp_path, dead_port)
    error = first_worker.join_error(
        f"scheduler file {path}", OSError("Timed out trying to connect"), str(path), "is it reachable?"
    )
    assert str(error).split("\nHINT: ")[0] == (
        f"could not connect to {names}: Timed out trying to connect; its scheduler may have ended (a previous "
        "job's file?)"
    )
    assert error.hint == (
        "remove the file or start the scheduler (`dask scheduler --scheduler-file ...`); if it runs: is it reachable?"
    )
