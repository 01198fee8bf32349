"""The precision policy (auto | fp32 | bf16 | int8): resolution per ISA, int8 agreement with fp32 on a trained
tiny model, the fast attention on quantized projections, classifiers' keyword and fingerprint, the CLI flag."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier, QualityClassifier
from hpc_classify.classifiers.registry import CLASSIFIERS
from hpc_classify.cli.run import parse_run_argv
from hpc_classify.cli.run_config import config_from_args
from hpc_classify.engine import InferenceEngine, compute_dtype, resolve_precision
from hpc_classify.engine import precision as precision_module
from hpc_classify.engine.attention import FastDisentangledSelfAttention, _weights_stamp
from hpc_classify.errors import ConfigError
from hpc_classify.models.checkpoint import load_classifier_checkpoint
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

CPU = torch.device("cpu")
# int8 moves a probability of the tiny domain model by at most 0.010 on these 300 documents (per-tensor
# weight quantization); 3x that leaves room for other CPUs' int8 kernels, and is still far below any
# difference between topics.
INT8_PROBABILITY_TOLERANCE = 0.03


@pytest.fixture
def native_bf16(monkeypatch: pytest.MonkeyPatch):
    def set_native(native: bool) -> None:
        monkeypatch.setattr(precision_module, "cpu_has_native_bf16", lambda: native)

    return set_native


@pytest.mark.parametrize(
    ("native", "asked", "autocast", "resolved"),
    [
        (True, "auto", True, "bf16"),  # AVX-512 BF16 / AMX
        (False, "auto", True, "fp32"),  # AVX2 only: emulated bf16 would be slower than fp32
        (True, "fp32", True, "fp32"),
        (False, "int8", True, "int8"),
        (True, "int8", True, "int8"),
        (True, "auto", False, "fp32"),  # autocast=False keeps meaning exact fp32
        (True, "fp32", False, "fp32"),
    ],
)
def test_policy_resolution_per_isa(native_bf16, native, asked, autocast, resolved) -> None:
    native_bf16(native)
    assert resolve_precision(CPU, asked, autocast) == resolved
    expected_dtype = torch.bfloat16 if resolved == "bf16" else torch.float32
    assert compute_dtype(CPU, autocast, asked) == expected_dtype


def test_bf16_where_only_emulated_is_allowed_with_a_warning(native_bf16, caplog) -> None:
    native_bf16(False)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.engine.precision"):
        assert resolve_precision(CPU, "bf16") == "bf16"
    assert "emulates" in caplog.text and "slower than fp32" in caplog.text
    caplog.clear()
    native_bf16(True)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.engine.precision"):
        assert resolve_precision(CPU, "bf16") == "bf16"
    assert not caplog.records


def test_native_bf16_follows_the_cpu_flags() -> None:
    """Read independently from /proc/cpuinfo: bf16 dot products (AVX-512 BF16 or AMX) on this machine."""
    from hpc_classify.bench.hardware import cpu_flags

    flags = cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo flags to compare with")
    assert precision_module.cpu_has_native_bf16() == bool({"avx512_bf16", "amx_bf16", "amx_tile"} & flags)


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "resolved"), [(False, False, "fp32"), (True, False, "bf16"), (False, True, "bf16")]
)
def test_auto_stays_fp32_where_onednn_only_converts_bf16(monkeypatch, avx512_bf16, amx, resolved) -> None:
    """An AVX-512 CPU without BF16 (Skylake-X): oneDNN runs bf16 there by converting to fp32, no faster than
    fp32, so its bf16 support alone must not make auto pick bf16."""
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: True)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    assert precision_module.onednn_reorders_bf16()
    assert resolve_precision(CPU, "auto") == resolved


@pytest.mark.parametrize("asked", ["bf16", "fp16", "int8"])
def test_no_autocast_with_a_lower_precision_is_a_config_error(asked) -> None:
    with pytest.raises(ConfigError, match=f"autocast=False.*precision='{asked}'"):
        resolve_precision(CPU, asked, autocast=False)
    with pytest.raises(ConfigError, match="--no-autocast"):
        DomainClassifier(autocast=False, precision=asked)


def test_unknown_precision_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="precision must be one of auto, fp32, bf16, fp16, int8, not 'fp8'"):
        resolve_precision(CPU, "fp8")
    with pytest.raises(ConfigError, match="not 'fp8'"):
        DomainClassifier(precision="fp8")


def test_gpu_refuses_int8_and_bf16_where_it_has_none(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = torch.device("cuda")
    with pytest.raises(ConfigError, match="int8.*CPU only"):
        resolve_precision(gpu, "int8")
    with pytest.raises(ConfigError, match="CPU only, not on device cuda"):
        DomainClassifier(precision="int8", device="cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla V100")
    assert resolve_precision(gpu, "auto") == "fp16"
    with pytest.raises(ConfigError, match="Tesla V100 has no bf16"):
        resolve_precision(gpu, "bf16")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert resolve_precision(gpu, "auto") == resolve_precision(gpu, "bf16") == "bf16"


def _engine(model_dir: Path, **kwargs) -> InferenceEngine:
    loaded = load_classifier_checkpoint(str(model_dir))
    options = {"device": "cpu", "max_chars": 400, "max_tokens": 64}
    return InferenceEngine(loaded.model, loaded.tokenizer, **{**options, **kwargs})


def test_int8_agrees_with_fp32_on_a_trained_tiny_model(tiny_domain_model: Path) -> None:
    texts, _ = synthetic_corpus(300, DOMAIN_LABELS, seed=11)
    exact = _engine(tiny_domain_model, precision="fp32").predict_proba(texts)
    engine = _engine(tiny_domain_model, precision="int8")
    quantized = engine.predict_proba(texts)

    assert engine.precision == "int8" and engine.dtype == torch.float32
    assert engine.fast_attention_layers == 2
    backbone = list(engine.model.model.modules())
    assert not any(type(m) is nn.Linear for m in backbone)  # every backbone Linear is int8
    assert sum(isinstance(m, torch.ao.nn.quantized.dynamic.Linear) for m in backbone) == 2 * 6
    assert type(engine.model.fc) is nn.Linear  # the head stays fp32
    np.testing.assert_allclose(quantized, exact, atol=INT8_PROBABILITY_TOLERANCE, rtol=0)
    # Where fp32's top two labels are further apart than twice the tolerance, int8 cannot flip them.
    top_two = np.sort(exact, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 2 * INT8_PROBABILITY_TOLERANCE
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(quantized[clear].argmax(axis=1), exact[clear].argmax(axis=1))
    assert (quantized.argmax(axis=1) == exact.argmax(axis=1)).mean() >= 0.99


def test_fast_attention_on_quantized_projections_equals_transformers(tiny_domain_model: Path) -> None:
    texts, _ = synthetic_corpus(40, DOMAIN_LABELS, seed=3)
    # The same batches for both: int8 quantizes each batch's activations with one scale, so another
    # batching would change the outputs slightly (within the tolerance above) for a reason of its own.
    fast = _engine(tiny_domain_model, precision="int8", token_budget=256).predict_proba(texts)
    plain = _engine(tiny_domain_model, precision="int8", token_budget=256, fast_attention=False)
    # Not 1e-5: the two attentions sum in another order (1e-7 apart in fp32), and the next layer's int8
    # rounding can turn that into one quantization step. Seen on a 16-core AMD EPYC host: 1.3e-4 on 1 of
    # 40 documents. A stale or fp32 position cache would be off by far more (see the next test).
    expected = plain.predict_proba(texts)
    np.testing.assert_allclose(fast, expected, atol=1e-3, rtol=0)
    np.testing.assert_array_equal(fast.argmax(axis=1), expected.argmax(axis=1))


def test_position_cache_follows_quantized_weights(tiny_domain_model: Path) -> None:
    engine = _engine(tiny_domain_model, precision="int8")
    attention = next(m for m in engine.model.modules() if isinstance(m, FastDisentangledSelfAttention))
    projection = attention.key_proj
    assert _weights_stamp(projection) == _weights_stamp(projection)  # stable: the cache is reused
    before = _weights_stamp(projection)
    projection.set_weight_bias(projection.weight(), projection.bias())  # new packed weights
    assert _weights_stamp(projection) != before  # the cache recomputes


def test_precision_is_in_the_fingerprint_and_the_engine_key() -> None:
    def key_and_print(**kwargs):
        classifier = DomainClassifier(model="/m", **kwargs)
        classifier.model_fingerprint = lambda: {"model": "/m"}  # no checkpoint to hash
        classifier._labels = list(DOMAIN_LABELS)
        return classifier.engine_key(), classifier.fingerprint()["precision"]

    results = {
        name: key_and_print(**kwargs)
        for name, kwargs in {
            "default": {},
            "no-autocast": {"autocast": False},
            "fp32": {"precision": "fp32"},
            "bf16": {"precision": "bf16"},
            "int8": {"precision": "int8"},
        }.items()
    }
    # "autocast" as before the policy existed: output directories of earlier runs still resume.
    assert {name: printed for name, (_, printed) in results.items()} == {
        "default": "autocast",
        "no-autocast": "fp32",
        "fp32": "fp32",
        "bf16": "bf16",
        "int8": "int8",
    }
    assert len({key for key, _ in results.values()}) == len(results)  # one cached engine per precision


def test_precision_is_keyword_only_after_nemos_positional_arguments() -> None:
    classifier = QualityClassifier(["High"], 8, "text", "q", None, 100, "cpu", True, None, precision="int8")
    assert classifier.filter_by == ["High"] and classifier.batch_size == 8 and classifier.max_chars == 100
    assert classifier.device == "cpu" and classifier.precision == "int8"


@pytest.mark.parametrize("name", sorted(CLASSIFIERS))
def test_every_built_in_classifier_takes_precision(name: str) -> None:
    classifier = CLASSIFIERS[name](precision="bf16")
    assert classifier.precision == "bf16" and classifier.engine_key()


@pytest.mark.parametrize("name", ["aegis", "instruction-data-guard"])
def test_llama_guard_classifiers_refuse_int8(name: str) -> None:
    with pytest.raises(ConfigError, match="int8 is not supported.*LlamaGuard"):
        CLASSIFIERS[name](precision="int8")


def test_the_precision_flag_reaches_every_classifier(tmp_path: Path) -> None:
    argv = ["--input", "in", "--output", "out", "--classifier", "domain", "--classifier", "quality"]
    config = config_from_args(parse_run_argv([*argv, "--precision", "int8"]))
    assert [c.precision for c in config.classifiers] == ["int8", "int8"]
    (tmp_path / "c.yaml").write_text(
        "input: in\noutput: out\nprecision: bf16\nclassifiers:\n  - classifier: domain\n"
    )
    config = config_from_args(parse_run_argv(["--config", str(tmp_path / "c.yaml")]))
    assert [c.precision for c in config.classifiers] == ["bf16"]
    assert [c.precision for c in config_from_args(parse_run_argv(argv)).classifiers] == ["auto", "auto"]
    with pytest.raises(ConfigError, match="--no-autocast"):
        config_from_args(parse_run_argv([*argv, "--no-autocast", "--precision", "bf16"]))
    with pytest.raises(SystemExit):
        parse_run_argv([*argv, "--precision", "fp8"])


@pytest.mark.parametrize(
    ("in_file", "flag", "precision", "autocast"),
    [
        ("autocast: false", ["--precision", "bf16"], "bf16", True),
        ("precision: bf16", ["--no-autocast"], "auto", False),
        ("precision: int8\n    autocast: true", ["--no-autocast"], "auto", False),
    ],
)
def test_a_precision_flag_overrides_the_files_setting_in_either_spelling(
    tmp_path: Path, in_file: str, flag: list[str], precision: str, autocast: bool
) -> None:
    """autocast false and precision fp32 are one setting: a flag for one replaces the file's value of both
    (the file's autocast false beside --precision bf16 was an error blaming a flag never given)."""
    (tmp_path / "c.yaml").write_text(
        f"input: in\noutput: out\nclassifiers:\n  - classifier: domain\n    {in_file}\n"
    )
    (classifier,) = config_from_args(
        parse_run_argv(["--config", str(tmp_path / "c.yaml"), *flag])
    ).classifiers
    assert (classifier.precision, classifier.autocast) == (precision, autocast)


def test_auto_takes_fp16_on_a_gpu_that_only_emulates_bf16(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's is_bf16_supported() says yes on a V100 or T4 (a bf16 tensor can be made there, and is slow):
    only native bf16 counts (including_emulation=False), else "auto" ran emulated bf16, not fp16."""
    gpu = torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a, **k: "Tesla T4")
    assert resolve_precision(gpu, "auto") == "fp16"
    with pytest.raises(ConfigError, match="Tesla T4 has no bf16"):
        resolve_precision(gpu, "bf16")


def test_fp16_is_nemos_gpu_autocast_on_any_gpu_and_refused_on_a_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    gpu = torch.device("cuda")
    for has_bf16 in (
        True,
        False,
    ):  # an A100/H100 as a V100: fp16 when asked, as NeMo's torch.autocast("cuda")
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, has_bf16=has_bf16, **k: has_bf16)
        assert resolve_precision(gpu, "fp16") == "fp16"
    assert DomainClassifier(precision="fp16", device="cuda").precision_key() == "fp16"
    with pytest.raises(ConfigError, match="fp16 runs on GPUs only"):
        resolve_precision(CPU, "fp16")
    with pytest.raises(ConfigError, match="runs on GPUs only, not on device cpu"):
        DomainClassifier(precision="fp16", device="cpu")
