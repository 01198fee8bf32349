"""Joining a running scheduler (--scheduler-file / --scheduler-address): the scheduler's address decides the
protocol, and a protocol given that it does not speak is a clear error, not silently tcp."""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster

from hpc_classify.cluster.connect import close_quietly, connect
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
