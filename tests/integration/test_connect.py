"""Joining a running scheduler (--scheduler-file / --scheduler-address): the scheduler's address decides the
protocol, and a protocol given that it does not speak is a clear error, not silently tcp. The end of a cluster
whose scheduler was killed closes the client without waiting on the dead scheduler."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from concurrent.futures import CancelledError

import pytest
from distributed import Client, LocalCluster, wait

from hpc_classify.cluster.connect import close_quietly, connect, retire_and_shut_down
from hpc_classify.cluster.nemo_client import get_client
from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError


@pytest.fixture(scope="module")
def tcp_cluster():
    with LocalCluster(
        n_workers=1, threads_per_worker=1, processes=False, protocol="tcp", dashboard_address=":0"
    ) as cluster:
        yield cluster


@pytest.fixture
def scheduler_file(tmp_path, tcp_cluster) -> str:
    path = str(tmp_path / "scheduler.json")
    with Client(tcp_cluster) as owner:
        owner.write_scheduler_file(path)
    return path


def config(**join: str) -> RunConfig:
    return RunConfig(classifiers=["domain"], inputs=["in"], output="out", **join)


@pytest.mark.parametrize("protocol", [None, "tcp"])
def test_a_scheduler_file_is_joined_over_its_own_protocol(scheduler_file, protocol) -> None:
    client, cluster = connect(
        config(scheduler_file=scheduler_file, **({"protocol": protocol} if protocol else {}))
    )
    try:
        assert cluster is None and client.scheduler.address.startswith("tcp://")
    finally:
        close_quietly(client, cluster)


def test_ucxx_asked_for_but_the_scheduler_file_speaks_tcp(scheduler_file, tcp_cluster) -> None:
    with pytest.raises(ClusterError, match=r"protocol ucxx given, but scheduler file .* speaks tcp \(tcp://"):
        connect(config(scheduler_file=scheduler_file, protocol="ucxx"))
    with pytest.raises(ClusterError, match="protocol ucxx given, but scheduler tcp://.* speaks tcp"):
        connect(config(scheduler_address=tcp_cluster.scheduler_address, protocol="ucxx"))


def test_nemo_get_client_with_ucx_and_a_tcp_scheduler(scheduler_file, tcp_cluster) -> None:
    with pytest.raises(ClusterError, match="protocol ucxx given, but scheduler file .* speaks tcp"):
        get_client(scheduler_file=scheduler_file, protocol="ucx")
    with pytest.raises(ClusterError, match="protocol ucxx given, but LocalCluster at tcp://.* speaks tcp"):
        get_client(
            scheduler_address=tcp_cluster, protocol="ucx"
        )  # a cluster object, as NeMo's docstring allows


def test_the_end_of_a_cluster_whose_scheduler_was_killed_only_closes_the_client(tmp_path, caplog) -> None:
    # Rank 0 of a Slurm job ends its cluster after the driver stopped on a lost scheduler: retiring the
    # workers would wait out the client's reconnect timeout (worker_timeout: 300 s), then fail.
    scheduler_file = tmp_path / "scheduler.json"
    argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file)]
    argv += ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]
    scheduler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = Client(scheduler_file=str(scheduler_file), timeout=30)
        future = client.submit(sum, [1, 2], pure=False)  # no worker: it waits on the scheduler
        scheduler.kill()
        scheduler.wait(timeout=60)
        with pytest.raises(CancelledError):  # the client has noticed the loss
            wait([future], timeout=60)
        with caplog.at_level(logging.INFO):
            retire_and_shut_down(client)
        assert client.status == "closed"
        messages = [r.getMessage() for r in caplog.records]
        assert "the scheduler is gone (the client is connecting): no workers to retire" in messages
        assert not [m for m in messages if m.startswith("retiring workers")]
        # No error with the traceback of the reconnect's cancellation.
        assert not [r for r in caplog.records if r.exc_info and r.levelno >= logging.WARNING]
    finally:
        scheduler.kill()
        scheduler.wait(timeout=60)


@pytest.mark.timeout(120)
def test_the_end_of_a_cluster_whose_scheduler_no_longer_answers_is_cut_at_its_deadline(
    tmp_path, caplog
) -> None:
    # After a stop signal rank 0 ends its cluster within seconds (what KillWait leaves): a scheduler that no
    # longer answers (stopped here; its node swapping) must not hold it. Each step used to wait without a deadline
    # (retiring the workers), or twice the client's timeout (closing it: 600 s with --worker-timeout 300).
    scheduler_file = tmp_path / "scheduler.json"
    argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file)]
    argv += ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]
    scheduler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        client = Client(scheduler_file=str(scheduler_file), timeout=300)
        os.kill(scheduler.pid, signal.SIGSTOP)
        with caplog.at_level(logging.WARNING):
            retire_and_shut_down(client, timeout=1.0)
        messages = [r.getMessage() for r in caplog.records if r.name == "hpc_classify.cluster.connect"]
        # Each step was cut at the deadline, logged, and the next one still ran.
        assert [m.split(":")[0] for m in messages] == [
            "retiring workers",
            "stopping the scheduler",
            "error while closing Client",
        ], messages
        assert all("timed out after" in m for m in messages), messages
    finally:
        scheduler.kill()
        scheduler.wait(timeout=60)
