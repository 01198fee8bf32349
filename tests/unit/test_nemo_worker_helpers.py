"""NeMo Curator 0.7.1's worker helpers in `hpc_classify.utils.distributed_utils`, on an in-process cluster."""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster

from hpc_classify.utils.distributed_utils import (
    NoWorkerError,
    get_current_client,
    get_num_workers,
    load_object_on_worker,
)

LOADS = []


def _load(value):
    LOADS.append(value)
    return {"value": value}


def _on_worker(value):
    return load_object_on_worker("nemo_test_model", _load, {"value": value})["value"]


def test_outside_a_worker_no_worker_error_and_no_client():
    before = len(LOADS)
    with pytest.raises(NoWorkerError, match="No worker found"):
        load_object_on_worker("nemo_test_model", _load, {"value": 1})
    assert len(LOADS) == before
    assert get_num_workers(None) is None


def test_loaded_once_per_worker_and_kept():
    LOADS.clear()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            assert get_current_client() is client
            assert get_num_workers(client) == 2
            workers = list(client.scheduler_info()["workers"])
            first = client.submit(_on_worker, 1, workers=workers[:1], pure=False).result()
            again = client.submit(_on_worker, 2, workers=workers[:1], pure=False).result()
            assert (first, again) == (1, 1)  # the second call finds the first object on that worker
            assert client.submit(_on_worker, 3, workers=workers[1:], pure=False).result() == 3
            assert LOADS[-2:] == [1, 3]
    assert get_current_client() is None
