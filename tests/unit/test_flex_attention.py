"""The FlexAttention path (engine/flex_attention.py: bucket products, score_mod gather, block mask) equals
transformers' DeBERTa-v2 attention on real tokens.

FlexAttention called eagerly computes the same scores as its compiled kernel, materialised: the exact
reference of the math (buckets, shared index, scale, mask). The layers take the flex branch only while
traced, so these tests run that branch eagerly by making `torch.compiler.is_compiling()` true; the
compiled kernel itself runs only on CUDA (tests/gpu; on CPU it is refused, see attention_choice.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_attention import BACKBONE_VARIANTS, _backbone, _inputs
from transformers import DebertaV2Config, DebertaV2Model

from hpc_classify.engine import attention_choice
from hpc_classify.engine.attention import accelerate_attention, restore_attention
from hpc_classify.engine.attention_choice import ATTENTION_ENV, MEASURED_FASTER, resolve_attention
from hpc_classify.errors import ConfigError
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


@pytest.mark.parametrize("overrides", BACKBONE_VARIANTS)
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
    with pytest.raises(ValueError, match="one of bias, flex, tiled, not 'flash'"):
        accelerate_attention(_backbone(), kernel="flash")


def test_the_engine_runs_flex_where_it_compiles_and_says_so(
    tiny_domain_model, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    """attention="flex": the layers take the flex branch inside the (here identity) compiled backbone; the
    probabilities equal transformers' per-document fp32 ones on a ragged corpus; the log says flex."""
    import logging

    from reference_models import nvidia_checkpoint_probabilities

    from hpc_classify.engine import InferenceEngine, compiled
    from hpc_classify.models.checkpoint import load_classifier_checkpoint
    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    texts, _ = synthetic_corpus(12, DOMAIN_LABELS, seed=5)
    texts = [text[: 12 + 61 * i] for i, text in enumerate(texts)] + [""]
    reference = nvidia_checkpoint_probabilities(tiny_domain_model, texts, 2000, 512)
    monkeypatch.setattr(compiled, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(attention_choice, "flex_unavailable_reason", lambda device: None)
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    checkpoint = load_classifier_checkpoint(tiny_domain_model)
    with caplog.at_level(logging.INFO, logger="hpc_classify.engine.engine"):
        engine = InferenceEngine(
            checkpoint.model, checkpoint.tokenizer, device="cpu", precision="fp32", attention="flex"
        )
    assert engine.compiled and engine.attention == "flex"
    assert engine.describe() == "fp32, compiled, flex attention"
    assert any("flex attention" in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)  # what the real compile traces
    probabilities = engine.predict_proba(texts)
    np.testing.assert_allclose(probabilities, reference, atol=1e-5, rtol=0)


def test_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(ATTENTION_ENV, raising=False)
    with pytest.raises(ConfigError, match="cannot run on cpu"):  # Inductor's CPU template: not yet
        resolve_attention("flex", cpu, "auto", "bf16")
    monkeypatch.setenv(ATTENTION_ENV, "flex")
    assert resolve_attention("auto", cpu, "auto", "bf16") == ("bias", "auto")  # with a warning
    assert resolve_attention("auto", cuda, "auto", "bf16") == ("flex", True)
    monkeypatch.delenv(ATTENTION_ENV)
    # Below, a device where flex can run (CPU as the stand-in: the rules do not depend on the device).
    monkeypatch.setattr(attention_choice, "flex_unavailable_reason", lambda device: None)
    for device in (cpu, cuda):  # what was measured faster (MEASURED_FASTER), compile left as asked
        assert resolve_attention("auto", device, "auto", "bf16") == (MEASURED_FASTER[device.type], "auto")
    assert resolve_attention("flex", cpu, "auto", "bf16") == ("flex", True)  # flex turns compiling on
    assert resolve_attention("bias", cuda, True, "bf16") == ("bias", True)
    with pytest.raises(ConfigError, match="compile is false"):
        resolve_attention("flex", cpu, False, "bf16")
    with pytest.raises(ConfigError, match="int8"):
        resolve_attention("flex", cpu, "auto", "int8")
    with pytest.raises(ConfigError, match="attention must be one of"):
        resolve_attention("flash", cpu, "auto", "bf16")
    monkeypatch.setenv(ATTENTION_ENV, "flex")  # the site-wide switch changes auto only
    assert resolve_attention("auto", cpu, "auto", "bf16") == ("flex", True)
    assert resolve_attention("auto", cpu, False, "bf16") == ("bias", False)  # never overrides compile=False
    assert resolve_attention("auto", cpu, "auto", "int8") == ("bias", "auto")
    assert resolve_attention("bias", cpu, "auto", "bf16") == ("bias", "auto")


def test_the_run_summary_counts_how_each_engine_ran() -> None:
    from hpc_classify.driver.summary import RunStats, build_summary
    from hpc_classify.io.markers import CompletionMarker

    def marker(**extra):
        return CompletionMarker("in", 1, 0.0, "out", 2, 2, 0, {}, 0.1, "n1", "w", "f", extra=extra)

    stats = RunStats()
    for description in ("bf16, eager, bias attention", "bf16, eager, bias attention", "bf16, compiled, flex"):
        stats.add_marker(marker(engines={"DomainClassifier": description}))
    stats.add_marker(marker())  # a marker written before engines were recorded
    summary = build_summary(
        stats, started=0.0, finished=1.0, exit_code=0, interrupted_by=None, fingerprint="f", cluster={}
    )
    assert summary["engines"] == {
        "DomainClassifier": {"bf16, eager, bias attention": 2, "bf16, compiled, flex": 1}
    }


def test_flex_layers_trace_with_dynamic_shapes_in_bounded_graphs() -> None:
    """torch.compile traces the flex layers with dynamic shapes (backend aot_eager: dynamo and AOT autograd, the
    FlexAttention operator run by its reference implementation, as Inductor's CPU template cannot): at most
    COMPILE_GRAPHS_BOUND graphs across batch sizes and lengths below and above a 128-token block, exact."""
    from torch._dynamo.utils import counters

    from hpc_classify.engine.compiled import COMPILE_GRAPHS_BOUND

    model, reference = _backbone(), _backbone()
    accelerate_attention(model, kernel="flex")
    compiled = torch.compile(model, dynamic=True, backend="aot_eager")
    before = counters["stats"]["unique_graphs"]
    with torch.inference_mode():
        for rows, length in [(3, 40), (2, 77), (4, 130), (3, 260), (5, 31)]:
            input_ids, attention_mask = _inputs(rows, length)
            got = compiled(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            expected = reference(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            real = attention_mask.bool()
            torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    assert 1 <= counters["stats"]["unique_graphs"] - before <= COMPILE_GRAPHS_BOUND
