"""Checkpoint loading: exact equality with plain transformers, strict keys, label order, offline hub behaviour."""

from __future__ import annotations

import fnmatch
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from hub_cache import cache_snapshot
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, DebertaV2Config, DebertaV2Model

from hpc_classify.errors import CheckpointFormatError, ModelNotAvailableError
from hpc_classify.models.checkpoint import checkpoint_hash, labels_from_config, load_classifier_checkpoint
from hpc_classify.models.hub import CLASSIFIER_FILE_PATTERNS, resolve_base_config, resolve_model_dir
from hpc_classify.models.tiny import DOMAIN_LABELS, QUALITY_LABELS, synthetic_corpus

HEAD_KEYS = ("base_model", "fc_dropout", "id2label", "label2id")


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def reference_probabilities(model_dir: Path, texts: list[str]) -> torch.Tensor:
    """Plain transformers + safetensors, no package code: the reference the loader must equal."""
    config = json.loads((model_dir / "config.json").read_text())
    if "model_type" not in config:
        config = json.loads((Path(config["base_model"]) / "config.json").read_text())
    backbone = DebertaV2Model(
        DebertaV2Config(**{k: v for k, v in config.items() if k not in HEAD_KEYS})
    ).eval()
    weights = load_file(str(model_dir / "model.safetensors"))
    backbone.load_state_dict({k[len("model.") :]: v for k, v in weights.items() if k.startswith("model.")})
    enc = AutoTokenizer.from_pretrained(model_dir)(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = backbone(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).last_hidden_state
        return torch.softmax(hidden[:, 0, :] @ weights["fc.weight"].T + weights["fc.bias"], dim=-1)


@pytest.mark.parametrize(
    ("fixture", "labels"), [("tiny_domain_model", DOMAIN_LABELS), ("tiny_quality_model", QUALITY_LABELS)]
)
def test_probabilities_equal_plain_transformers(
    request: pytest.FixtureRequest, fixture: str, labels: list[str]
):
    model_dir: Path = request.getfixturevalue(fixture)
    texts, _ = synthetic_corpus(24, labels, seed=11)
    loaded = load_classifier_checkpoint(str(model_dir))
    assert not loaded.model.training
    enc = loaded.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        got = torch.softmax(loaded.model(enc["input_ids"], enc["attention_mask"]), dim=-1)
    want = reference_probabilities(model_dir, texts)
    assert got.shape == (24, len(labels))
    assert (got - want).abs().max().item() <= 1e-5
    assert loaded.labels == labels
    assert loaded.model_dir == model_dir.resolve()
    assert (
        loaded.checkpoint_hash
        == hashlib.sha256((model_dir / "model.safetensors").read_bytes()).hexdigest()[:16]
    )
    assert loaded.config == json.loads((model_dir / "config.json").read_text())


def test_dtype_and_device_are_applied(tiny_quality_model: Path):
    loaded = load_classifier_checkpoint(str(tiny_quality_model), dtype=torch.bfloat16)
    assert {p.dtype for p in loaded.model.parameters()} == {torch.bfloat16}
    assert {p.device.type for p in loaded.model.parameters()} == {"cpu"}
    assert loaded.model.model.embeddings.position_ids[0, :4].tolist() == [0, 1, 2, 3]


def test_labels_follow_id2label_sorted_as_integers():
    config = {
        "id2label": {"10": "k", "2": "c", "0": "a", "1": "b", **{str(i): chr(97 + i) for i in range(3, 10)}}
    }
    assert labels_from_config(config, "m") == list("abcdefghijk")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "no id2label"),
        ({"id2label": {"a": "x"}}, "must be integers"),
        ({"id2label": {"0": "x", "2": "y"}}, "must be 0..1"),
    ],
)
def test_bad_id2label_is_a_checkpoint_format_error(config: dict, message: str):
    with pytest.raises(CheckpointFormatError, match=message):
        labels_from_config(config, "some/model")


