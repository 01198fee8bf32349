"""Agreement of each precision with fp32 on a *trained* tiny classifier.

The throughput runs use a base-sized backbone with random weights: its outputs are nearly uniform, so its argmax
flips on rounding noise and says nothing about a real model. A tiny DeBERTa-v2 trained on topic texts (seconds
on one thread) has confident, separated classes like a real classifier: its agreement is the figure to report."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

AGREEMENT_MAX_CHARS = 2000
AGREEMENT_MAX_TOKENS = 512


def precision_agreement(precisions: Sequence[str], *, documents: int = 300, seed: int = 0) -> dict[str, Any]:
    """Per precision: argmax agreement with fp32 and the largest probability difference, on `documents`
    held-out texts of a tiny domain classifier trained here (in a temporary directory)."""
    from hpc_classify.engine import InferenceEngine
    from hpc_classify.models.checkpoint import load_classifier_checkpoint
    from hpc_classify.models.tiny import DOMAIN_LABELS, build_tiny_checkpoint, synthetic_corpus

    texts, _ = synthetic_corpus(documents, DOMAIN_LABELS, seed=seed + 1000)  # not the training texts
    probabilities: dict[str, np.ndarray] = {}
    with tempfile.TemporaryDirectory(prefix="hpc-bench-tiny-") as tmp:
        model_dir = build_tiny_checkpoint(f"{tmp}/model", DOMAIN_LABELS, seed=seed)
        for precision in dict.fromkeys(["fp32", *precisions]):
            loaded = load_classifier_checkpoint(str(model_dir))
            engine = InferenceEngine(
                loaded.model,
                loaded.tokenizer,
                device="cpu",
                precision=precision,
                compile=False,  # the eager path's agreement; the compiled one's is in the timings
                max_chars=AGREEMENT_MAX_CHARS,
                max_tokens=AGREEMENT_MAX_TOKENS,
            )
            probabilities[precision] = engine.predict_proba(texts)
    exact = probabilities["fp32"]
    result = {"model": "tiny DeBERTa-v2 (2 layers, hidden 64), trained", "documents": len(texts)}
    for precision in precisions:
        result[precision] = {
            "argmax_agreement_with_fp32": float(
                (probabilities[precision].argmax(1) == exact.argmax(1)).mean()
            ),
            "max_abs_probability_difference_vs_fp32": float(np.abs(probabilities[precision] - exact).max()),
        }
    logger.info("agreement with fp32 on the trained tiny model: %s", result)
    return result
