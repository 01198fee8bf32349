"""bf16 Linear layers packed once for oneDNN (engine/packed_linear.py): the same products, GELU fused."""

from __future__ import annotations

import pytest
import torch
from test_attention import _backbone, _inputs
from torch import nn
from torch.nn import functional as F

from hpc_classify.engine import packed_linear
from hpc_classify.engine.packed_linear import PackedLinear, pack_linear_layers
from hpc_classify.engine.precision import onednn_reorders_bf16

# oneDNN reorders bf16 weights only with AVX-512 (or AVX-NE-CONVERT); an AVX2-only CPU raises.
needs_bf16_reorder = pytest.mark.skipif(
    not onednn_reorders_bf16(), reason="oneDNN cannot reorder bf16 weights on this CPU (AVX2 only)"
)


def _linear(inputs: int, outputs: int, seed: int = 0) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(inputs, outputs).to(torch.bfloat16).eval()


def _assert_bf16_close(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Within bf16 rounding of the output (8 significant bits) of an fp32 computation."""
    assert actual.dtype == torch.bfloat16
    error = (actual.float() - expected).abs()
    assert (error <= 2**-7 * expected.abs() + 1e-2).all(), error.max()


@needs_bf16_reorder
@pytest.mark.parametrize("activation", ["none", "gelu"])
def test_packed_equals_the_linear_layer_in_bf16(activation: str) -> None:
    linear = _linear(96, 160)
    packed = PackedLinear(linear, activation)

    def expected(x: torch.Tensor) -> torch.Tensor:
        weight, bias = linear.weight.float(), linear.bias.float()
        out = F.linear(x.to(torch.bfloat16).float(), weight, bias)
        return F.gelu(out) if activation == "gelu" else out

    dense = torch.randn(3, 37, 96)  # fp32 in, as the residual stream: cast to bf16 like autocast does
    strided = torch.randn(37, 3, 96).transpose(0, 1)  # any layout in, dense product out
    with torch.inference_mode():
        for x in (dense, strided):
            out = packed(x)
            assert out.shape == (3, 37, 160)
            _assert_bf16_close(out, expected(x))


@needs_bf16_reorder
def test_a_weight_changed_in_place_is_packed_again() -> None:
    linear = _linear(64, 64)
    packed = PackedLinear(linear)
    x = torch.randn(5, 64)
    with torch.inference_mode():
        before = packed(x)
        linear.weight.mul_(-1)  # the same tensor, a new version
        after = packed(x)
    _assert_bf16_close(after, -(before.float() - linear.bias.float()) + linear.bias.float())


@needs_bf16_reorder
def test_a_deberta_backbone_keeps_its_weights_keys_and_outputs() -> None:
    model = _backbone().to(torch.bfloat16)
    keys = list(model.state_dict())
    input_ids, attention_mask = _inputs(3, 90)
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        plain = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        # 2 layers: Q, K, V, attention output, FFN in (with its GELU), FFN out
        assert pack_linear_layers(model) == 2 * 6
        packed = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    assert list(model.state_dict()) == keys
    intermediate = model.encoder.layer[0].intermediate
    assert intermediate.dense.activation == "gelu" and isinstance(
        intermediate.intermediate_act_fn, nn.Identity
    )
    real = attention_mask.bool()
    torch.testing.assert_close(packed[real].float(), plain[real].float(), atol=0.05, rtol=0.02)


def test_fp32_layers_are_left_alone() -> None:
    model = _backbone()
    assert pack_linear_layers(model) == 0
    assert not any(isinstance(m, PackedLinear) for m in model.modules())


def _packed_engine(tiny_domain_model, precision: str):
    import warnings

    from hpc_classify.engine import InferenceEngine
    from hpc_classify.models.checkpoint import load_classifier_checkpoint

    checkpoint = load_classifier_checkpoint(tiny_domain_model)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 asked for where the CPU only emulates it: a warning
        engine = InferenceEngine(
            checkpoint.model, checkpoint.tokenizer, device="cpu", precision=precision, compile=False
        )
    packed = [m for m in engine.model.modules() if isinstance(m, PackedLinear)]
    assert engine.predict_proba(["a few words", ""]).shape == (2, engine.num_labels)
    return engine, packed


def test_the_engine_packs_in_eager_bf16_only_where_onednn_can(tiny_domain_model) -> None:
    for precision in ("fp32", "bf16"):
        engine, packed = _packed_engine(tiny_domain_model, precision)
        assert engine.dtype == (torch.bfloat16 if precision == "bf16" else torch.float32)
        assert bool(packed) == (precision == "bf16" and onednn_reorders_bf16()), precision


def test_bf16_without_the_reorder_runs_plain_linear_layers(tiny_domain_model, monkeypatch) -> None:
    """An AVX2-only CPU (oneDNN's bf16 reorder raises there): bf16 still runs, unpacked, on every machine."""
    monkeypatch.setattr(packed_linear, "onednn_reorders_bf16", lambda: False)
    assert pack_linear_layers(_backbone().to(torch.bfloat16)) == 0
    engine, packed = _packed_engine(tiny_domain_model, "bf16")
    assert engine.dtype == torch.bfloat16 and not packed