def test_missing_and_unexpected_keys_are_listed(tiny_quality_model: Path, tmp_path: Path):
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    weights = load_file(str(model_dir / "model.safetensors"))
    del weights["fc.bias"]
    weights["classifier.weight"] = torch.zeros(3, 64)
    save_file(weights, str(model_dir / "model.safetensors"))
    with pytest.raises(CheckpointFormatError) as info:
        load_classifier_checkpoint(str(model_dir))
    assert "1 missing key(s) ['fc.bias']" in str(info.value)
    assert "1 unexpected key(s) ['classifier.weight']" in str(info.value)
    assert info.value.hint and "fc.weight" in info.value.hint


def test_legacy_position_ids_buffer_is_tolerated(tiny_quality_model: Path, tmp_path: Path):
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    weights = load_file(str(model_dir / "model.safetensors"))
    weights["model.embeddings.position_ids"] = torch.arange(1024).expand(1, -1).contiguous()
    save_file(weights, str(model_dir / "model.safetensors"))
    assert load_classifier_checkpoint(str(model_dir)).labels == QUALITY_LABELS


def test_shape_mismatch_names_the_configuration(tiny_domain_model: Path, tmp_path: Path):
    model_dir = copy_model(tiny_domain_model, tmp_path / "m")
    base = tmp_path / "other-base"
    base.mkdir()
    backbone = json.loads(
        (tiny_domain_model.parent / f"{tiny_domain_model.name}-base" / "config.json").read_text()
    )
    (base / "config.json").write_text(json.dumps({**backbone, "vocab_size": backbone["vocab_size"] + 1}))
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "base_model": str(base)}))
    with pytest.raises(CheckpointFormatError, match="shapes do not match"):
        load_classifier_checkpoint(str(model_dir))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: {k: v for k, v in c.items() if k not in ("model_type", "base_model")},
            "neither model_type nor",
        ),
        (lambda c: {**c, "model_type": "bert"}, "model_type 'bert' is not supported"),
    ],
)
def test_config_without_a_usable_architecture(tiny_quality_model: Path, tmp_path: Path, edit, message: str):
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    (model_dir / "config.json").write_text(
        json.dumps(edit(json.loads((model_dir / "config.json").read_text())))
    )
    with pytest.raises(CheckpointFormatError, match=message):
        load_classifier_checkpoint(str(model_dir))


def test_missing_weights_file(tiny_quality_model: Path, tmp_path: Path):
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    (model_dir / "model.safetensors").rename(model_dir / "pytorch_model.bin")
    with pytest.raises(
        CheckpointFormatError, match=r"model.safetensors is missing \(found pytorch_model.bin"
    ):
        load_classifier_checkpoint(str(model_dir))


def test_inline_architecture_never_resolves_base_model(
    tiny_quality_model: Path, tmp_path: Path, offline_home: Path
):
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "config.json").write_text(json.dumps({**config, "base_model": "nobody/not-cached-anywhere"}))
    assert load_classifier_checkpoint(str(model_dir)).labels == QUALITY_LABELS


def test_offline_with_local_base_model_dir_holding_only_config(tiny_domain_model: Path, offline_home: Path):
    base = Path(json.loads((tiny_domain_model / "config.json").read_text())["base_model"])
    assert base.is_absolute() and [p.name for p in base.iterdir()] == ["config.json"]
    loaded = load_classifier_checkpoint(str(tiny_domain_model))
    assert loaded.labels == DOMAIN_LABELS
    assert not any(offline_home.iterdir())  # nothing fetched, nothing cached


