"""Which DeBERTa attention kernel an engine runs: "bias", "tiled" or "flex" (no import-time effects).

- "bias": the relative-position bias built per chunk of documents over the 2L-1 offsets, then
  scaled-dot-product attention (attention.py eager; fused_attention.py when compiled).
- "tiled": CPU, eager: the scores from one matmul, the position terms added per tile of query rows with the
  mask and softmax in a C++ kernel built once per CPU kind (tiled_attention.py); no [B, H, L, L] bias. Asking
  for it is a ConfigError off CPU, with compile=True, or where the kernel cannot be built (no compiler).
- "flex": FlexAttention reading the bucket products per tile, no [B, H, L, L] bias (flex_attention.py).
  It is a compiled kernel, so it needs the backbone compiled: asking for it turns compile "auto" on, and
  is a ConfigError with compile=False or int8 (whose quantized layers are not compiled), and on CPU
  (`flex_unavailable_reason`: Inductor's CPU template cannot compile it there yet).
- "auto" (default): the kernel measured faster on this kind of device (MEASURED_FASTER, docs/attention.md).
  HPC_CLASSIFY_ATTENTION=flex|bias changes what auto means (a site-wide switch; explicit values win).

An engine whose compile falls back to eager (engine/compiled.py) runs "bias": `InferenceEngine.attention`
reports what actually runs.
"""

from __future__ import annotations

import logging
import os

import torch

from hpc_classify.errors import ConfigError

logger = logging.getLogger(__name__)

ATTENTION_ENV = "HPC_CLASSIFY_ATTENTION"
ATTENTIONS = ("auto", "bias", "flex", "tiled")
# The kernel measured faster per device type (docs/attention.md). CPU, torch 2.13: on AMD EPYC with AVX-512
# BF16, tiled (eager) was faster than the eager bias path in bf16 and as fast in fp32; on an AVX2-only EPYC
# (Zen 3) 1.06x in fp32 and 1.07x in int8: one choice for both ISAs (AMX not measured). Flex compiled was
# 1.0-1.3x slower than bias, and Inductor's CPU FlexAttention template does not compile with dynamic shapes
# there. CUDA: not measured yet (scripts/gpu_check.sh measures flex): bias until it is.
MEASURED_FASTER = {"cpu": "tiled", "cuda": "bias"}


def resolve_attention(
    attention: str, device: torch.device, compile: bool | str, precision: str
) -> tuple[str, bool | str]:
    """(kernel, compile setting to use): the kernel this engine's DeBERTa layers run, and `compile`,
    turned on where "flex" was asked for with compile "auto" (the module docstring gives the policy)."""
    if attention not in ATTENTIONS:
        raise ConfigError(
            f"attention must be one of {', '.join(ATTENTIONS)}, not {attention!r}",
            hint="auto picks the kernel measured faster on this device",
        )
    if attention == "auto":
        kernel = _auto_kernel(device)
        if kernel == "flex" and (compile is False or precision == "int8"):
            return "bias", compile  # auto never overrides an explicit compile=False (or int8)
        if kernel == "tiled" and compile is True:
            return "bias", compile  # a compiled graph traces the bias path: tiled is an eager kernel
        reason = _unavailable_reason(kernel, device)
        if reason:
            logger.warning("attention %s not used, bias instead: %s", kernel, reason)
            return "bias", compile
        return kernel, (True if kernel == "flex" else compile)
    if attention == "tiled":
        reason = _unavailable_reason("tiled", device)
        if reason:
            raise ConfigError(f"attention tiled cannot run: {reason}", hint="use attention auto or bias")
        if compile is True:
            raise ConfigError(
                "attention tiled is an eager CPU kernel, but compile is true",
                hint="use compile auto/false with attention tiled, or attention bias with compile",
            )
        return "tiled", compile
    if attention == "flex":
        reason = _unavailable_reason("flex", device)
        if reason:
            raise ConfigError(
                f"attention flex cannot run on {device.type}: {reason}", hint="use attention auto"
            )
        if precision == "int8":
            raise ConfigError(
                "attention flex with precision int8: the quantized Linear layers are not compiled",
                hint="use attention auto/bias with int8, or precision bf16/fp32 with flex",
            )
        if compile is False:
            raise ConfigError(
                "attention flex needs the compiled backbone (FlexAttention is a compiled kernel), "
                "but compile is false",
                hint="use compile auto/true with attention flex, or attention bias",
            )
        return "flex", True
    return "bias", compile


def attention_label(attention: str, dtype: torch.dtype) -> str:
    """`attention` (what an engine runs) as logs, markers and summaries name it: the tiled kernel says where it
    computes the position terms itself (bf16 on a CPU with AVX-512 BF16: tiled_attention.uses_fused)."""
    if attention == "tiled":
        from hpc_classify.engine.tiled_attention import uses_fused

        if uses_fused(dtype):
            return "tiled (fused position terms)"
    return attention


def _unavailable_reason(kernel: str, device: torch.device) -> str | None:
    if kernel == "flex":
        return flex_unavailable_reason(device)
    if kernel == "tiled":
        if device.type != "cpu":
            return f"it is a CPU kernel, and this engine runs on {device.type}"
        from hpc_classify.engine.tiled_attention import unavailable_reason

        return unavailable_reason()
    return None


def flex_unavailable_reason(device: torch.device) -> str | None:
    """Why the flex kernel cannot run compiled on `device` (None: it can). On CPU, torch 2.13's Inductor
    FlexAttention template refuses the score_mod's in-graph buffers (bucket index, mask: "No choices to
    select") and, given them precomputed, fails to compile its C++ with dynamic shapes; the engine's
    compile would spend minutes and then fall back to eager (measured, docs/attention.md)."""
    if device.type == "cpu":
        return "Inductor's CPU FlexAttention template cannot compile it with dynamic shapes (torch 2.13)"
    return None


def _auto_kernel(device: torch.device) -> str:
    setting = os.environ.get(ATTENTION_ENV, "").strip().lower()
    if setting in ("bias", "flex", "tiled"):
        return setting
    if setting and setting != "auto":
        logger.warning("%s=%r is none of %s: ignored", ATTENTION_ENV, setting, ", ".join(ATTENTIONS))
    return MEASURED_FASTER.get(device.type, "bias")
