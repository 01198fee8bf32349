"""Inference engine: texts -> model outputs (length-sorted token-budget batches, bf16, overlap).

Never imports dask.distributed or the cluster layer: it is driven by plain function calls."""

from hpc_classify.engine.attention import accelerate_attention, restore_attention
from hpc_classify.engine.batching import pad_batch, plan_batches
from hpc_classify.engine.device import (
    compute_dtype,
    configure_allocator,
    configure_threads,
    default_token_budget,
    is_out_of_memory,
    resolve_device,
)
from hpc_classify.engine.engine import InferenceEngine, predict_sharing_tokens, softmax
from hpc_classify.engine.precision import resolve_precision

__all__ = [
    "InferenceEngine",
    "accelerate_attention",
    "compute_dtype",
    "configure_allocator",
    "configure_threads",
    "default_token_budget",
    "is_out_of_memory",
    "pad_batch",
    "plan_batches",
    "predict_sharing_tokens",
    "resolve_device",
    "resolve_precision",
    "restore_attention",
    "softmax",
]
