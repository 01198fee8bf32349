"""The --piece-bytes default follows the device of the workers, which is not always the driver's: a driver
on a login node without GPUs sends work to GPU workers, and a driver on a GPU node to CPU workers."""

from __future__ import annotations

import pytest
from distributed import Client, LocalCluster

from hpc_classify.cluster import local
from hpc_classify.driver.pieces import CPU_PIECE_BYTES, GPU_PIECE_BYTES, default_piece_bytes
from hpc_classify.driver.worker_gpus import WorkerGpus


@pytest.fixture
def driver_sees_a_gpu(monkeypatch):
    # Patched in this process only: the worker processes below count their GPUs with the real functions.
    monkeypatch.setattr(local, "_nvml_device_count", lambda: 1)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert local.visible_gpu_count() == 1


def test_auto_takes_the_workers_device_not_the_drivers(driver_sees_a_gpu) -> None:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert sum(client.run(local.visible_gpu_count).values()) == 0  # this machine's workers: no GPU
        assert default_piece_bytes("auto", WorkerGpus(client)) == CPU_PIECE_BYTES


def test_auto_with_no_worker_yet_takes_the_drivers_node(driver_sees_a_gpu) -> None:
    with (
        LocalCluster(n_workers=0, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        assert default_piece_bytes("auto", WorkerGpus(client)) == GPU_PIECE_BYTES


def test_an_explicit_device_decides_alone() -> None:
    assert default_piece_bytes("cuda") == GPU_PIECE_BYTES
    assert default_piece_bytes("cpu") == CPU_PIECE_BYTES
