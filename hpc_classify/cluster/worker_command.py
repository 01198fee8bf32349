"""The command line of one node's Dask workers in a Slurm job (started by slurm_node.py)."""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass

from hpc_classify.errors import ConfigError


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
    death_timeout: float  # Dask's: a worker without its scheduler this long exits; also each start's deadline
    interface: str | None = None
    local_directory: str | None = None
    rmm_pool_size: str | None = None
    enable_cudf_spill: bool = False


def refuse_gpu_worker_options(
    rmm_pool_size: str | None, enable_cudf_spill: bool, *, gpus: int, device: str, node_name: str
) -> None:
    """dask-cuda's own options on a node that starts CPU workers, where `worker_command` has no use for them:
    refused, naming them and the likely cause. Both are off unless given (no default turns them on)."""
    given = [
        flag
        for flag, value in (("--rmm-pool-size", rmm_pool_size), ("--enable-cudf-spill", enable_cudf_spill))
        if value
    ]
    if gpus or not given:
        return
    options = " and ".join(given)
    if device == "cpu":
        raise ConfigError(
            f"{options} given with --device cpu: node {node_name} starts CPU workers, and "
            f"{'these are' if len(given) > 1 else 'it is'} for dask-cuda's GPU workers only",
            hint=f"drop {options}, or drop --device cpu on GPU nodes",
        )
    raise ConfigError(
        f"{options} given, but no GPU is visible on node {node_name}: it starts CPU workers, and "
        f"{'these are' if len(given) > 1 else 'it is'} for dask-cuda's GPU workers only",
        hint="on a GPU partition ask Slurm for the GPUs (--gpus-per-node, on sbatch or `hpc-classify submit`; "
        f"#SBATCH --gpus-per-node in slurm/classify.sbatch); on CPU nodes drop {options}",
    )


def worker_command(spec: WorkerSpec) -> list[str]:
    """dask-cuda's worker (one per visible GPU, named <node>-<i>, or <node> with one GPU) or Dask's CPU
    worker (`spec.workers` processes named <node>-<i>), against the job's scheduler file. The launcher has
    refused dask-cuda's options on a CPU node already (refuse_gpu_worker_options)."""
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
