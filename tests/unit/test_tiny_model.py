"""The tiny checkpoints the tests build: public layout, tokenizer, determinism, topic-following predictions."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from hpc_classify.models import tiny
from hpc_classify.models.checkpoint import load_classifier_checkpoint
from hpc_classify.models.tiny import (
    BASE_SIZED_BACKBONE,
    DOMAIN_LABELS,
    QUALITY_LABELS,
    build_classifier_model,
    build_tiny_checkpoint,
    synthetic_corpus,
    topic_vocabulary,
)

SMALL = {"steps": 2, "hidden": 16, "layers": 1, "heads": 1, "vocab_size": 300}


def test_label_lists_match_the_public_checkpoints():
    assert len(DOMAIN_LABELS) == len(set(DOMAIN_LABELS)) == 26
    assert DOMAIN_LABELS[:3] == ["Adult", "Arts_and_Entertainment", "Autos_and_Vehicles"]
    assert DOMAIN_LABELS[7] == "Finance" and DOMAIN_LABELS[24] == "Sports"
    assert DOMAIN_LABELS[-1] == "Travel_and_Transportation"
    assert QUALITY_LABELS == ["High", "Low", "Medium"]


def test_synthetic_corpus_is_deterministic_and_varied():
    texts, ids = synthetic_corpus(200, DOMAIN_LABELS, seed=3)
    assert (texts, ids) == synthetic_corpus(200, DOMAIN_LABELS, seed=3)
    assert texts != synthetic_corpus(200, DOMAIN_LABELS, seed=4)[0]
    assert len(texts) == len(ids) == 200 and set(ids) <= set(range(26)) and len(set(ids)) > 20
    lengths = [len(t.split()) for t in texts]
    assert min(lengths) >= 4 and max(lengths) <= 300 and max(lengths) > 3 * min(lengths)
    assert all(t[0].isupper() and t.endswith(".") for t in texts)


def test_topic_vocabularies_are_disjoint_and_name_the_topic():
    vocab = topic_vocabulary(DOMAIN_LABELS)
    words = [w for ws in vocab.values() for w in ws]
    assert len(words) == len(set(words)) == 26 * 12
    assert "sports" in vocab["Sports"] and "finance" in vocab["Finance"]
    assert vocab == topic_vocabulary(list(DOMAIN_LABELS))


def test_dir_layout_matches_the_public_checkpoints(tiny_domain_model: Path):
    config = json.loads((tiny_domain_model / "config.json").read_text())
    assert set(config) == {"base_model", "fc_dropout", "id2label", "label2id"}
    assert config["fc_dropout"] == 0.2
    assert config["id2label"] == {str(i): name for i, name in enumerate(DOMAIN_LABELS)}
    assert config["label2id"] == {name: i for i, name in enumerate(DOMAIN_LABELS)}
    base = Path(config["base_model"])
    assert base == tiny_domain_model.parent / f"{tiny_domain_model.name}-base"
    backbone = json.loads((base / "config.json").read_text())
    assert backbone["model_type"] == "deberta-v2"
    assert backbone["relative_attention"] and backbone["pos_att_type"] == ["p2c", "c2p"]
    assert backbone["norm_rel_ebd"] == "layer_norm" and backbone["share_att_key"]
    assert not backbone["position_biased_input"] and backbone["max_position_embeddings"] == 1024
    keys = load_file(str(tiny_domain_model / "model.safetensors")).keys()
    assert {"fc.weight", "fc.bias"} <= keys and all(k.startswith(("model.", "fc.")) for k in keys)
    assert not [p for p in tiny_domain_model.iterdir() if p.name.startswith(".")]


def test_inline_layout_carries_the_architecture(tiny_quality_model: Path):
    config = json.loads((tiny_quality_model / "config.json").read_text())
    assert "base_model" not in config and config["model_type"] == "deberta-v2"
    assert config["id2label"] == {"0": "High", "1": "Low", "2": "Medium"}
    assert not (tiny_quality_model.parent / f"{tiny_quality_model.name}-base").exists()


def test_tokenizer_loads_offline_and_wraps_cls_sep(tiny_domain_model: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    tokenizer = AutoTokenizer.from_pretrained(tiny_domain_model)
    ids = tokenizer("Sports match today.")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id == 1 and ids[-1] == tokenizer.sep_token_id == 2
    assert tokenizer.pad_token_id == 0 and tokenizer.unk_token_id == 3
    assert tokenizer.model_max_length == 1024
    assert len(tokenizer("a " * 5000, truncation=True, max_length=512)["input_ids"]) == 512


def test_predictions_differ_by_document_and_follow_the_topic(tiny_domain_model: Path):
    loaded = load_classifier_checkpoint(str(tiny_domain_model))
    texts, ids = synthetic_corpus(200, DOMAIN_LABELS, seed=999)  # held out: training used seed 0
    enc = loaded.tokenizer(texts, padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.no_grad():
        predicted = loaded.model(enc["input_ids"], enc["attention_mask"]).argmax(-1)
    assert len(set(predicted.tolist())) >= 20
    assert (predicted == torch.tensor(ids)).float().mean().item() >= 0.8


def test_build_is_deterministic_per_seed(tmp_path: Path):
    first = build_tiny_checkpoint(tmp_path / "a", QUALITY_LABELS, seed=5, **SMALL)
    second = build_tiny_checkpoint(tmp_path / "b", QUALITY_LABELS, seed=5, **SMALL)
    other = build_tiny_checkpoint(tmp_path / "c", QUALITY_LABELS, seed=6, **SMALL)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (first / name).read_bytes() == (second / name).read_bytes()
    assert (first / "model.safetensors").read_bytes() != (other / "model.safetensors").read_bytes()
    assert json.loads((first / "config.json").read_text())["base_model"] == str(
        (tmp_path / "a-base").resolve()
    )


def test_unknown_base_model_as_is_refused(tmp_path: Path):
    with pytest.raises(ValueError, match="base_model_as"):
        build_tiny_checkpoint(tmp_path / "x", QUALITY_LABELS, base_model_as="hub", **SMALL)
    assert not (tmp_path / "x").exists()


def test_base_sized_backbone_has_deberta_v3_base_size():
    with torch.device("meta"):  # shapes only: no 740 MB of random numbers
        net = build_classifier_model(BASE_SIZED_BACKBONE, len(DOMAIN_LABELS))
    params = sum(p.numel() for p in net.parameters())
    assert 183_000_000 < params < 186_000_000
    assert net.fc.weight.shape == (26, 768) and len(net.model.encoder.layer) == 12
    assert net.model.encoder.rel_embeddings.weight.shape == (512, 768)  # 2 * position_buckets


def test_random_base_sized_checkpoint_writes_the_public_layout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    shrunk = {**BASE_SIZED_BACKBONE, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 1}
    monkeypatch.setattr(tiny, "BASE_SIZED_BACKBONE", {**shrunk, "intermediate_size": 32, "vocab_size": 2000})
    out = tiny.random_base_sized_checkpoint(tmp_path / "base-sized", QUALITY_LABELS)
    loaded = load_classifier_checkpoint(str(out))
    assert loaded.labels == QUALITY_LABELS and loaded.model.model.config.vocab_size == 2000


def test_importing_the_models_package_has_no_side_effects():
    code = (
        "import os, sys; before = dict(os.environ); "
        "import hpc_classify.models, hpc_classify.models.hub, hpc_classify.models.registry_defaults; "
        "assert dict(os.environ) == before; assert 'torch' not in sys.modules, 'torch imported eagerly'"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSTARTUP"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
