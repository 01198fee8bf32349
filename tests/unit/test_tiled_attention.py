"""The tiled CPU attention (engine/tiled_attention.py and its C++ kernel) against an independent fp64
computation, in the engine, in the attention policy, and when its kernel cannot be built."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from hpc_classify.engine import attention_choice, tiled_attention
from hpc_classify.engine.attention_choice import ATTENTION_ENV, resolve_attention
from hpc_classify.engine.tiled_attention import tiled_attend
from hpc_classify.errors import ConfigError


def _skew(products: torch.Tensor, length: int, *, transpose: bool) -> torch.Tensor:
    """[..., L, 2L-1] over offsets -> [..., L, L] by explicit indexing (not the strided view under test)."""
    rows = torch.arange(length)[:, None]
    cols = torch.arange(length)[None, :]
    if not transpose:  # [i, j] = products[i, j - i + L - 1]
        return products[..., rows, cols - rows + length - 1]
    return products[..., cols, rows - cols + length - 1]  # [i, j] = products[j, i - j + L - 1]


def _reference(query, key, value, blocked, pos_key, pos_query, scale) -> torch.Tensor:
    q, k, v, pk, pq = (t.double() for t in (query, key, value, pos_key, pos_query))
    length = q.size(-2)
    scores = q @ k.transpose(-1, -2) / scale
    scores = scores + _skew(q @ pk.transpose(-1, -2), length, transpose=False)
    scores = scores + _skew(k @ pq.transpose(-1, -2), length, transpose=True)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    return scores.softmax(-1) @ v


def _case(batch: int, length: int, dtype: torch.dtype, masked: bool, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    heads, size = 3, 16

    def normal(*shape, factor=1.0):
        return (torch.randn(*shape, generator=generator) * factor).to(dtype)

    query, key, value = (normal(batch, heads, length, size) for _ in range(3))
    pos_key, pos_query = (normal(heads, 2 * length - 1, size, factor=0.3) for _ in range(2))
    blocked = None
    if masked:  # any pattern, not only padding; every query keeps at least its own key
        blocked = torch.rand(batch, 1, length, length, generator=generator) < 0.4
        blocked &= ~torch.eye(length, dtype=torch.bool)
    return query, key, value, blocked, pos_key, pos_query, (3 * size) ** 0.5


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("window_rows", [16, 32, tiled_attention.WINDOW_ROWS])
@pytest.mark.parametrize("batch,length", [(1, 1), (2, 2), (2, 17), (1, 33), (3, 48), (1, 150)])
def test_fp32_equals_the_fp64_reference(batch: int, length: int, window_rows: int, masked: bool) -> None:
    """Lengths below, at and across the kernel's 16-row tiles and 16-wide blocks, in one window of the
    position products or several (the last one partly padding); masks of any shape."""
    case = _case(batch, length, torch.float32, masked)
    with torch.inference_mode():
        out = tiled_attend(*case, window_rows=window_rows)
    torch.testing.assert_close(out.double(), _reference(*case), atol=1e-5, rtol=1e-5)


def test_each_window_meets_only_its_offsets() -> None:
    """The windowed products hold exactly the full products' columns each block of rows reads."""
    query, key, _, _, pos_key, pos_query, _ = _case(2, 40, torch.float64, False)
    c2p, p2c = (  # [H, T, B, R, W] -> [B, H, T * R, W]
        p.permute(2, 0, 1, 3, 4).flatten(2, 3)
        for p in tiled_attention.window_products(query, key, pos_key, pos_query, 16)
    )
    assert c2p.shape == p2c.shape == (2, 3, 48, 40 + 15)  # 3 windows of 16 rows, the last one half padding
    full_c2p, full_p2c = query @ pos_key.transpose(-1, -2), key @ pos_query.transpose(-1, -2)  # all offsets
    for i in range(40):
        base = 15 - i % 16  # column of key 0 in row i's window
        torch.testing.assert_close(
            c2p[..., i, base : base + 40], _skew(full_c2p, 40, transpose=False)[..., i, :]
        )
        torch.testing.assert_close(
            p2c[..., i, base : base + 40], _skew(full_p2c, 40, transpose=True)[..., :, i]
        )


def test_window_rows_must_hold_whole_tiles() -> None:
    with pytest.raises(ValueError, match="multiple of 16, not 24"):
        tiled_attend(*_case(1, 40, torch.float32, False), window_rows=24)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("masked", [False, True])
def test_bf16_is_no_less_accurate_than_the_bias_path(masked: bool, fused: bool) -> None:
    from hpc_classify.engine.attention import _attend

    if fused:
        _needs_fused()
    case = _case(2, 80, torch.bfloat16, masked, seed=3)
    exact = _reference(*case)
    with torch.inference_mode():
        tiled = (tiled_attend(*case, window_rows=32, fused=fused).double() - exact).abs().max()
        bias = (_attend(*case).double() - exact).abs().max()
    assert tiled < 0.05
    assert tiled <= bias * 1.5


