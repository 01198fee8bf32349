"""The compiled path (torch.compile of the backbone, fused_attention traced): exact against transformers'
attention, bounded graphs across lengths, the policy, and the eager fallback with one warning.

Compiling costs tens of seconds on 2 cores, so the real compiles happen once per precision, in
module-scoped engines on the tiny model; the fallback and policy tests compile nothing."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from reference_models import nvidia_checkpoint_probabilities
from test_attention import _backbone, _inputs

from hpc_classify.config import check_compile
from hpc_classify.engine import InferenceEngine, compiled
from hpc_classify.engine.attention import _skew, accelerate_attention, restore_attention
from hpc_classify.engine.fused_attention import skew
from hpc_classify.errors import ConfigError
from hpc_classify.models.checkpoint import load_classifier_checkpoint
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

MAX_CHARS, MAX_TOKENS = 2000, 512


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts, _ = synthetic_corpus(40, DOMAIN_LABELS, seed=5)
    # Many distinct lengths (3 to ~200 tokens) and batch sizes under a small budget: a graph per shape
    # would show up as many compiles.
    return [text[: 12 + 23 * i] for i, text in enumerate(texts)] + ["", "x"]


@pytest.fixture(scope="module")
def reference(tiny_domain_model: Path, corpus: list[str]) -> np.ndarray:
    """transformers' own DeBERTa-v2 attention, fp32, one document at a time (no package code)."""
    return nvidia_checkpoint_probabilities(tiny_domain_model, corpus, MAX_CHARS, MAX_TOKENS)


def _engine(model_dir: Path, **options) -> InferenceEngine:
    checkpoint = load_classifier_checkpoint(model_dir)
    options = {
        "device": "cpu",
        "token_budget": 600,
        "max_chars": MAX_CHARS,
        "max_tokens": MAX_TOKENS,
        **options,
    }
    return InferenceEngine(checkpoint.model, checkpoint.tokenizer, **options)


@pytest.fixture(scope="module")
def compiled_fp32(tiny_domain_model: Path) -> InferenceEngine:
    if compiled.unavailable_reason(torch.device("cpu")) is not None:
        pytest.skip("torch.compile cannot work here (no C++ compiler)")
    return _engine(tiny_domain_model, precision="fp32", compile=True)


def test_compiled_fp32_matches_transformers_with_one_graph(
    compiled_fp32: InferenceEngine, corpus: list[str], reference: np.ndarray
) -> None:
    graphs_before = compiled._graphs_compiled()
    probabilities = compiled_fp32.predict_proba(corpus)
    again = compiled_fp32.predict_proba(list(reversed(corpus)))[::-1]  # other batches, same graph
    assert compiled_fp32.compiled, "the compiled path fell back to eager"
    assert 1 <= compiled._graphs_compiled() - graphs_before <= compiled.COMPILE_GRAPHS_BOUND
    assert compiled_fp32.compile_seconds > 0
    np.testing.assert_allclose(probabilities, reference, atol=1e-5, rtol=0)
    np.testing.assert_allclose(again, reference, atol=1e-5, rtol=0)


@pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="bf16 is only emulated on this CPU: slow"
)
def test_compiled_bf16_agrees_with_transformers_fp32(
    tiny_domain_model: Path, corpus: list[str], reference: np.ndarray
) -> None:
    engine = _engine(tiny_domain_model, precision="bf16", compile=True)
    eager = _engine(tiny_domain_model, precision="bf16", compile=False).predict_proba(corpus)
    probabilities = engine.predict_proba(corpus)
    assert engine.compiled
    assert (probabilities.argmax(1) == reference.argmax(1)).mean() >= 0.97
    assert np.abs(probabilities - reference).max() < 0.05  # bf16 rounding of 8-bit mantissas
    assert np.abs(probabilities - eager).max() < 0.02  # compiled vs eager bf16: rounding order only


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"share_att_key": False},
        {"position_buckets": -1},
        {"position_buckets": 16, "max_relative_positions": 64},
    ],
)
@pytest.mark.parametrize("length", [1, 2, 7, 160])
def test_fused_attention_matches_the_original(
    monkeypatch: pytest.MonkeyPatch, overrides: dict, length: int
) -> None:
    """The traced function itself, run eagerly (as if under torch.compile), against transformers."""
    model = _backbone(**overrides)
    input_ids, attention_mask = _inputs(3, length)
    with torch.inference_mode():
        restore_attention(model)
        original = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        accelerate_attention(model)
        monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
        fused = model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    real = attention_mask.bool()  # padded positions' outputs are unspecified
    torch.testing.assert_close(fused[real], original[real], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("length", [1, 2, 3, 50])
def test_skew_by_reshapes_equals_the_strided_view(length: int) -> None:
    scores = torch.randn(2, 3, length, 2 * length - 1)
    torch.testing.assert_close(skew(scores, length), _skew(scores, length, transpose=False))
    torch.testing.assert_close(skew(scores, length).transpose(-1, -2), _skew(scores, length, transpose=True))


def test_no_compiler_falls_back_to_identical_eager_outputs_with_one_warning(
    tiny_domain_model: Path, corpus: list[str], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setattr(compiled, "unavailable_reason", lambda device: "no C++ compiler for Inductor (test)")
    with caplog.at_level(logging.WARNING, logger="hpc_classify.engine.compiled"):
        engine = _engine(tiny_domain_model, precision="fp32", compile=True)
        probabilities = engine.predict_proba(corpus)
    assert not engine.compiled
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "no C++ compiler" in warnings[0].getMessage()
    # An engine asked to compile runs the bias attention (what a graph traces); eager, it runs that too.
    eager = _engine(tiny_domain_model, precision="fp32", compile=False, attention="bias").predict_proba(
        corpus
    )
    np.testing.assert_array_equal(probabilities, eager)


def test_a_compile_error_falls_back_to_eager_for_good(
    tiny_domain_model: Path, corpus: list[str], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    calls = []

    def broken_compile(module, **options):
        def call(**inputs):
            calls.append(inputs["input_ids"].shape)
            raise RuntimeError("CppCompileError: C++ compile error (test)\nthe compiler's long output")

        return call

    monkeypatch.setattr(compiled, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(torch, "compile", broken_compile)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.engine.compiled"):
        engine = _engine(tiny_domain_model, precision="fp32", compile=True)
        assert engine.compiled
        probabilities = engine.predict_proba(corpus)
    assert not engine.compiled and len(calls) == 1  # tried once, then eager for every later batch
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "C++ compile error (test)" in warnings[0]
    assert "long output" not in warnings[0]
    # An engine asked to compile runs the bias attention (what a graph traces); eager, it runs that too.
    eager = _engine(tiny_domain_model, precision="fp32", compile=False, attention="bias").predict_proba(
        corpus
    )
    np.testing.assert_array_equal(probabilities, eager)


def test_errors_that_eager_shares_propagate_and_keep_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    class Failing(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            raise ValueError("bad input")

    monkeypatch.setattr(compiled, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(torch, "compile", lambda module, **options: module)
    module = compiled.CompiledModule(Failing(), torch.device("cpu"))
    ids = torch.ones(4, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="bad input"):
        module(input_ids=ids, attention_mask=ids)
    assert module.active


def test_policy(monkeypatch: pytest.MonkeyPatch) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(compiled.COMPILE_ENV, raising=False)
    # Measured no faster on dedicated CPU cores, not measured on GPU: auto is eager, compiling is opt-in.
    assert not compiled.resolve_compile("auto", cpu, "bf16") and not compiled.resolve_compile(
        "auto", cuda, "bf16"
    )
    assert compiled.resolve_compile(True, cuda, "bf16")
    assert not compiled.resolve_compile(False, cpu, "bf16")
    monkeypatch.setenv(compiled.COMPILE_ENV, "off")
    assert not compiled.resolve_compile("auto", cpu, "bf16")
    assert compiled.resolve_compile(True, cpu, "bf16")  # explicit wins over the site default
    monkeypatch.setenv(compiled.COMPILE_ENV, "on")
    assert compiled.resolve_compile("auto", cuda, "bf16") and compiled.resolve_compile("auto", cpu, "fp32")
    assert not compiled.resolve_compile("auto", cpu, "int8")
    with pytest.raises(ConfigError, match="int8"):
        compiled.resolve_compile(True, cpu, "int8")
    for wrong in ("yes", 1, None):
        with pytest.raises(ConfigError, match="compile must be"):
            check_compile(wrong)


def test_classifiers_and_cli_carry_compile(tiny_domain_model: Path) -> None:
    from hpc_classify import DomainClassifier
    from hpc_classify.cli.run import parse_run_argv
    from hpc_classify.cli.run_config import config_from_args

    plain = DomainClassifier(model=str(tiny_domain_model))
    off = DomainClassifier(model=str(tiny_domain_model), compile=False)
    assert plain.fingerprint() == off.fingerprint()  # a speed setting: resuming is allowed
    assert plain.engine_key() != off.engine_key()
    with pytest.raises(ConfigError, match="compile must be"):
        DomainClassifier(model=str(tiny_domain_model), compile="fast")
    with pytest.raises(ConfigError, match="int8"):
        DomainClassifier(model=str(tiny_domain_model), compile=True, precision="int8")
    args = parse_run_argv(
        ["--input", "in", "--output", "out", "--model", str(tiny_domain_model), "--compile", "off"]
    )
    config = config_from_args(args)
    assert [c.compile for c in config.classifiers] == [False]
    with pytest.raises(SystemExit):
        parse_run_argv(["--input", "in", "--output", "out", "--compile", "fast"])


def test_generic_model_is_compiled_whole(tiny_domain_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that is not a ClassifierModel (an HF *ForSequenceClassification) is compiled as a whole."""
    seen = []
    monkeypatch.setattr(compiled, "unavailable_reason", lambda device: None)
    monkeypatch.setattr(torch, "compile", lambda module, **options: seen.append(module) or module)
    checkpoint = load_classifier_checkpoint(tiny_domain_model)
    wrapper = copy.deepcopy(checkpoint.model)
    InferenceEngine(checkpoint.model, checkpoint.tokenizer, device="cpu", compile=True)
    assert seen == [checkpoint.model.model]  # the ClassifierModel's backbone; its head stays eager

    class Generic(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = wrapper
            self.num_labels = wrapper.fc.out_features

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids, attention_mask)

    generic = Generic()
    InferenceEngine(generic, checkpoint.tokenizer, device="cpu", compile=True)
    assert seen[-1] is generic