def test_model_not_in_cache_is_one_clear_error(offline_home: Path):
    with pytest.raises(OSError) as info:  # NeMo: transformers' OSError; ours is one too
        load_classifier_checkpoint("nvidia/domain-classifier", revision="v1.0")
    assert isinstance(info.value, ModelNotAvailableError)
    message = str(info.value)
    assert "'nvidia/domain-classifier' (revision v1.0)" in message and "HF_HUB_OFFLINE=1" in message
    assert "hpc-classify fetch-models --classifier domain --revision v1.0" in message
    assert str(offline_home) in message
    assert "local_files_only" not in message  # the hub client's advice is no option of ours
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_hub_errors_lose_the_clients_advice_about_its_own_arguments():
    from huggingface_hub.errors import LocalEntryNotFoundError

    from hpc_classify.models.hub import hub_failure_reason

    error = LocalEntryNotFoundError(
        "Cannot find the requested files in the disk cache and outgoing traffic has been disabled. "
        "To enable hf.co look-ups and downloads online, set 'local_files_only' to False."
    )
    assert hub_failure_reason(error) == (
        "LocalEntryNotFoundError: Cannot find the requested files in the disk cache and outgoing traffic has "
        "been disabled."
    )
    quoted = LocalEntryNotFoundError(
        "Not cached. To enable downloads, pass 'local_files_only=False' as input."
    )
    assert hub_failure_reason(quoted) == "LocalEntryNotFoundError: Not cached."


def test_base_model_not_in_cache_is_one_clear_error(offline_home: Path):
    with pytest.raises(
        ModelNotAvailableError, match="base model config of 'microsoft/deberta-v3-base'"
    ) as info:
        resolve_base_config("microsoft/deberta-v3-base")
    assert "fetch-models" in str(info.value) and info.value.__suppress_context__


def test_missing_local_path_is_not_looked_up_on_the_hub(tmp_path: Path, offline_home: Path):
    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_model_dir(str(tmp_path / "no" / "such" / "dir"))


def test_hub_cache_stand_in_is_found_offline(tiny_domain_model: Path, tmp_path: Path, offline_home: Path):
    staged = copy_model(tiny_domain_model, tmp_path / "staged")
    base_config = Path(json.loads((staged / "config.json").read_text())["base_model"]) / "config.json"
    config = json.loads((staged / "config.json").read_text())
    (staged / "config.json").write_text(json.dumps({**config, "base_model": "org/tiny-base"}))
    hub = offline_home / "hub"
    snapshot = cache_snapshot(hub, "org/tiny-domain", "a" * 40, {p.name: p for p in staged.iterdir()})
    cache_snapshot(hub, "org/tiny-base", "b" * 40, {"config.json": base_config})

    loaded = load_classifier_checkpoint("org/tiny-domain")
    assert loaded.model_dir == snapshot
    assert loaded.labels == DOMAIN_LABELS
    # The blob name (sha256 of an LFS file) is used as is, and equals the content hash.
    assert loaded.checkpoint_hash == checkpoint_hash(tiny_domain_model)
    assert resolve_base_config("org/tiny-base") == json.loads(base_config.read_text())


def test_a_cached_hub_id_is_found_beside_a_folder_named_like_its_organisation(
    tiny_domain_model: Path, tmp_path: Path, offline_home: Path, monkeypatch: pytest.MonkeyPatch
):
    """`org/name` with an `org/` folder in the working directory is a (mistyped) local path, unless the hub
    cache holds `org/name`: then it is the hub id, as for fetch-models."""
    staged = copy_model(tiny_domain_model, tmp_path / "staged")
    snapshot = cache_snapshot(
        offline_home / "hub", "org/tiny-domain", "c" * 40, {p.name: p for p in staged.iterdir()}
    )
    (tmp_path / "work" / "org").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "work")
    assert resolve_model_dir("org/tiny-domain") == snapshot
    with pytest.raises(ModelNotAvailableError, match=r"(?s)does not exist.*because org is a local directory"):
        resolve_model_dir("org/not-cached")