def _needs_fused() -> None:
    if not tiled_attention._kernel().fused_supported():
        pytest.skip("no AVX-512 BF16 (or a compiler other than GCC 12+): the fused kernel cannot run here")


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize(
    "batch,length,size", [(1, 1, 16), (2, 2, 16), (2, 17, 16), (1, 33, 8), (3, 48, 64), (1, 150, 16)]
)
def test_fused_probabilities_equal_the_fp64_ones_to_bf16_rounding(
    batch: int, length: int, size: int, masked: bool
) -> None:
    """The fused kernel's q.k, c2p and p2c (vdpbf16ps per 16 x 16 block, fp32 sums, never stored) against
    fp64 from the same bf16 inputs: the values are the identity, so the output is the probabilities
    themselves, and they may differ only by their own bf16 rounding. Lengths inside, at and across the
    16-row tiles and 16-key blocks; head sizes 8, 16 and 64."""
    _needs_fused()
    query, key, _, blocked, pos_key, pos_query, scale = _case(batch, length, torch.bfloat16, masked)
    if size != query.size(-1):
        query, key, pos_key, pos_query = (
            t.repeat_interleave(size // 16, -1) if size > 16 else t[..., :size]
            for t in (query, key, pos_key, pos_query)
        )
    identity = torch.eye(length, dtype=torch.bfloat16).expand(batch, query.size(1), length, length)
    with torch.inference_mode():
        probabilities = tiled_attend(
            query, key, identity, blocked, pos_key, pos_query, scale, fused=True
        ).double()
    q, k, pk, pq = (t.double() for t in (query, key, pos_key, pos_query))
    scores = q @ k.transpose(-1, -2) / scale
    scores = scores + _skew(q @ pk.transpose(-1, -2), length, transpose=False)
    scores = scores + _skew(k @ pq.transpose(-1, -2), length, transpose=True)
    if blocked is not None:
        scores = scores.masked_fill(blocked, float("-inf"))
    torch.testing.assert_close(probabilities, scores.softmax(-1), rtol=2**-8, atol=1e-6)


def test_the_fused_kernel_reads_the_query_in_place_whatever_its_strides() -> None:
    """The engine passes the query as the projection's own view ([B, L, H*d] seen as [B, H, L, d]) and, for a
    chunk of documents, a slice of it: the kernel reads those strides, no copy, and gives exactly what it
    gives for the same values contiguous (and the reference's probabilities to bf16 rounding)."""
    _needs_fused()
    batch, heads, length, size = 3, 3, 40, 16
    query, key, _, blocked, pos_key, pos_query, scale = _case(batch, length, torch.bfloat16, True, seed=7)
    projected = torch.randn(batch + 2, length + 9, heads * size).to(torch.bfloat16)
    strided = projected.view(batch + 2, length + 9, heads, size).transpose(1, 2)[
        1 : 1 + batch, :, 3 : 3 + length
    ]
    strided.copy_(query)
    assert not strided.is_contiguous() and torch.equal(strided, query)
    identity = torch.eye(length, dtype=torch.bfloat16).expand(batch, heads, length, length)
    with torch.inference_mode():
        from_view = tiled_attend(strided, key, identity, blocked, pos_key, pos_query, scale, fused=True)
        contiguous = tiled_attend(query, key, identity, blocked, pos_key, pos_query, scale, fused=True)
    assert torch.equal(from_view, contiguous)
    exact = _reference(query, key, identity, blocked, pos_key, pos_query, scale)
    torch.testing.assert_close(from_view.double(), exact, rtol=2**-8, atol=1e-6)


def test_the_engine_runs_tiled_on_cpu_and_equals_the_bias_path(tiny_domain_model, caplog) -> None:
    from hpc_classify.engine import InferenceEngine
    from hpc_classify.models.checkpoint import load_classifier_checkpoint
    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    texts, _ = synthetic_corpus(12, DOMAIN_LABELS, seed=5)
    texts = [text[: 12 + 61 * i] for i, text in enumerate(texts)] + [""]  # ragged, one empty
    probabilities = {}
    for attention in ("auto", "bias"):
        checkpoint = load_classifier_checkpoint(tiny_domain_model)
        with caplog.at_level(logging.INFO, logger="hpc_classify.engine.engine"):
            engine = InferenceEngine(
                checkpoint.model, checkpoint.tokenizer, device="cpu", precision="fp32", attention=attention
            )
        probabilities[attention] = engine.predict_proba(texts)
        if attention == "auto":  # what was measured faster on CPU, and said so
            assert engine.attention == "tiled"
            assert engine.describe() == "fp32, eager, tiled attention"
            assert any("tiled attention" in r.getMessage() for r in caplog.records)
    np.testing.assert_allclose(probabilities["auto"], probabilities["bias"], atol=1e-5, rtol=0)


def test_the_bf16_engine_fuses_the_position_terms_where_the_cpu_can(
    tiny_domain_model, caplog, monkeypatch
) -> None:
    """bf16 with AVX-512 BF16: auto runs the fused kernel, says so, and is no less accurate against the fp32
    engine than the windows it replaces (the same engine with the fused kernel turned off)."""
    from hpc_classify.engine import InferenceEngine
    from hpc_classify.models.checkpoint import load_classifier_checkpoint
    from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

    if not tiled_attention.uses_fused(torch.bfloat16):
        pytest.skip("auto does not fuse on this CPU (no AVX-512 BF16, or AMX: the windows run)")
    texts, _ = synthetic_corpus(12, DOMAIN_LABELS, seed=6)
    texts = [text[: 20 + 61 * i] for i, text in enumerate(texts)]

    def probabilities(precision: str) -> np.ndarray:
        checkpoint = load_classifier_checkpoint(tiny_domain_model)
        engine = InferenceEngine(
            checkpoint.model, checkpoint.tokenizer, device="cpu", precision=precision, attention="auto"
        )
        return engine.describe(), engine.predict_proba(texts)

    with caplog.at_level(logging.INFO, logger="hpc_classify.engine.engine"):
        described, fused = probabilities("bf16")
    assert described == "bf16, eager, tiled (fused position terms) attention"
    assert any("tiled (fused position terms) attention" in r.getMessage() for r in caplog.records)
    _, exact = probabilities("fp32")
    monkeypatch.setattr(tiled_attention, "uses_fused", lambda dtype: False)
    described, windows = probabilities("bf16")
    assert described == "bf16, eager, tiled attention"
    fused_error, windows_error = np.abs(fused - exact).max(), np.abs(windows - exact).max()
    assert fused_error < 0.05
    assert fused_error <= windows_error * 1.5


def test_policy(monkeypatch: pytest.MonkeyPatch, caplog) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    monkeypatch.delenv(ATTENTION_ENV, raising=False)
    assert resolve_attention("auto", cpu, "auto", "bf16") == ("tiled", "auto")
    assert resolve_attention("auto", cpu, "auto", "int8") == ("tiled", "auto")  # int8 attends in fp32
    assert resolve_attention("auto", cpu, True, "bf16") == ("bias", True)  # a compiled graph: bias
    assert resolve_attention("tiled", cpu, False, "fp32") == ("tiled", False)
    with pytest.raises(ConfigError, match="eager CPU kernel, but compile is true"):
        resolve_attention("tiled", cpu, True, "bf16")
    with pytest.raises(ConfigError, match="CPU kernel, and this engine runs on cuda"):
        resolve_attention("tiled", cuda, "auto", "bf16")
    monkeypatch.setenv(ATTENTION_ENV, "bias")  # the site-wide switch
    assert resolve_attention("auto", cpu, "auto", "bf16") == ("bias", "auto")
    monkeypatch.delenv(ATTENTION_ENV)
    # Where the kernel cannot be built: auto keeps the bias path and says why; asking for tiled is an error.
    monkeypatch.setattr(tiled_attention, "unavailable_reason", lambda: "no C++ compiler")
    with caplog.at_level(logging.WARNING, logger=attention_choice.logger.name):
        assert resolve_attention("auto", cpu, "auto", "bf16") == ("bias", "auto")
    assert any("no C++ compiler" in r.getMessage() for r in caplog.records)
    with pytest.raises(ConfigError, match="attention tiled cannot run: no C\\+\\+ compiler"):
        resolve_attention("tiled", cpu, "auto", "bf16")


def test_a_kernel_that_does_not_compile_gives_the_compiler_s_error(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real failed build (a source with an error, a fresh cache): the reason quotes the compiler's
    error line, the failure is remembered, and nothing is left that a later process would load."""
    broken = tmp_path / "tiled_attention.cpp"
    broken.write_text("#include <torch/extension.h>\nint broken( {\n")
    monkeypatch.setattr(tiled_attention, "SOURCE", broken)
    monkeypatch.setenv(tiled_attention.CACHE_ENV, str(tmp_path / "cache"))
    tiled_attention._load.cache_clear()
    try:
        reason = tiled_attention.unavailable_reason()
        assert reason is not None and reason.startswith("the tiled CPU attention kernel could not be built")
        assert "tiled_attention.cpp:2" in reason and "error:" in reason
        assert tiled_attention.unavailable_reason() == reason  # cached: not rebuilt per layer
        assert not list((tmp_path / "cache").iterdir())  # its build directory is removed too
    finally:
        tiled_attention._load.cache_clear()
