"""The environment of a Dask worker process: the one owner of what the cluster layer sets there (quiet UCX,
the worker's share of the cores for torch) and of the names the classifiers read back in the worker.

Standard library only: `cluster` writes these variables and `classifiers` reads them, and neither layer
imports the other."""

from __future__ import annotations

import os

# The worker's share of the cores for torch's intra-op pool (read by classifiers/worker_resources.py).
TORCH_THREADS_ENV = "HPC_CLASSIFY_TORCH_THREADS"
# UCX warns about every UCX_* variable it does not use; the defaults Dask sets trip this.
QUIET_UCX = {"UCX_WARN_UNUSED_ENV_VARS": "n"}


def torch_threads(cores: int, workers: int) -> int:
    """Torch threads of each of `workers` worker processes that share `cores` cores (at least 1)."""
    return max(1, cores // max(1, workers))


def cpu_worker_environment(cores: int, workers: int) -> dict[str, str]:
    """What a CPU worker process needs in its environment (GPU workers: QUIET_UCX only)."""
    return {**QUIET_UCX, TORCH_THREADS_ENV: str(torch_threads(cores, workers))}


def quiet_ucx_here() -> None:
    """Quiet UCX in this process and its children (a client or a local cluster over ucxx), unless the
    user set the variable."""
    for name, value in QUIET_UCX.items():
        os.environ.setdefault(name, value)
