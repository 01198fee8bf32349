"""The compiled forward pass: torch.compile (Inductor) of the backbone, with an eager fallback.

Why: the non-GEMM work (the relative-position bias built from c2p/p2c, its mask, the casts and head
transposes around every projection, GELU, residual adds, LayerNorm) and the memory copies between them
cost a share of every forward pass. Inductor fuses them into a few generated C++ loops (Triton kernels on
GPU); the matrix products and the attention kernel stay library calls.

Measured (docs/performance.md, "Compiled path"; `hpc-classify bench` times both paths): on 2 dedicated cores
of an AVX-512 BF16 EPYC the eager path is as fast or faster (compiled 0.7-0.93x in bf16, 0.9x in fp32),
because it already runs attention in cache-sized chunks of documents, which a graph over the whole batch
cannot; on the same cores shared with other processes (load 3-4) the compiled path was 1.0-2.3x faster
(fewer parallel regions to synchronise across preempted threads). Hence:

`compile` is "auto" | True | False (resolved once per engine, i.e. once per worker process):
- True: compile, or a ConfigError where it cannot take effect (int8's quantized Linear layers).
- False: the eager path (FastDisentangledSelfAttention).
- "auto": eager, until a device is measured faster compiled (none is yet: CPU above; GPU not measured).
  The environment variable HPC_CLASSIFY_COMPILE=on|off changes what auto means (a site-wide switch, e.g.
  for oversubscribed nodes; explicit True/False still win); int8 stays eager.

Compile time is paid in the first batches of each process (tens of seconds on 2 cores for a base-sized
model) and then amortised over every later file the worker classifies. Shapes are dynamic: one graph
serves every batch of >= 2 documents and >= 3 tokens, whatever the lengths. Smaller batches (a single
long document, empty documents' 2 tokens) run eager, because dynamo would compile a graph of its own for
a size of 1 and for the length where 2L - 2 == L; they are rare (the token budget packs several
documents per batch) and cost less eager than a compile. So a worker compiles one graph per model;
`COMPILE_GRAPHS_BOUND` is what the tests check. Where compiling is impossible (no
C++ compiler, Triton missing, Python unsupported) or fails at the first call (a compiler error), one
warning names the reason and the engine runs eager from then on: the same numbers as compile=False.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

import torch
from torch import nn

from hpc_classify.config import check_compile

logger = logging.getLogger(__name__)

COMPILE_ENV = "HPC_CLASSIFY_COMPILE"
# Graphs per compiled module: one (batches of >= MIN_ROWS x MIN_TOKENS), plus room for a variant dynamo
# might still split off. Well under dynamo's own recompile limit (8), past which it would run eager.
COMPILE_GRAPHS_BOUND = 2
MIN_ROWS = 2  # dynamo specialises a size of 1: single documents run eager
MIN_TOKENS = 3  # at L = 2, 2L - 2 == L specialises fused_attention's skew: run eager
_TRUE = ("1", "on", "true", "yes")
_FALSE = ("0", "off", "false", "no")


def resolve_compile(compile: Any, device: torch.device, precision: str) -> bool:
    """Whether this engine compiles its model (the module docstring gives the policy)."""
    # The classifiers' options were checked already; an InferenceEngine built directly (bench, users) was not.
    check_compile(compile, precision)
    if compile is True:
        return True
    if compile is False:
        return False
    setting = os.environ.get(COMPILE_ENV, "").strip().lower()
    if setting in _FALSE:
        return False
    if setting and setting not in _TRUE:
        logger.warning("%s=%r is neither on nor off: ignored", COMPILE_ENV, setting)
    if precision == "int8":
        return False
    return setting in _TRUE  # no device measured faster compiled yet (module docstring)


def unavailable_reason(device: torch.device) -> str | None:
    """Why torch.compile cannot work in this process (None: it can): checked before the first call, so
    the fallback is decided once instead of failing in every worker's first batch."""
    import torch._dynamo

    if not torch._dynamo.is_dynamo_supported():
        return "torch.compile does not support this Python version"
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        return None if has_triton() else "Triton is not installed (Inductor needs it on GPU)"
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler

        get_cpp_compiler()
    except Exception as error:  # which compiler, and how it is missing, varies by platform and version
        return f"no C++ compiler for Inductor ({error})"
    return None


class CompiledModule:
    """Calls `module` through torch.compile; on the first failure that eager does not share, logs one
    warning and calls `module` eagerly from then on. Keeps how long the compiling calls took."""

    def __init__(self, module: nn.Module, device: torch.device):
        self.module = module
        self.compiled: Any = None
        self.fallback_reason = unavailable_reason(device)
        self.compile_seconds = 0.0  # wall time of the calls that compiled a graph (first batches)
        self.graphs = 0  # graphs compiled for this module
        if self.fallback_reason is None:
            self.compiled = torch.compile(module, dynamic=True)
        else:
            logger.warning("torch.compile unavailable, running eager: %s", self.fallback_reason)

    @property
    def active(self) -> bool:
        return self.compiled is not None

    def __call__(self, **inputs: torch.Tensor) -> Any:
        rows, tokens = inputs["input_ids"].shape[:2]
        if self.compiled is None or rows < MIN_ROWS or tokens < MIN_TOKENS:
            return self.module(**inputs)
        graphs_before = _graphs_compiled()
        start = time.perf_counter()
        try:
            output = self.compiled(**inputs)
        except Exception as error:
            failure = _describe(error)
        else:
            failure = None
        if failure is not None:
            # Eager decides, outside the except block (its traceback would pin the failed call's memory):
            # if eager fails too, the input or the memory is at fault and its error propagates (the
            # caller handles it, e.g. out-of-memory splitting); if not, the compiler is, and compiling
            # stops here for this module.
            output = self.module(**inputs)
            self.fallback_reason, self.compiled = failure, None
            logger.warning("torch.compile failed, running eager from now on: %s", failure)
            return output
        added = _graphs_compiled() - graphs_before
        if added > 0:
            self.graphs += added
            self.compile_seconds += time.perf_counter() - start
            logger.info(
                "compiled %s: graph %d for input shapes %s (%.1f s)",
                type(self.module).__name__,
                self.graphs,
                [tuple(t.shape) for t in inputs.values()],
                time.perf_counter() - start,
            )
        return output


def _describe(error: Exception) -> str:
    """The error's type and first line (compiler errors carry pages of generated code after it)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text.splitlines()[0][:300] if text else ''}"


def _graphs_compiled() -> int:
    """Graphs compiled so far in this process (dynamo's own counter)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])
