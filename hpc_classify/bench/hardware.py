"""The machine's measured matmul throughput: the ceiling the engine's FLOP rate is compared with."""

from __future__ import annotations

import time

import torch


def matmul_gflops(
    dtype: torch.dtype,
    *,
    size: int = 2048,
    repeats: int = 5,
    device: str = "cpu",
    max_seconds: float = 2.0,
) -> float:
    """Best GFLOP/s of a size x size matmul (2 * size^3 FLOPs) over up to `repeats` timed runs after a
    warm-up, stopping once `max_seconds` have passed (at least one run counts: the warm-up's, if it alone
    took that long), so a slow CPU bounds the time spent instead of the number of runs."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    return _best_gflops(lambda: torch.matmul(a, b), 2 * size**3, repeats, max_seconds, device)


def int8_linear_gflops(*, size: int = 2048, repeats: int = 5, max_seconds: float = 2.0) -> float:
    """GFLOP/s of the engine's int8 path: a size x size dynamically quantized Linear on [size, size] fp32
    activations (int8 GEMM, plus quantizing the activations and dequantizing the result, as in the engine)."""
    from hpc_classify.engine.precision import quantize_linear_layers

    layer = torch.nn.Sequential(torch.nn.Linear(size, size, bias=False))
    quantize_linear_layers(layer)
    x = torch.randn(size, size)
    with torch.inference_mode():
        return _best_gflops(lambda: layer(x), 2 * size**3, repeats, max_seconds, "cpu")


def _best_gflops(run, flops: int, repeats: int, max_seconds: float, device: str) -> float:
    best = float("inf")
    started = time.perf_counter()
    for attempt in range(repeats + 1):
        if device != "cpu":
            torch.cuda.synchronize()
        start = time.perf_counter()
        run()
        if device != "cpu":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        if attempt or seconds >= max_seconds:  # the first run warms up the kernels, unless it is all we get
            best = min(best, seconds)
        if time.perf_counter() - started >= max_seconds and best < float("inf"):
            break
    return flops / best / 1e9


def measure_peaks(precisions: list[str], *, size: int = 2048, max_seconds: float = 2.0) -> dict[str, float]:
    """The matmul peak (GFLOP/s) of each precision that runs natively here: fp32 always, bf16 only on a CPU
    with AVX-512 BF16 or AMX (an emulated bf16 matmul says nothing about the hardware and can take minutes),
    int8 through the dynamically quantized Linear the engine uses."""
    from hpc_classify.engine.precision import cpu_has_native_bf16

    peaks: dict[str, float] = {}
    for precision in precisions:
        if precision == "fp32":
            peaks["fp32"] = matmul_gflops(torch.float32, size=size, max_seconds=max_seconds)
        elif precision == "bf16" and cpu_has_native_bf16():
            peaks["bf16"] = matmul_gflops(torch.bfloat16, size=size, max_seconds=max_seconds)
        elif precision == "int8":
            peaks["int8"] = int8_linear_gflops(size=size, max_seconds=max_seconds)
    return peaks


class PeakProbes:
    """Each precision's peak probed several times in one run (before and after its engine runs); the highest
    reading is the peak. On a shared VM the speed drifts between minutes: one 2-second probe once read half the
    bf16 peak that the next run read (docs/attention.md), which put the engine at 95% of it."""

    def __init__(self, *, size: int, max_seconds: float) -> None:
        self._size, self._max_seconds = size, max_seconds
        self.readings: dict[str, list[float]] = {}

    def probe(self, precision: str) -> None:
        for name, gflops in measure_peaks(
            [precision], size=self._size, max_seconds=self._max_seconds
        ).items():
            self.readings.setdefault(name, []).append(gflops)

    def peaks(self) -> dict[str, float]:
        return {name: max(readings) for name, readings in self.readings.items()}


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


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where there is none: not Linux, a container without it)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def isa_features(flags: set[str] | None = None) -> dict[str, bool]:
    """Which matrix ISAs the CPU has: AVX2, AVX-512 (F), AVX-512 BF16, AVX-512 VNNI (int8 dot products), AMX."""
    flags = cpu_flags() if flags is None else flags
    return {
        "avx2": "avx2" in flags,
        "avx512": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "avx512_vnni": "avx512_vnni" in flags,
        "amx": bool({"amx_bf16", "amx_tile"} & flags),
    }


def cpu_isa(flags: set[str] | None = None) -> str:
    """The widest matrix ISA this CPU reports (AMX-BF16, AVX-512 BF16, AVX-512 without BF16, AVX2 only): figures
    differ by an order of magnitude between them, so every benchmark says which one it ran on."""
    flags = cpu_flags() if flags is None else flags
    if not flags:
        return "unknown ISA"
    for flag, name in (
        ("amx_bf16", "AMX-BF16"),
        ("avx512_bf16", "AVX-512 BF16"),
        ("avx512f", "AVX-512 (no BF16)"),
        ("avx2", "AVX2 only"),
    ):
        if flag in flags:
            return name
    return "no AVX2"
