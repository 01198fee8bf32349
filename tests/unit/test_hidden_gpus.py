"""A GPU node that shows the job none of its GPUs (a GPU partition without --gpus-per-node: Slurm's
ConstrainDevices hides them, NVML counts 0) used to run `--device auto` on CPU workers without a word, some
50-100x slower. The NVIDIA driver's procfs listing is a directory made here: no GPU needed."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from hpc_classify.cluster import hidden_gpus, local, slurm_node
from hpc_classify.cluster.hidden_gpus import hidden_gpus_warning, installed_gpu_count
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions, run_node
from hpc_classify.stop_request import StopRequest

NODE1 = NodeIdentity(0, 1, "node1", ("node1",), "42", 0, "c1:42.0:1:step 0")


@pytest.fixture
def gpu_node(tmp_path: Path, monkeypatch) -> Path:
    """A node whose driver lists two GPUs (directories named by PCI address, as /proc/driver/nvidia/gpus)."""
    listing = tmp_path / "nvidia-gpus"
    for address in ("0000:3b:00.0", "0000:5e:00.0"):
        (listing / address).mkdir(parents=True)
    monkeypatch.setattr(hidden_gpus, "NVIDIA_PROC_GPUS", str(listing))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return listing


def test_the_gpus_the_driver_lists_are_counted_and_none_without_the_driver(tmp_path: Path, gpu_node) -> None:
    assert installed_gpu_count() == 2
    assert installed_gpu_count(str(tmp_path / "no-driver")) == 0


def test_gpus_installed_but_none_visible_is_a_warning_naming_the_fix(gpu_node) -> None:
    warning = hidden_gpus_warning("auto", 0, "node node1")
    assert warning is not None
    assert f"node node1 has 2 NVIDIA GPU(s) ({gpu_node}) but none is visible here" in warning
    assert "CUDA_VISIBLE_DEVICES unset" in warning and "--gpus-per-node" in warning
    assert "--device cpu" in warning and "run on CPU" in warning


def test_no_warning_when_a_gpu_is_visible_the_device_chosen_or_the_node_has_none(
    tmp_path: Path, gpu_node
) -> None:
    assert hidden_gpus_warning("auto", 2, "node node1") is None
    assert hidden_gpus_warning("cpu", 0, "node node1") is None  # on CPU on purpose
    assert hidden_gpus_warning("auto", 0, "node node1", str(tmp_path / "no-driver")) is None


def test_a_slurm_node_that_sees_none_of_its_gpus_warns_at_start_and_beside_the_result(
    gpu_node, tmp_path: Path, monkeypatch, caplog
) -> None:
    """Rank 0's real entry with stand-ins for its scheduler, client and workers: the warning comes when the node
    starts and again after the driver, where the job log's reader looks for the result."""
    monkeypatch.setattr(slurm_node, "visible_gpu_count", lambda: 0)
    sleeper = [
        sys.executable,
        "-c",
        "import signal, sys; signal.signal(15, lambda *_: sys.exit(0)); signal.pause()",
    ]

    def start_scheduler(self: NodeLauncher) -> None:
        self.processes.spawn("scheduler", sleeper, {})
        self.incarnation.write(self.scheduler_file, {"address": "tcp://127.0.0.1:1"})

    def publish_workers(self: NodeLauncher) -> None:  # what start_workers tells rank 0, without workers
        self.paths.node_dir("node1").mkdir(parents=True, exist_ok=True)
        self.incarnation.write(self.paths.node_workers("node1"), {"workers": 1})

    def run_driver(scheduler_file: str, stop: StopRequest) -> int:
        logging.getLogger("driver").info("the run's result")
        return 0

    monkeypatch.setattr(NodeLauncher, "start_scheduler", start_scheduler)
    monkeypatch.setattr(NodeLauncher, "_connect", lambda self: object())
    monkeypatch.setattr(NodeLauncher, "wait_for_workers", lambda self, client, stop: None)
    monkeypatch.setattr(
        slurm_node, "retire_and_shut_down", lambda client, timeout: None
    )  # stopped with the node
    monkeypatch.setattr(NodeLauncher, "start_workers", publish_workers)
    caplog.set_level(logging.INFO)
    options = NodeOptions(job_root=str(tmp_path / "jobs"), poll_interval=0.01, heartbeat_interval=0.05)
    code = run_node(options, run_driver, identity=NODE1)
    assert code == 0
    messages = [record.getMessage() for record in caplog.records]
    warned = [i for i, message in enumerate(messages) if "has 2 NVIDIA GPU(s)" in message]
    result = messages.index("the run's result")
    assert len(warned) == 2 and warned[0] < result < warned[1], messages
    assert all(caplog.records[i].levelno == logging.WARNING for i in warned)
    assert "--gpus-per-node" in messages[warned[1]]


def test_a_local_cluster_on_such_a_machine_warns_too(gpu_node, monkeypatch, caplog) -> None:
    monkeypatch.setattr(local, "visible_gpu_count", lambda: 0)
    monkeypatch.setattr(local, "start_cpu_cluster", lambda *args, **kwargs: "cpu cluster")
    assert local.start_local_cluster() == "cpu cluster"
    assert "this machine has 2 NVIDIA GPU(s)" in caplog.text and "--gpus-per-node" in caplog.text
    caplog.clear()
    assert local.start_local_cluster(device="cpu") == "cpu cluster"
    assert "NVIDIA GPU(s)" not in caplog.text
