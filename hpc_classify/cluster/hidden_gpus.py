"""A GPU node whose GPUs this process cannot see: said loudly, since the run then goes on, on CPU.

On a GPU partition, a job that did not ask for GPUs (no `--gpus-per-node`) gets none: with Slurm's
ConstrainDevices its steps cannot open them, NVML counts 0, and `--device auto` starts CPU workers, some 50-100
times slower, without an error. The NVIDIA driver still lists the node's GPUs in procfs (one directory per GPU,
named by its PCI address; device rules do not hide procfs): GPUs listed there but none visible is that mistake,
or a CUDA_VISIBLE_DEVICES that hides them all. Standard library only; no GPU needed to test it (`proc_dir`).
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)

NVIDIA_PROC_GPUS = "/proc/driver/nvidia/gpus"


def installed_gpu_count(proc_dir: str | None = None) -> int:
    """The NVIDIA GPUs of this machine as its driver lists them (`proc_dir`, default NVIDIA_PROC_GPUS), usable
    by this process or not; 0 without the driver."""
    try:
        with os.scandir(proc_dir or NVIDIA_PROC_GPUS) as entries:
            return sum(1 for entry in entries if entry.is_dir())
    except OSError:
        return 0


def hidden_gpus_warning(device: str, visible: int, where: str, proc_dir: str | None = None) -> str | None:
    """The warning for `where` (a node, this machine) when `--device auto` found no visible GPU (`visible`) on a
    machine that has some; None otherwise (a GPU is visible, or --device chosen on purpose)."""
    if device != "auto" or visible:
        return None
    installed = installed_gpu_count(proc_dir)
    if not installed:
        return None
    hiding = os.environ.get("CUDA_VISIBLE_DEVICES")
    return (
        f"{where} has {installed} NVIDIA GPU(s) ({proc_dir or NVIDIA_PROC_GPUS}) but none is visible here "
        f"(CUDA_VISIBLE_DEVICES {'unset' if hiding is None else repr(hiding)}): the workers run on CPU, "
        "typically 50-100x slower. On Slurm a job sees only the GPUs it asks for: submit with --gpus-per-node=N "
        "(sbatch, or `hpc-classify submit --gpus-per-node N`); pass --device cpu to run on CPU on purpose"
    )


def warn_if_gpus_hidden(device: str, visible: int, where: str, proc_dir: str | None = None) -> str | None:
    """Log hidden_gpus_warning (if any) as a warning, and return it (to repeat it where it is read)."""
    warning = hidden_gpus_warning(device, visible, where, proc_dir)
    if warning:
        logger.warning("%s", warning)
    return warning
