"""The engine on CUDA: exact fp32 against the CPU, bf16 and fp16 against fp32, and the out-of-memory
split-and-retry under a real, deliberately tiny GPU memory cap."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hpc_classify import DomainClassifier
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def texts():
    return synthetic_corpus(300, DOMAIN_LABELS, seed=23)[0]


@pytest.fixture(autouse=True)
def fresh_engine_cache(monkeypatch):
    """Engines are cached per process by the precision asked for ("auto"), not the one it resolved to."""
    from hpc_classify.classifiers import runtime

    monkeypatch.setattr(runtime, "_MODELS", {})


def probabilities(model, texts, **kwargs):
    engine, _ = DomainClassifier(model=str(model), **kwargs).engine()
    return engine.predict_proba(texts), engine


def test_engine_fp32_on_cuda_equals_the_cpu_without_tf32(tiny_domain_model, texts, monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    cpu, _ = probabilities(tiny_domain_model, texts, device="cpu", precision="fp32")
    gpu, _ = probabilities(tiny_domain_model, texts, device="cuda", precision="fp32")
    assert np.abs(cpu - gpu).max() <= 1e-5


@pytest.mark.parametrize("bf16_supported", [True, False], ids=["bf16", "fp16"])
def test_engine_half_precision_on_cuda_agrees_with_fp32(
    tiny_domain_model, texts, monkeypatch, bf16_supported
):
    exact, _ = probabilities(tiny_domain_model, texts, device="cpu", precision="fp32")
    # fp16 is what `auto` picks on a GPU without bf16 (V100, T4): take that code path on this GPU.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_supported)
    fast, engine = probabilities(tiny_domain_model, texts, device="cuda", precision="auto")
    assert engine.precision == ("bf16" if bf16_supported else "fp16")
    assert np.isfinite(fast).all()
    assert (exact.argmax(1) == fast.argmax(1)).mean() >= 0.99
    assert np.abs(exact - fast).max() <= 0.05


def test_precision_fp16_runs_fp16_on_a_gpu_with_bf16_too(tiny_domain_model, texts):
    """NeMo Curator's torch.autocast("cuda"): fp16 whatever the GPU, when asked for."""
    exact, _ = probabilities(tiny_domain_model, texts, device="cpu", precision="fp32")
    fast, engine = probabilities(tiny_domain_model, texts, device="cuda", precision="fp16")
    assert engine.precision == "fp16" and engine.dtype == torch.float16
    assert np.isfinite(fast).all()
    assert (exact.argmax(1) == fast.argmax(1)).mean() >= 0.99
    assert np.abs(exact - fast).max() <= 0.05


def test_out_of_memory_splits_the_batch_and_lowers_the_budget(caplog):
    """A base-sized model under a GPU memory cap a full-budget batch cannot fit in: the engine must split,
    retry, lower its budget, and give the same outputs as an uncapped run with small batches."""
    from hpc_classify.bench.corpus import synthetic_documents, tokenizer_training_text, train_tokenizer
    from hpc_classify.bench.model import build_base_sized_classifier
    from hpc_classify.engine import InferenceEngine

    documents = synthetic_documents(96, seed=5)
    tokenizer = train_tokenizer(tokenizer_training_text(seed=5, words=60_000))
    options = {"device": "cuda", "precision": "fp32", "max_chars": 4000, "max_tokens": 512}
    reference = InferenceEngine(
        build_base_sized_classifier(26, seed=3), tokenizer, token_budget=2048, **options
    )
    expected = reference.predict_proba(documents)
    del reference
    torch.cuda.empty_cache()

    engine = InferenceEngine(
        build_base_sized_classifier(26, seed=3), tokenizer, token_budget=65536, **options
    )
    engine.predict_proba(documents[:1])
    total = torch.cuda.get_device_properties(0).total_memory
    # Room for the weights plus 600 MiB: a [B, 12, L, L] fp32 bias for 65,536 tokens needs several GiB.
    cap = (torch.cuda.memory_allocated() + 600 * 2**20) / total
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(cap)
    try:
        with caplog.at_level(logging.WARNING, logger="hpc_classify.engine.engine"):
            got = engine.predict_proba(documents)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert engine.token_budget < 65536
    assert any("ran out of memory" in record.getMessage() for record in caplog.records)
    assert got.shape == expected.shape
    assert np.abs(got - expected).max() <= 1e-4