@pytest.mark.parametrize(
    ("hf_hub_offline", "transformers_offline", "offline"),
    [
        (None, None, False),
        ("1", None, True),
        (None, "1", True),
        ("0", "1", False),
        ("1", "0", True),
        ("", "1", True),
    ],
)
def test_offline_is_read_as_the_hub_client_reads_it(
    monkeypatch, hf_hub_offline, transformers_offline, offline
):
    """HF_HUB_OFFLINE, when set, decides (so `HF_HUB_OFFLINE=0 hpc-classify fetch-models` works where a site
    sets TRANSFORMERS_OFFLINE=1); else TRANSFORMERS_OFFLINE."""
    from hpc_classify.models.hub import hub_offline, offline_variable

    for name, value in (("HF_HUB_OFFLINE", hf_hub_offline), ("TRANSFORMERS_OFFLINE", transformers_offline)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert hub_offline() is offline
    assert offline_variable() == (
        None if not offline else "HF_HUB_OFFLINE" if hf_hub_offline else "TRANSFORMERS_OFFLINE"
    )


def test_a_torn_config_is_a_clear_error_when_labels_are_read(tiny_domain_model: Path, tmp_path: Path):
    from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier

    model_dir = copy_model(tiny_domain_model, tmp_path / "m")
    (model_dir / "config.json").write_text("{")
    with pytest.raises(CheckpointFormatError, match=r"config.json is not valid JSON"):
        DomainClassifier(model=str(model_dir)).get_labels()


def test_file_patterns_cover_every_file_the_loader_reads(tiny_domain_model: Path):
    names = [p.name for p in tiny_domain_model.iterdir()]
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= set(names)
    assert all(any(fnmatch.fnmatch(n, pat) for pat in CLASSIFIER_FILE_PATTERNS) for n in names)
    assert not any(fnmatch.fnmatch("pytorch_model.bin", pat) for pat in CLASSIFIER_FILE_PATTERNS)
    assert any(fnmatch.fnmatch("spm.model", pat) for pat in CLASSIFIER_FILE_PATTERNS)


def test_checkpoint_hash_follows_content_changes(tiny_quality_model: Path, tmp_path: Path):
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    first = checkpoint_hash(model_dir)
    (model_dir / "model.safetensors").write_bytes(b"different")
    assert checkpoint_hash(model_dir) == hashlib.sha256(b"different").hexdigest()[:16] != first


def test_sentencepiece_only_tokenizer_loads_or_names_the_missing_package(
    tiny_quality_model: Path, tmp_path: Path
):
    """Some checkpoints ship only spm.model: transformers 5 needs protobuf to convert it."""
    import sentencepiece as spm

    model_dir = tmp_path / "m"
    model_dir.mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(tiny_quality_model / name, model_dir / name)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(synthetic_corpus(200, QUALITY_LABELS, seed=1)[0]))
    spm.SentencePieceTrainer.train(
        input=str(corpus), model_prefix=str(model_dir / "spm"), vocab_size=200, pad_id=0, bos_id=1, eos_id=2,
        unk_id=3, pad_piece="[PAD]", bos_piece="[CLS]", eos_piece="[SEP]", unk_piece="[UNK]", minloglevel=2,
    )  # fmt: skip
    (model_dir / "spm.vocab").unlink()
    special = {"cls_token": "[CLS]", "sep_token": "[SEP]", "pad_token": "[PAD]", "unk_token": "[UNK]"}
    (model_dir / "tokenizer_config.json").write_text(
        json.dumps({"tokenizer_class": "DebertaV2Tokenizer", **special})
    )
    try:
        import google.protobuf  # noqa: F401

        has_protobuf = True
    except ImportError:
        has_protobuf = False
    if has_protobuf:
        assert load_classifier_checkpoint(str(model_dir)).tokenizer("High quality.")["input_ids"][0] == 1
    else:
        with pytest.raises(CheckpointFormatError, match="cannot load the tokenizer") as info:
            load_classifier_checkpoint(str(model_dir))
        assert "pip install protobuf" in info.value.hint


