"""Device, precision, thread and memory decisions for the inference engine (no import-time effects)."""

from __future__ import annotations

import ctypes
import logging
import os
import sys

import torch

from hpc_classify.engine.precision import precision_dtype, resolve_precision
from hpc_classify.errors import ConfigError

logger = logging.getLogger(__name__)

# Padded tokens per batch. CPU: past a few thousand tokens the dense layers are already at the matmul
# peak and bigger batches only add padding; GPU: large enough to fill the device, scaled by its memory.
CPU_TOKEN_BUDGET = 4096
MIN_TOKEN_BUDGET = 64


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' -> the first CUDA device when one is visible, else the CPU; 'cuda' without a GPU is an error."""
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} was asked for but no CUDA GPU is visible",
                hint="use --device cpu (or auto), or run where a GPU is allocated (--gres=gpu:N)",
            )
        return torch.device(name)
    if name == "cpu":
        return torch.device("cpu")
    raise ConfigError(f"device must be 'auto', 'cpu' or 'cuda[:N]', not {name!r}")


def configure_threads(num_threads: int | None = None) -> int:
    """Let torch use `num_threads` intra-op threads (default: the cores this process may run on).

    Call it with the worker's share of the node (e.g. a Dask worker's nthreads) so that several
    workers on one node do not oversubscribe the cores."""
    if num_threads is None:
        num_threads = (
            len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        )
    if num_threads < 1:
        raise ConfigError(f"the number of threads must be >= 1, not {num_threads}")
    if torch.get_num_threads() != num_threads:
        torch.set_num_threads(num_threads)
        logger.debug("torch intra-op threads set to %d", num_threads)
    return num_threads


# glibc mallopt parameters (malloc.h) and the largest mmap threshold glibc accepts on 64-bit.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 2**20
_TRIM_THRESHOLD = 256 * 2**20


def configure_allocator() -> bool:
    """Let glibc keep freed blocks of up to 32 MiB in the heap for reuse (Linux/glibc only).

    A Dask nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap threshold
    at 128 KiB: every activation tensor is then mmapped and page-faulted afresh, about 10x the page
    faults and ~15% more CPU time per forward pass here. Returns whether the settings were applied."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        applied = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
        applied = libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and applied
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return False
    return applied


def compute_dtype(device: torch.device, autocast: bool, precision: str = "auto") -> torch.dtype:
    """The dtype the backbone runs in (see `hpc_classify.engine.precision`): bf16 where the hardware does it
    natively, fp16 on older GPUs, fp32 when autocast is off (exact), for int8 (its non-quantized parts) or
    where the CPU would only emulate bf16 (slower than fp32)."""
    return precision_dtype(resolve_precision(device, precision, autocast))


def default_token_budget(device: torch.device) -> int:
    if device.type != "cuda":
        return CPU_TOKEN_BUDGET
    total_gib = torch.cuda.get_device_properties(device).total_memory / 2**30
    if total_gib >= 40:
        return 65536
    if total_gib >= 16:
        return 32768
    return 16384


def is_out_of_memory(error: BaseException) -> bool:
    if isinstance(error, torch.OutOfMemoryError):
        return True
    return isinstance(error, RuntimeError) and "out of memory" in str(error).lower()


def release_cached_memory(device: torch.device) -> None:
    """After an out-of-memory error: hand the failed batch's blocks back before retrying smaller."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
