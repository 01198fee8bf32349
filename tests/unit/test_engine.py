"""InferenceEngine: exactness in fp32, bf16 agreement, input order, cuts, padding, OOM recovery."""

from __future__ import annotations

import copy
import logging
import subprocess
import sys
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from hpc_classify.engine import InferenceEngine, configure_threads, resolve_device
from hpc_classify.engine.backbone_head import BackboneAndHead, head_linears
from hpc_classify.engine.tokenization import ChunkTokenizer
from hpc_classify.errors import ConfigError
from hpc_classify.models.checkpoint import load_classifier_checkpoint
from hpc_classify.models.tiny import DOMAIN_LABELS, synthetic_corpus

MAX_CHARS = 400
MAX_TOKENS = 64


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    texts, _ = synthetic_corpus(60, DOMAIN_LABELS, seed=7)
    return texts + ["", "x"]


def _engine(model_dir: Path, **kwargs) -> InferenceEngine:
    loaded = load_classifier_checkpoint(str(model_dir))
    options = {"device": "cpu", "autocast": False, "max_chars": MAX_CHARS, "max_tokens": MAX_TOKENS}
    return InferenceEngine(loaded.model, loaded.tokenizer, **{**options, **kwargs})


def _reference(model_dir: Path, texts: list[str]) -> np.ndarray:
    """A plain per-document fp32 forward, the way a user would write it."""
    loaded = load_classifier_checkpoint(str(model_dir))
    rows = []
    with torch.inference_mode():
        for text in texts:
            enc = loaded.tokenizer(
                text[:MAX_CHARS], truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
            )
            logits = loaded.model(enc["input_ids"], enc["attention_mask"])
            rows.append(torch.softmax(logits, dim=-1)[0].numpy())
    return np.stack(rows)


