"""A stop that reaches a local cluster's workers while they start (Ctrl-C goes to the terminal's whole process
group; found by a fault-injection loop: 4 of 6 signals 0.5-0.9 s after "starting a local CPU cluster") made their
start fail, and the run exited 2, "could not start a local Dask cluster", where the docs promise 5 (stopped
before anything was finished). The failure after a stop is the stop; without one it is still the error."""

from __future__ import annotations

import pytest

from hpc_classify.cluster import local
from hpc_classify.cluster.connect import connect
from hpc_classify.cluster.first_worker import ConnectStopped
from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError


@pytest.fixture
def failing_start(monkeypatch):
    def start_local_cluster(**options):
        raise ClusterError("could not start a local Dask cluster over tcp: Nanny failed to start.")

    monkeypatch.setattr(local, "start_local_cluster", start_local_cluster)


def _config() -> RunConfig:
    return RunConfig(classifiers=["domain"], inputs=["in"], output="out")


def test_a_start_that_fails_after_a_stop_is_the_stop(failing_start) -> None:
    with pytest.raises(ConnectStopped, match="^the local cluster's start was cut short$"):
        connect(_config(), stopped=lambda: True)


def test_a_start_that_fails_without_a_stop_is_the_error(failing_start) -> None:
    with pytest.raises(ClusterError, match="Nanny failed to start"):
        connect(_config(), stopped=lambda: False)
