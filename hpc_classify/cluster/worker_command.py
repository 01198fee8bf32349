"""The command line of one node's Dask workers in a Slurm job (started by slurm_node.py)."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class WorkerSpec:
    """What the node's worker command is made of (the launcher's options, resolved for this node)."""

    node_name: str
    scheduler_file: str
    scheduler_address: str
    workers: int  # on this node: one per GPU, or `--workers-per-node` CPU worker processes
    gpus: int
    threads_per_worker: int
    protocol: str
    death_timeout: float
    interface: str | None = None
    local_directory: str | None = None
    rmm_pool_size: str | None = None
    enable_cudf_spill: bool = False


def worker_command(spec: WorkerSpec) -> list[str]:
    """dask-cuda's worker (one per visible GPU, named <node>-<i>, or <node> with one GPU) or Dask's CPU
    worker (`spec.workers` processes named <node>-<i>), against the job's scheduler file."""
    common = ["--scheduler-file", spec.scheduler_file, "--nthreads", str(spec.threads_per_worker)]
    common += ["--protocol", spec.protocol, "--death-timeout", str(spec.death_timeout)]
    if spec.interface:
        common += ["--interface", spec.interface]
    else:
        common += ["--host", address_towards(spec.scheduler_address)]
    if spec.local_directory:
        common += ["--local-directory", spec.local_directory]
    if spec.gpus:
        argv = [sys.executable, "-m", "dask", "cuda", "worker", *common, "--name", spec.node_name]
        if spec.rmm_pool_size:
            argv += ["--rmm-pool-size", spec.rmm_pool_size]
        if spec.enable_cudf_spill:
            argv.append("--enable-cudf-spill")
        return argv
    argv = [sys.executable, "-m", "distributed.cli.dask_worker", *common, "--no-dashboard"]
    name = f"{spec.node_name}-0" if spec.workers == 1 else spec.node_name
    return [*argv, "--nworkers", str(spec.workers), "--name", name]


def address_towards(scheduler_address: str) -> str:
    """The local IP of the route to the scheduler (no packet is sent: UDP connect only picks a route)."""
    host = scheduler_address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((host, 9))
        return probe.getsockname()[0]