@pytest.mark.parametrize("keep", [(), ("tokenizer_config.json",)])
def test_a_checkpoint_without_tokenizer_files_is_refused(tiny_quality_model: Path, tmp_path: Path, keep):
    """With the architecture inline, transformers 5 would build an empty 7-token tokenizer from config.json:
    every word [UNK], confident predictions all the same. The loader and the fingerprint refuse instead."""
    from hpc_classify.models.checkpoint_meta import tokenizer_hash

    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        if name not in keep:
            (model_dir / name).unlink()
    for load in (lambda: load_classifier_checkpoint(str(model_dir)), lambda: tokenizer_hash(model_dir)):
        with pytest.raises(CheckpointFormatError, match=f"^{model_dir}: no tokenizer files") as info:
            load()
        assert all(name in info.value.hint for name in ("tokenizer.json", "spm.model", "vocab.txt"))


def test_a_vocabulary_under_another_name_counts_in_the_tokenizer_hash(tmp_path: Path) -> None:
    """A lone sentencepiece model named tokenizer.model is what the tokenizer reads: a new one is another
    model for the fingerprint, while a file the tokenizer never reads changes nothing."""
    from hpc_classify.models.checkpoint_meta import tokenizer_hash

    (tmp_path / "tokenizer_config.json").write_text("{}")
    vocabulary = tmp_path / "tokenizer.model"
    vocabulary.write_bytes(b"first vocabulary")
    before = tokenizer_hash(tmp_path)
    (tmp_path / "README.md").write_text("notes")
    assert tokenizer_hash(tmp_path) == before
    vocabulary.write_bytes(b"other vocabulary")
    os.utime(vocabulary, (1, 1))  # another mtime too: the hash cache is keyed by size and mtime
    assert tokenizer_hash(tmp_path) != before
    # Beside tokenizer.json (what the tokenizer reads then) it is not read: the hash stays the one outputs
    # were fingerprinted with before it counted.
    (tmp_path / "tokenizer.json").write_text("{}")
    with_json = tokenizer_hash(tmp_path)
    vocabulary.unlink()
    assert tokenizer_hash(tmp_path) == with_json


def with_extra_tokens(model_dir: Path, count: int) -> int:
    """Rewrites the checkpoint's tokenizer with `count` more tokens; returns its new size."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.add_tokens([f"extra_token_{i}" for i in range(count)])
    tokenizer.save_pretrained(str(model_dir))
    return len(tokenizer)


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(tiny_quality_model: Path, tmp_path: Path):
    """Its extra ids would fail in the first forward (IndexError; a device-side assert on a GPU)."""
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    rows = json.loads((model_dir / "config.json").read_text())["vocab_size"]
    size = with_extra_tokens(model_dir, 5)
    with pytest.raises(CheckpointFormatError, match=f"^{model_dir}: the tokenizer has {size} tokens") as info:
        load_classifier_checkpoint(str(model_dir))
    assert f"embedding table only {rows} rows" in str(info.value)
    assert "do not belong to this checkpoint" in info.value.hint


def test_a_tokenizer_smaller_than_the_embedding_table_is_normal(tiny_quality_model: Path, tmp_path: Path):
    """DeBERTa-v3 pads its table: 128,100 rows for 128,001 tokens."""
    model_dir = copy_model(tiny_quality_model, tmp_path / "m")
    config = json.loads((model_dir / "config.json").read_text())
    weights = load_file(str(model_dir / "model.safetensors"))
    table = weights["model.embeddings.word_embeddings.weight"]
    weights["model.embeddings.word_embeddings.weight"] = torch.cat([table, torch.zeros(14, table.shape[1])])
    save_file(weights, str(model_dir / "model.safetensors"))
    (model_dir / "config.json").write_text(json.dumps({**config, "vocab_size": config["vocab_size"] + 14}))
    loaded = load_classifier_checkpoint(str(model_dir))
    assert len(loaded.tokenizer) == config["vocab_size"]
