"""The FlexAttention kernel compiled on CUDA (Triton): the DeBERTa attention without the [B, H, L, L] bias,
checked against transformers' own attention (fp32, TF32 off) and the CPU's eager engine, with a bounded
number of graphs across lengths and batch sizes, and the engine saying that flex ran."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import DebertaV2Config, DebertaV2Model

from hpc_classify.engine import InferenceEngine, compiled
from hpc_classify.engine.attention import accelerate_attention, restore_attention
from hpc_classify.models.checkpoint import load_classifier_checkpoint
from hpc_classify.models.tiny import BASE_SIZED_BACKBONE, DOMAIN_LABELS, synthetic_corpus

pytestmark = pytest.mark.gpu


@pytest.fixture(autouse=True)
def no_tf32(monkeypatch):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)


def _probabilities(model_dir, texts, **options):
    checkpoint = load_classifier_checkpoint(model_dir)
    engine = InferenceEngine(checkpoint.model, checkpoint.tokenizer, token_budget=2048, **options)
    return engine, engine.predict_proba(texts)


def test_flex_engine_matches_cpu_eager_with_bounded_graphs(tiny_domain_model):
    texts, _ = synthetic_corpus(120, DOMAIN_LABELS, seed=13)
    texts = [text[: 12 + 17 * i] for i, text in enumerate(texts)]  # many lengths and batch sizes
    _, reference = _probabilities(tiny_domain_model, texts, device="cpu", precision="fp32", compile=False)
    before = compiled._graphs_compiled()
    engine, fp32 = _probabilities(tiny_domain_model, texts, device="cuda", precision="fp32", attention="flex")
    assert engine.attention == "flex", "fell back to eager (bias) on the GPU"
    assert 1 <= compiled._graphs_compiled() - before <= compiled.COMPILE_GRAPHS_BOUND
    assert np.abs(fp32 - reference).max() <= 1e-4
    engine, fast = _probabilities(tiny_domain_model, texts, device="cuda", attention="flex")
    assert engine.attention == "flex" and engine.precision in ("bf16", "fp16")
    assert (fast.argmax(1) == reference.argmax(1)).mean() >= 0.97
    assert np.abs(fast - reference).max() < 0.05


def test_flex_layers_match_transformers_on_a_base_sized_model():
    """Hidden states of a DeBERTa-v3-base-sized random model (2 layers), ragged right padding: the compiled
    flex layers against transformers' attention, fp32 on the GPU, real tokens only."""
    config = {**BASE_SIZED_BACKBONE, "vocab_size": 1000, "num_hidden_layers": 2}
    config.pop("model_type")
    torch.manual_seed(0)
    model = DebertaV2Model(DebertaV2Config(**config)).eval().cuda()
    generator = torch.Generator().manual_seed(1)
    input_ids = torch.randint(5, 1000, (4, 300), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    for row in range(1, 4):
        attention_mask[row, 300 - 70 * row :] = 0
    input_ids, attention_mask = input_ids.cuda(), attention_mask.cuda()
    with torch.inference_mode():
        expected = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        accelerate_attention(model, kernel="flex")
        got = torch.compile(model, dynamic=True)(input_ids=input_ids, attention_mask=attention_mask)
        restore_attention(model)
    real = attention_mask.bool()
    torch.testing.assert_close(got.last_hidden_state[real], expected[real], atol=1e-4, rtol=1e-4)
