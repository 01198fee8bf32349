"""The compiled path on CUDA (Inductor generates Triton kernels there): the same fused_attention trace as
on CPU, checked against the CPU's eager fp32 results."""

from __future__ import annotations

import numpy as np
import pytest

from hpc_classify.engine import InferenceEngine, compiled
from hpc_classify.models.checkpoint import load_classifier_checkpoint
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

pytestmark = pytest.mark.gpu


def _probabilities(model_dir, texts, **options):
    checkpoint = load_classifier_checkpoint(model_dir)
    engine = InferenceEngine(checkpoint.model, checkpoint.tokenizer, token_budget=2048, **options)
    return engine, engine.predict_proba(texts)


def test_compiled_cuda_matches_cpu_eager_with_one_graph(tiny_domain_model):
    texts, _ = synthetic_corpus(120, DOMAIN_LABELS, seed=13)
    texts = [text[: 12 + 17 * i] for i, text in enumerate(texts)]  # many lengths and batch sizes
    _, reference = _probabilities(tiny_domain_model, texts, device="cpu", precision="fp32", compile=False)
    before = compiled._graphs_compiled()
    engine, fp32 = _probabilities(tiny_domain_model, texts, device="cuda", precision="fp32", compile=True)
    assert engine.compiled, "fell back to eager on the GPU"
    assert 1 <= compiled._graphs_compiled() - before <= compiled.COMPILE_GRAPHS_BOUND
    assert np.abs(fp32 - reference).max() <= 1e-3  # TF32 may round the matmuls
    engine, fast = _probabilities(tiny_domain_model, texts, device="cuda", compile=True)
    assert engine.compiled and engine.precision in ("bf16", "fp16")
    assert (fast.argmax(1) == reference.argmax(1)).mean() >= 0.97
    assert np.abs(fast - reference).max() < 0.05
