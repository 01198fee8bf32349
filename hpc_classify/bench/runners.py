"""Timed runs of the three contenders on the same texts: HF pipeline, the engine, the engine via Dask."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from hpc_classify.engine import InferenceEngine

logger = logging.getLogger(__name__)

PARALLELISM = "TOKENIZERS_PARALLELISM"


@dataclass
class Timing:
    name: str
    seconds: float
    documents: int
    tokens: int
    detail: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "seconds": round(self.seconds, 3),
            "documents": self.documents,
            "tokens": self.tokens,
            "docs_per_s": round(self.documents / self.seconds, 3),
            "tokens_per_s": round(self.tokens / self.seconds, 1),
            **self.detail,
        }


@contextlib.contextmanager
def tokenizers_parallelism_kept() -> Iterator[None]:
    """transformers' pipeline sets TOKENIZERS_PARALLELISM=false for the whole process when it is unset,
    which would leave the engine measured after it tokenizing on one core: restore the variable."""
    previous = os.environ.get(PARALLELISM)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(PARALLELISM, None)
        else:
            os.environ[PARALLELISM] = previous


def time_pipeline(
    hf_model: Any,
    tokenizer: Any,
    texts: Sequence[str],
    tokens: int,
    batch_sizes: Sequence[int],
    max_tokens: int,
) -> list[Timing]:
    """The Hugging Face `pipeline("text-classification")` at each batch size (fp32, its default)."""
    from transformers import pipeline

    classify = pipeline("text-classification", model=hf_model, tokenizer=tokenizer, device="cpu")
    with tokenizers_parallelism_kept():
        classify(list(texts[:1]), truncation=True, max_length=max_tokens)  # warm-up
    timings = []
    for batch_size in batch_sizes:
        start = time.perf_counter()
        with tokenizers_parallelism_kept():
            classify(list(texts), batch_size=batch_size, truncation=True, max_length=max_tokens)
        seconds = time.perf_counter() - start
        timings.append(
            Timing(f"hf_pipeline_bs{batch_size}", seconds, len(texts), tokens, {"batch_size": batch_size})
        )
        logger.info("HF pipeline batch %d: %.1f s", batch_size, seconds)
    return timings


def time_engine(
    engine: InferenceEngine, texts: Sequence[str], tokens: int, name: str
) -> tuple[Timing, np.ndarray]:
    # Warm-up: allocator, position caches; for a compiled engine, its one graph (the first batch of a
    # worker pays it once, then every file after it runs compiled): reported apart as compile_seconds.
    engine.predict_proba(list(texts[:4]))
    start = time.perf_counter()
    probabilities = engine.predict_proba(list(texts))
    seconds = time.perf_counter() - start
    detail = {"precision": engine.precision, "token_budget": engine.token_budget, "compiled": engine.compiled}
    if engine.compiled:
        detail["compile_seconds"] = round(engine.compile_seconds, 1)
    logger.info("%s: %.1f s", name, seconds)
    return Timing(name, seconds, len(texts), tokens, detail), probabilities


def profile_engine(engine: InferenceEngine, texts: Sequence[str], top: int = 15) -> list[dict[str, Any]]:
    """Where the engine's time goes: the `top` operators by self CPU time (torch profiler)."""
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        engine.predict_proba(list(texts))
    events = sorted(profiler.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    return [
        {
            "op": e.key,
            "self_cpu_ms": round(e.self_cpu_time_total / 1000, 1),
            "share": round(e.self_cpu_time_total / total, 3),
            "calls": e.count,
        }
        for e in events[:top]
    ]
