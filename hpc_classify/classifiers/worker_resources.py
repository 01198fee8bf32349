"""What a worker process may use: its share of the CPU cores for torch, and NeMo's `max_mem_gb` GPU cap."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from hpc_classify.worker_env import TORCH_THREADS_ENV  # set by the cluster layer in each worker

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def torch_threads_for_this_process() -> int:
    """Intra-op threads: the cluster layer sets the worker's share of cores in the environment; default all ours."""
    configured = os.environ.get(TORCH_THREADS_ENV)
    if configured:
        return max(1, int(configured))
    return max(1, len(os.sched_getaffinity(0)))


_LIMITS: dict[str, float] = {}  # device -> the fraction this process set last


def limit_gpu_memory(device: torch.device, max_mem_gb: float | None) -> None:
    """NeMo Curator's max_mem_gb: this process may use at most that much of the GPU (the engine's OOM
    split-and-retry then keeps batches under it)."""
    if max_mem_gb is None:
        return
    import torch

    total = torch.cuda.get_device_properties(device).total_memory
    fraction = min(1.0, max_mem_gb * 2**30 / total)
    if _LIMITS.get(str(device)) == fraction:
        return  # set already (a cached engine's classifier applies its cap at each use)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    _LIMITS[str(device)] = fraction
    logger.info("GPU memory of this process limited to %.1f GiB (%.0f%%)", max_mem_gb, fraction * 100)