def _record_batches(
    engine: InferenceEngine, monkeypatch: pytest.MonkeyPatch, fail_rows_over: int | None = None
):
    """Wrap the backbone: record (rows, width, real lengths) per call; optionally raise OOM for big batches."""
    backbone = engine.model.model
    original = backbone.forward
    calls: list[tuple[int, int, list[int]]] = []

    def forward(input_ids, attention_mask, **kwargs):
        rows, width = input_ids.shape
        calls.append((rows, width, attention_mask.sum(dim=1).tolist()))
        if fail_rows_over is not None and rows > fail_rows_over:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return original(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(backbone, "forward", forward)
    return calls


def test_fp32_equals_a_per_document_forward_in_input_order(
    tiny_domain_model: Path, corpus: list[str]
) -> None:
    engine = _engine(tiny_domain_model, token_budget=256, chunk_size=16)  # many batches, several chunks
    probabilities = engine.predict_proba(corpus)

    assert probabilities.dtype == np.float32
    assert probabilities.shape == (len(corpus), len(DOMAIN_LABELS))
    np.testing.assert_allclose(probabilities, _reference(tiny_domain_model, corpus), atol=1e-5, rtol=0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def test_empty_input_gives_zero_rows(tiny_domain_model: Path) -> None:
    result = _engine(tiny_domain_model).predict_proba([])
    assert result.shape == (0, len(DOMAIN_LABELS)) and result.dtype == np.float32


def test_bf16_agrees_with_fp32_on_a_corpus(tiny_domain_model: Path) -> None:
    texts, _ = synthetic_corpus(300, DOMAIN_LABELS, seed=11)
    exact = _engine(tiny_domain_model).predict_proba(texts)
    # bf16 forced: precision auto is fp32 on a CPU without native bf16, which would compare fp32 with itself.
    fast_engine = _engine(tiny_domain_model, autocast=True, precision="bf16")
    assert fast_engine.dtype == torch.bfloat16
    fast = fast_engine.predict_proba(texts)

    assert (fast.argmax(axis=1) == exact.argmax(axis=1)).mean() >= 0.99
    np.testing.assert_allclose(fast, exact, atol=0.05)


def test_text_beyond_max_chars_is_ignored(tiny_domain_model: Path, corpus: list[str]) -> None:
    base = max(corpus, key=len)[:MAX_CHARS]
    assert len(base) == MAX_CHARS
    texts = [base, base + " tail words that differ", base + " completely other ending", "Other " + base]
    result = _engine(tiny_domain_model, max_tokens=512).predict_proba(texts)

    np.testing.assert_array_equal(result[0], result[1])
    np.testing.assert_array_equal(result[0], result[2])
    assert not np.array_equal(result[0], result[3])


def test_batches_are_padded_to_their_longest_within_budget(
    tiny_domain_model: Path, corpus: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = _engine(tiny_domain_model, token_budget=200)
    calls = _record_batches(engine, monkeypatch)
    engine.predict_proba(corpus)

    assert sum(rows for rows, _, _ in calls) == len(corpus)
    for rows, width, lengths in calls:
        assert width == max(lengths) <= MAX_TOKENS
        assert rows == 1 or rows * width <= 200
    widths = [width for _, width, _ in calls]
    assert widths == sorted(widths, reverse=True)  # length-sorted, longest first


def test_out_of_memory_splits_the_batch_and_lowers_the_budget(
    tiny_domain_model: Path,
    corpus: list[str],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    expected = _engine(tiny_domain_model).predict_proba(corpus)
    engine = _engine(tiny_domain_model, token_budget=4096)
    calls = _record_batches(engine, monkeypatch, fail_rows_over=2)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.engine"):
        result = engine.predict_proba(corpus)

    np.testing.assert_allclose(result, expected, atol=1e-6)
    assert calls[0][0] == len(corpus)  # the whole corpus fitted the budget: one batch first, then splits
    assert engine.token_budget < 4096
    assert "ran out of memory" in caplog.text


def test_a_single_document_out_of_memory_is_truncated_not_fatal(
    tiny_domain_model: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    engine = _engine(tiny_domain_model)
    backbone = engine.model.model
    original = backbone.forward

    def forward(input_ids, attention_mask, **kwargs):
        if input_ids.shape[1] > 16:
            raise RuntimeError("CUDA error: out of memory")
        return original(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    monkeypatch.setattr(backbone, "forward", forward)
    text = " ".join(["word"] * 200)
    with caplog.at_level(logging.WARNING, logger="hpc_classify.engine"):
        result = engine.predict_proba([text])

    assert result.shape == (1, len(DOMAIN_LABELS)) and np.isfinite(result).all()
    assert "classifying its first" in caplog.text


def test_other_errors_propagate(tiny_domain_model: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    engine = _engine(tiny_domain_model)

    def forward(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(engine.model.model, "forward", forward)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        engine.predict_proba(["some text"])


def test_chunk_tokenizer_matches_the_hf_tokenizer(tiny_domain_model: Path, corpus: list[str]) -> None:
    tokenizer = load_classifier_checkpoint(str(tiny_domain_model)).tokenizer
    chunked = ChunkTokenizer(tokenizer, max_chars=MAX_CHARS, max_tokens=MAX_TOKENS)
    expected = tokenizer([t[:MAX_CHARS] for t in corpus], truncation=True, max_length=MAX_TOKENS)["input_ids"]

    assert chunked(corpus) == expected
    assert chunked.pad_id == tokenizer.pad_token_id


def _crossfit_max_seq_length(tokenizer, base_config) -> int:
    """NeMo Curator 0.7.1's token limit (crossfit HFModel.max_seq_length), restated as the oracle."""
    max_seq_length = tokenizer.model_max_length
    if max_seq_length > 1e5:
        max_seq_length = base_config.max_position_embeddings
    return max_seq_length


@pytest.mark.parametrize("model_max_length", [300, 100_000, 100_001, int(1e30)])
def test_without_max_tokens_the_limit_is_nemos_tokenizer_then_position_embeddings(
    tiny_domain_model: Path, model_max_length: int
) -> None:
    loaded = load_classifier_checkpoint(str(tiny_domain_model))
    loaded.tokenizer.model_max_length = model_max_length
    engine = InferenceEngine(loaded.model, loaded.tokenizer, device="cpu", autocast=False, max_tokens=None)
    expected = _crossfit_max_seq_length(loaded.tokenizer, loaded.model.backbone.config)
    assert engine.tokenize.max_tokens == expected
    assert expected in (model_max_length, loaded.model.backbone.config.max_position_embeddings)
    assert loaded.model.backbone.config.max_position_embeddings != 512  # the old fallback would differ


def test_a_generic_logits_module_works(tiny_domain_model: Path, corpus: list[str]) -> None:
    loaded = load_classifier_checkpoint(str(tiny_domain_model))

    class Wrapped(torch.nn.Module):  # not a ClassifierModel: the engine calls it as a whole
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids, attention_mask)

    engine = InferenceEngine(
        Wrapped(loaded.model),
        loaded.tokenizer,
        device="cpu",
        autocast=False,
        max_chars=MAX_CHARS,
        max_tokens=MAX_TOKENS,
    )
    assert engine.num_labels == len(DOMAIN_LABELS)
    np.testing.assert_allclose(engine.predict_proba(corpus), _reference(tiny_domain_model, corpus), atol=1e-5)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ConfigError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")


def test_configure_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert configure_threads(1) == 1 and torch.get_num_threads() == 1
        with pytest.raises(ConfigError):
            configure_threads(0)
    finally:
        torch.set_num_threads(before)


class _TinyBackbone(torch.nn.Module):
    def __init__(self, vocab: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 16)
        self.proj = torch.nn.Linear(16, 16)

    def forward(self, input_ids, attention_mask):
        hidden = self.proj(self.embed(input_ids)) * attention_mask.unsqueeze(-1)
        return SimpleNamespace(last_hidden_state=hidden)


class _TwoLayerHead(torch.nn.Module):
    """Not models' ClassifierModel: a backbone and a two-layer head, known to the engine by its protocol."""

    def __init__(self, vocab: int):
        super().__init__()
        self.encoder = _TinyBackbone(vocab)
        self.hidden, self.out = torch.nn.Linear(16, 8), torch.nn.Linear(8, 3)

    @property
    def backbone(self) -> torch.nn.Module:
        return self.encoder

    def head_logits(self, last_hidden_state, attention_mask):
        return self.out(torch.relu(self.hidden(last_hidden_state[:, 0, :])))

    def forward(self, input_ids, attention_mask):
        return self.head_logits(self.encoder(input_ids, attention_mask).last_hidden_state, attention_mask)


class _NamedLikeIt(torch.nn.Module):
    """Submodules called backbone and head, but no head_logits: run whole, as its forward says."""

    def __init__(self, vocab: int):
        super().__init__()
        self.backbone, self.head = _TinyBackbone(vocab), torch.nn.Linear(16, 3)

    def forward(self, input_ids, attention_mask):
        return self.head(self.backbone(input_ids, attention_mask).last_hidden_state.mean(dim=1))


def _per_document(model: torch.nn.Module, tokenizer, texts: list[str]) -> np.ndarray:
    rows = []
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer(text[:MAX_CHARS], truncation=True, max_length=MAX_TOKENS, return_tensors="pt")
            rows.append(torch.softmax(model(enc["input_ids"], enc["attention_mask"]).float(), -1)[0].numpy())
    return np.stack(rows)


def test_the_engine_knows_a_split_model_by_its_protocol_only(
    tiny_domain_model: Path, corpus: list[str]
) -> None:
    tokenizer = load_classifier_checkpoint(str(tiny_domain_model)).tokenizer
    torch.manual_seed(0)
    model = _TwoLayerHead(len(tokenizer))
    reference = _per_document(copy.deepcopy(model), tokenizer, corpus)
    assert isinstance(model, BackboneAndHead) and head_linears(model) == [model.hidden, model.out]
    assert isinstance(load_classifier_checkpoint(str(tiny_domain_model)).model, BackboneAndHead)

    exact = _engine_of(copy.deepcopy(model), tokenizer, precision="fp32")
    np.testing.assert_allclose(exact.predict_proba(corpus), reference, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 where the CPU only emulates it: a warning, still bf16
        fast = _engine_of(model, tokenizer, precision="bf16")
    assert fast.model.encoder.proj.weight.dtype == torch.bfloat16  # the backbone in the compute dtype
    assert model.hidden.weight.dtype == model.out.weight.dtype == torch.float32  # the whole head in fp32
    np.testing.assert_allclose(fast.predict_proba(corpus), reference, atol=0.02)

    whole = _NamedLikeIt(len(tokenizer))
    assert not isinstance(whole, BackboneAndHead)
    expected = _per_document(
        copy.deepcopy(whole), tokenizer, corpus[:1]
    )  # one document: no padding in the mean
    np.testing.assert_allclose(
        _engine_of(whole, tokenizer, precision="fp32").predict_proba(corpus[:1]), expected, atol=1e-5
    )


def _engine_of(model: torch.nn.Module, tokenizer, **kwargs) -> InferenceEngine:
    return InferenceEngine(
        model, tokenizer, device="cpu", max_chars=MAX_CHARS, max_tokens=MAX_TOKENS, **kwargs
    )


def test_the_engine_does_not_import_the_models_layer() -> None:
    code = "import sys, hpc_classify.engine; print(sorted(m for m in sys.modules if m.startswith('hpc_classify.models')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("precision", ["int8", "bf16"])
def test_a_multi_head_models_pooling_and_every_head_stay_fp32(
    tiny_domain_model: Path, corpus: list[str], precision: str
) -> None:
    """Prompt complexity's eight heads: under int8 none is quantized, under bf16 none is converted (only the
    last one was kept before); the backbone runs in the compute dtype. Outputs stay close to fp32's."""
    from hpc_classify.models.head import backbone_config_from_dict
    from hpc_classify.models.multihead import MultiHeadDeberta

    tokenizer = load_classifier_checkpoint(str(tiny_domain_model)).tokenizer
    config = backbone_config_from_dict(
        {
            "model_type": "deberta-v2",
            "vocab_size": len(tokenizer),
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
            "max_position_embeddings": 128,
            "relative_attention": True,
            "position_buckets": 32,
            "pos_att_type": ["p2c", "c2p"],
        }
    )
    torch.manual_seed(0)
    model = MultiHeadDeberta(config, [3, 2, 4]).eval()
    assert isinstance(model, BackboneAndHead)
    exact = _engine_of(copy.deepcopy(model), tokenizer, precision="fp32").predict_outputs(corpus)
    reference = np.concatenate(
        [
            model(**tokenizer(text[:MAX_CHARS], truncation=True, max_length=MAX_TOKENS, return_tensors="pt"))
            .detach()
            .numpy()
            for text in corpus[:4]
        ]
    )
    np.testing.assert_allclose(exact[:4], reference, atol=1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # bf16 where the CPU only emulates it: a warning, still bf16
        fast = _engine_of(model, tokenizer, precision=precision)
    heads = [getattr(fast.model, f"head_{i}").fc for i in range(3)]
    assert all(type(fc) is torch.nn.Linear and fc.weight.dtype == torch.float32 for fc in heads)
    dense = fast.model.backbone.encoder.layer[0].intermediate.dense
    assert type(dense) is not torch.nn.Linear or dense.weight.dtype == torch.bfloat16
    np.testing.assert_allclose(fast.predict_outputs(corpus), exact, atol=0.05)
