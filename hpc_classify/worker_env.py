"""The environment of a Dask worker process: the one owner of what the cluster layer sets there (UCX's
settings, the worker's share of the cores for torch) and of the names the classifiers read back in the worker.

Standard library only: `cluster` writes these variables and `classifiers` reads them, and neither layer
imports the other."""

from __future__ import annotations

import os

# The worker's share of the cores for torch's intra-op pool (read by classifiers/worker_resources.py).
TORCH_THREADS_ENV = "HPC_CLASSIFY_TORCH_THREADS"
# UCX warns about every UCX_* variable it does not use; the defaults Dask sets trip this.
QUIET_UCX = {"UCX_WARN_UNUSED_ENV_VARS": "n"}
# distributed-ucxx starts UCXX in "blocking" progress mode unless UCXPY_PROGRESS_MODE is set, where every
# pending receive (Dask keeps one open per connection) polls the event loop without pause: each idle process
# took most of a core, and ucxx ran 5x slower than tcp on CPU nodes (docs/slurm.md). UCXX's thread mode waits
# in epoll instead. Its progress thread makes a CUDA context on device 0, so processes on GPU nodes keep
# distributed-ucxx's default. Only processes we spawn get it (workers, a node's scheduler): thread mode binds
# UCXX to the first event loop of a process, and a second cluster or client in one process (a notebook
# calling get_client twice) then failed ("Future attached to a different loop"); the driver's own process
# keeps the default.
UCX_CPU_PROGRESS = {"UCXPY_PROGRESS_MODE": "thread", "UCXPY_ENABLE_PYTHON_FUTURE": "1"}


def torch_threads(cores: int, workers: int) -> int:
    """Torch threads of each of `workers` worker processes that share `cores` cores (at least 1)."""
    return max(1, cores // max(1, workers))


def ucx_environment(*, gpus: bool) -> dict[str, str]:
    """The UCX settings of a scheduler, worker or client process, on a node with or without GPUs; a value
    the user set in this environment wins."""
    wanted = QUIET_UCX if gpus else {**QUIET_UCX, **UCX_CPU_PROGRESS}
    return {name: os.environ.get(name, value) for name, value in wanted.items()}


def cpu_worker_environment(cores: int, workers: int, *, gpus_on_node: bool = False) -> dict[str, str]:
    """What a CPU worker process needs in its environment (GPU workers: ucx_environment(gpus=True));
    `gpus_on_node`: CPU workers on a node with GPUs (--device cpu there)."""
    return {**ucx_environment(gpus=gpus_on_node), TORCH_THREADS_ENV: str(torch_threads(cores, workers))}


def quiet_ucx_here() -> None:
    """Quiet UCX in this process and its children (a client or a local cluster over ucxx), unless the
    user set the variable. (Its progress mode stays distributed-ucxx's: see UCX_CPU_PROGRESS.)"""
    for name, value in QUIET_UCX.items():
        os.environ.setdefault(name, value)
