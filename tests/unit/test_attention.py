"""The fast disentangled attention equals transformers' DeBERTa-v2 attention."""

from __future__ import annotations

import pytest
import torch
from transformers import DebertaV2Config, DebertaV2Model

from hpc_classify.engine.attention import (
    FastDisentangledSelfAttention,
    accelerate_attention,
    restore_attention,
)


def _backbone(seed: int = 0, **overrides) -> DebertaV2Model:
    settings = dict(
        vocab_size=300,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=512,
        relative_attention=True,
        position_buckets=256,
        max_relative_positions=-1,
        norm_rel_ebd="layer_norm",
        share_att_key=True,
        pos_att_type=["p2c", "c2p"],
        position_biased_input=False,
        type_vocab_size=0,
        layer_norm_eps=1e-7,
    )
    settings.update(overrides)
    torch.manual_seed(seed)
    return DebertaV2Model(DebertaV2Config(**settings)).eval()


def _inputs(rows: int, length: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    input_ids = torch.randint(5, 300, (rows, length), generator=generator)
    attention_mask = torch.ones(rows, length, dtype=torch.long)
    for row in range(1, rows):  # ragged batch: row r keeps a shrinking prefix, the rest is padding
        attention_mask[row, max(1, length - 37 * row) :] = 0
    return input_ids, attention_mask


def _both(
    model: DebertaV2Model, input_ids, attention_mask, kernel: str = "bias"
) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        restore_attention(model)
        original = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        accelerate_attention(model, kernel)
        fast = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    return original, fast


BACKBONE_VARIANTS = [
    {},  # DeBERTa-v3: shared keys, 256 log buckets
    {"share_att_key": False},  # separate pos_key_proj / pos_query_proj
    {"position_buckets": -1},  # no buckets: plain clamped relative positions
    {"position_buckets": 8},  # log buckets from distance 4 on
    {"position_buckets": 16, "max_relative_positions": 64},
]


# The eager CPU kernels: today's bias + SDPA, and the C++ one adding the position terms per tile.
CPU_KERNELS = ["bias", "tiled"]


@pytest.mark.parametrize("kernel", CPU_KERNELS)
@pytest.mark.parametrize("overrides", BACKBONE_VARIANTS)
@pytest.mark.parametrize("length", [1, 7, 160, 300])
def test_fp32_matches_the_original_including_padding(overrides: dict, length: int, kernel: str) -> None:
    model = _backbone(**overrides)
    original, fast = _both(model, *_inputs(3, length), kernel)
    torch.testing.assert_close(fast, original, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kernel", CPU_KERNELS)
@pytest.mark.parametrize("padding", ["right", "left"])
def test_documents_attended_in_chunks_match_on_real_tokens(
    monkeypatch: pytest.MonkeyPatch, padding: str, kernel: str
) -> None:
    """CPU chunks (here one document each) are cut to their longest document when the padding is on the
    right; padded positions' outputs are then unspecified (never read), real tokens' are exact."""
    from hpc_classify.engine import attention

    monkeypatch.setattr(attention, "CPU_CHUNK_BYTES", 1)
    model = _backbone()
    input_ids, attention_mask = _inputs(5, 120)
    if padding == "left":
        attention_mask = attention_mask.flip(-1)
    original, fast = _both(model, input_ids, attention_mask, kernel)
    real = attention_mask.bool()
    torch.testing.assert_close(fast[real], original[real], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(fast).all()


@pytest.mark.parametrize("kernel", CPU_KERNELS)
def test_bf16_stays_within_bf16_tolerance_of_fp32(kernel: str) -> None:
    model = _backbone()
    input_ids, attention_mask = _inputs(4, 200)
    with torch.inference_mode():
        exact = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    model.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        original, fast = _both(model, input_ids, attention_mask, kernel)
    mask = attention_mask.bool()
    error_fast = (fast.float() - exact)[mask].abs().max()
    error_original = (original.float() - exact)[mask].abs().max()
    assert error_fast < 0.1
    assert error_fast <= 2 * error_original


def test_install_is_idempotent_and_keeps_the_weights() -> None:
    model = _backbone()
    keys = list(model.state_dict())

    assert accelerate_attention(model) == 2
    assert accelerate_attention(model) == 0
    assert all(
        isinstance(layer.attention.self, FastDisentangledSelfAttention) for layer in model.encoder.layer
    )
    assert list(model.state_dict()) == keys
    assert restore_attention(model) == 2


def test_unusual_calls_fall_back_to_the_original() -> None:
    model = _backbone()
    input_ids, attention_mask = _inputs(2, 20)
    with torch.inference_mode():
        expected = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
        accelerate_attention(model)
        got = model(input_ids=input_ids, attention_mask=attention_mask, output_attentions=True)
    torch.testing.assert_close(got.last_hidden_state, expected.last_hidden_state)
    torch.testing.assert_close(got.attentions[0], expected.attentions[0])


def test_cached_position_projections_follow_weight_changes() -> None:
    reference = _backbone()
    model = _backbone()
    input_ids, attention_mask = _inputs(2, 50)
    accelerate_attention(model)
    with torch.inference_mode():
        model(input_ids=input_ids, attention_mask=attention_mask)  # fills the caches
    with torch.no_grad():
        for net in (reference, model):
            for layer in net.encoder.layer:
                layer.attention.self.key_proj.weight.mul_(1.5)
            net.encoder.rel_embeddings.weight.add_(0.25)
        expected = reference(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        got = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_no_attention_mask_outlives_the_engines_call(tiny_domain_model) -> None:
    """The per-forward mask layout lives on that forward's mask: after predict returns, no [B, 1, L, L] mask
    is held (a cache beside it kept the last one, hundreds of MB on a GPU, through out-of-memory retries).
    In a process of its own: other tests' leftovers would be counted too."""
    import subprocess
    import sys

    code = f"""
import gc, torch
from hpc_classify.engine import InferenceEngine
from hpc_classify.models.checkpoint import load_classifier_checkpoint
loaded = load_classifier_checkpoint({str(tiny_domain_model)!r})
engine = InferenceEngine(loaded.model, loaded.tokenizer, device="cpu", precision="fp32", max_chars=400, max_tokens=64)
engine.predict_proba(["a short one", "a longer document " * 20, "mid length text here"])
gc.collect()
print(sum(isinstance(o, torch.Tensor) and o.dim() == 4 and o.shape[1] == 1 and o.shape[2] == o.shape[3] > 1
          for o in gc.get_objects()))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[-1] == "0"
