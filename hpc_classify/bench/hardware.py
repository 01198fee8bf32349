"""The machine's measured matmul throughput: the ceiling the engine's FLOP rate is compared with."""

from __future__ import annotations

import time

import torch


def matmul_gflops(dtype: torch.dtype, *, size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """Best-of-`repeats` GFLOP/s of a size x size matmul (2 * size^3 FLOPs)."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    best = float("inf")
    for attempt in range(repeats + 1):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        torch.matmul(a, b)
        if device != "cpu":
            torch.cuda.synchronize()
        if attempt:  # the first run warms up the kernels
            best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def describe_machine() -> dict[str, object]:
    import os
    import platform

    info: dict[str, object] = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            info["cpu"] = next(
                (line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), ""
            )
    except OSError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_isa() -> str:
    """The widest matrix ISA this CPU reports (AMX-BF16, AVX-512 BF16, AVX2 only): figures differ by an
    order of magnitude between them, so every benchmark says which one it ran on."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            flags = set(cpuinfo.read().split())
    except OSError:
        return "unknown ISA"
    for flag, name in (("amx_bf16", "AMX-BF16"), ("avx512_bf16", "AVX-512 BF16"), ("avx2", "AVX2 only")):
        if flag in flags:
            return name
    return "no AVX2"
