"""The FlexAttention path (engine/flex_attention.py: bucket products, score_mod gather, block mask) equals
transformers' DeBERTa-v2 attention on real tokens.

FlexAttention called eagerly computes the same scores as its compiled kernel, materialised: the exact
reference of the math (buckets, shared index, scale, mask). The layers take the flex branch only while
traced, so these tests run that branch eagerly by making `torch.compiler.is_compiling()` true; the
compiled kernel itself is checked in tests/unit/test_compiled.py (CPU) and tests/gpu (CUDA)."""

from __future__ import annotations

import pytest
import torch
from test_attention import _backbone, _inputs
from transformers import DebertaV2Config, DebertaV2Model

from hpc_classify.engine.attention import accelerate_attention, restore_attention
from hpc_classify.models.tiny import BASE_SIZED_BACKBONE


@pytest.fixture
def traced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The layers' compiled branch, run eagerly (the relative-embedding cache is skipped as when traced)."""
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)


def _original_and_flex(model, input_ids, attention_mask) -> tuple[torch.Tensor, torch.Tensor]:
    with torch.inference_mode():
        restore_attention(model)
        original = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        accelerate_attention(model, kernel="flex")
        flex = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        restore_attention(model)
    return original, flex


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # DeBERTa-v3: shared keys, 256 log buckets
        {"share_att_key": False},  # separate pos_key_proj / pos_query_proj
        {"position_buckets": -1},  # no buckets: plain clamped relative positions
        {"position_buckets": 8},  # log buckets from distance 4 on
        {"position_buckets": 16, "max_relative_positions": 64},
    ],
)
@pytest.mark.parametrize("length", [1, 7, 160, 300])
def test_fp32_matches_the_original_on_real_tokens(traced, overrides: dict, length: int) -> None:
    model = _backbone(**overrides)
    input_ids, attention_mask = _inputs(3, length)
    original, flex = _original_and_flex(model, input_ids, attention_mask)
    real = attention_mask.bool()
    torch.testing.assert_close(flex[real], original[real], atol=1e-5, rtol=1e-5)
    assert torch.isfinite(flex).all()


def test_left_padding_and_a_base_sized_model(traced) -> None:
    """The block mask follows any mask (here left padding), on a DeBERTa-v3-base-sized random model."""
    config = {**BASE_SIZED_BACKBONE, "vocab_size": 300, "num_hidden_layers": 2}
    config.pop("model_type")
    torch.manual_seed(0)
    model = DebertaV2Model(DebertaV2Config(**config)).eval()
    input_ids, attention_mask = _inputs(3, 290)
    attention_mask = attention_mask.flip(-1)
    original, flex = _original_and_flex(model, input_ids, attention_mask)
    real = attention_mask.bool()
    torch.testing.assert_close(flex[real], original[real], atol=1e-5, rtol=1e-5)


def test_padding_does_not_change_real_rows(traced) -> None:
    """A document's outputs are the same alone and beside a longer one (padded to its length)."""
    model = _backbone()
    accelerate_attention(model, kernel="flex")
    input_ids, attention_mask = _inputs(2, 120)
    length = int(attention_mask[1].sum())
    with torch.inference_mode():
        together = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        alone = model(input_ids=input_ids[1:, :length]).last_hidden_state
    torch.testing.assert_close(together[1, :length], alone[0], atol=1e-5, rtol=1e-5)


def test_bf16_stays_within_bf16_tolerance_of_fp32(traced) -> None:
    model = _backbone()
    input_ids, attention_mask = _inputs(4, 200)
    with torch.inference_mode():
        exact = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    model.to(torch.bfloat16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        original, flex = _original_and_flex(model, input_ids, attention_mask)
    mask = attention_mask.bool()
    error_flex = (flex.float() - exact)[mask].abs().max()
    error_original = (original.float() - exact)[mask].abs().max()
    assert error_flex < 0.1
    assert error_flex <= 2 * error_original


def test_eager_calls_keep_the_bias_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Outside a compiled graph the flex kernel would materialise the scores: eager runs the bias path."""
    from hpc_classify.engine import attention

    def refuse(*args, **kwargs):
        raise AssertionError("flex attention called eagerly")

    monkeypatch.setattr(attention, "flex_disentangled_attention", refuse)
    model = _backbone()
    input_ids, attention_mask = _inputs(2, 40)
    original, _ = _original_and_flex(model, input_ids, attention_mask)  # restore -> original
    accelerate_attention(model, kernel="flex")
    with torch.inference_mode():
        fast = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    real = attention_mask.bool()
    torch.testing.assert_close(fast[real], original[real], atol=1e-5, rtol=1e-5)


def test_unknown_kernel_is_an_error() -> None:
    with pytest.raises(ValueError, match="'bias' or 'flex'"):
        accelerate_attention(_backbone(), kernel="flash")
