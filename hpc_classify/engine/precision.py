"""The precision policy: which number format the backbone's matrix products run in (no import-time effects).

`precision` is what the user asks for, resolved here against the device this process runs on:

- "auto" (default): bf16 on GPUs that have it, fp16 on older GPUs; on a CPU, bf16 where the CPU has it
  natively (AVX-512 BF16 or AMX), fp32 elsewhere (an AVX2-only CPU only emulates bf16: slower than fp32).
- "fp32": exact (the same as `autocast=False`).
- "bf16": bf16 even where the CPU only emulates it (allowed, with a warning: it is slow); an error on a GPU
  without bf16.
- "fp16": fp16 on any GPU, as NeMo Curator's `torch.autocast("cuda")` (for outputs closest to NeMo's); an
  error on a CPU (no fast fp16 there).
- "int8": the backbone's Linear layers quantized dynamically to int8 (weights per tensor, activations per
  batch), everything else fp32; CPU only. Not exact: the benchmark reports its argmax agreement with fp32.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Collection

import torch
from torch import nn

from hpc_classify.config import check_precision
from hpc_classify.errors import ConfigError

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16, "int8": torch.float32}


def resolve_precision(device: torch.device, precision: str = "auto", autocast: bool = True) -> str:
    """The precision this process runs in: "fp32", "bf16", "fp16" or "int8" (see the module docstring)."""
    check_precision(precision, autocast)
    if not autocast or precision == "fp32":
        return "fp32"
    if device.type == "cuda":
        return _resolve_on_gpu(precision)
    if precision == "int8":
        return "int8"
    if precision == "fp16":
        raise ConfigError(
            "precision fp16 runs on GPUs only (NeMo Curator's autocast), but this worker has none",
            hint="use --precision auto (bf16 where the CPU has it, else fp32), bf16 or int8 on CPU",
        )
    native = cpu_has_native_bf16()
    if precision == "bf16":
        if not native:
            logger.warning(
                "precision bf16 asked for on a CPU without native bf16 (no AVX-512 BF16 or AMX): "
                "torch emulates it, which is several times slower than fp32; use --precision auto or int8"
            )
        return "bf16"
    if not native:
        logger.info("no native bf16 on this CPU: running in fp32 (int8 is the faster opt-in)")
    return "bf16" if native else "fp32"


def _resolve_on_gpu(precision: str) -> str:
    if precision == "int8":
        raise ConfigError(
            "precision int8 (dynamically quantized Linear layers) runs on CPU only, but this worker has a GPU",
            hint="use --precision auto (bf16, or fp16 on older GPUs) on GPU nodes, or --device cpu",
        )
    if precision == "fp16":
        return "fp16"
    bf16 = gpu_has_native_bf16()
    if precision == "bf16" and not bf16:
        raise ConfigError(
            f"precision bf16 asked for, but {torch.cuda.get_device_name()} has no bf16",
            hint="use --precision auto (fp16 on this GPU) or fp32",
        )
    return "bf16" if bf16 else "fp16"


def gpu_has_native_bf16() -> bool:
    """Whether this process's GPU does bf16 natively (compute capability 8.0 and later, ROCm). Not torch's
    default answer: `is_bf16_supported()` also says yes where a bf16 tensor can merely be made, as on a V100 or
    T4, which emulate bf16 slowly; "auto" picks fp16 there."""
    try:
        return bool(torch.cuda.is_bf16_supported(including_emulation=False))
    except TypeError:  # a torch without the keyword
        return bool(torch.version.hip) or torch.cuda.get_device_capability()[0] >= 8


def precision_dtype(resolved: str) -> torch.dtype:
    """The dtype of activations and (non-quantized) Linear weights for a resolved precision."""
    return DTYPES[resolved]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bf16 dot-product instructions (AVX-512 BF16 or AMX), so bf16 matmuls beat fp32.

    Not the same question as `onednn_reorders_bf16`: oneDNN also runs bf16 on AVX-512 CPUs without BF16
    (Skylake-X, Ice Lake) by emulating the products with fp32 units, which cannot beat fp32 (no such CPU was
    available to measure); "auto" stays fp32 there."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):
        return False


def onednn_reorders_bf16() -> bool:
    """Whether oneDNN can run (and pack weights for) bf16 matmuls on this CPU at all, natively or by conversion:
    AVX-512 (BW, VL, DQ) or AVX-NE-CONVERT. On an AVX2-only CPU its bf16 weight reorder raises."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def quantize_linear_layers(model: nn.Module, keep: Collection[nn.Module] = ()) -> int:
    """Replace every `nn.Linear` of `model` except those in `keep` (the classification head: near-tied logits should
    not be decided by int8 rounding) by a dynamically quantized int8 one, in place; returns how many.

    Weights are quantized once (per tensor, symmetric), activations per call; bias and output are fp32."""
    from torch.ao.quantization import default_dynamic_qconfig, quantize_dynamic

    names = {
        name: default_dynamic_qconfig
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and not any(module is kept for kept in keep)
    }
    if not names:
        return 0
    with warnings.catch_warnings():
        # torch 2.13 flags its quantized tensor types as deprecated (torchao is their successor); until
        # they go, this is the int8 path that needs no extra package. Once per model load, not per file.
        warnings.filterwarnings("ignore", message=r".*quantize_per_tensor.*deprecated", category=UserWarning)
        quantize_dynamic(model, qconfig_spec=names, dtype=torch.qint8, inplace=True)
    logger.debug("%d Linear layers quantized to int8 (dynamic)", len(names))
    return len(names)
