"""A local path given as the model (`--model`, `DomainClassifier(model=...)`) that is no checkpoint
directory: a file, or a directory without config.json (a corpus), says so and what a checkpoint directory
holds, instead of a missing model.safetensors with advice to re-run fetch-models (which never fills a local
directory), or a "does not exist" for a file that exists. One check (models/hub.py, in resolve_model_dir)
serves the CLI, the Python API and the loaders; fetch-models stays the remedy for the Hugging Face cache's
snapshots only."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from hub_cache import cache_snapshot

from hpc_classify import DomainClassifier, run
from hpc_classify.cli.main import main
from hpc_classify.errors import CheckpointFormatError, ModelNotAvailableError
from hpc_classify.models.checkpoint_meta import checkpoint_hash
from hpc_classify.models.hub import resolve_model_dir
from hpc_classify.models.llama_guard import resolve_adapter_dir
from hpc_classify.models.tiny import DOMAIN_LABELS

CHECKPOINT_DIR_HINT = (
    "pass a checkpoint directory (it holds config.json, the model weights (model.safetensors) and the "
    "tokenizer files (tokenizer.json, a sentencepiece *.model or vocab.txt)) or a hub id such as "
    "nvidia/domain-classifier"
)


@pytest.fixture
def corpus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, offline_home: Path) -> Path:
    """`corpus/` with three JSONL shards, in the working directory (the paths are typed relative)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corpus").mkdir()
    for i in range(3):
        (tmp_path / "corpus" / f"shard-00{i}.jsonl").write_text('{"text": "a game"}\n')
    return tmp_path / "corpus"


def cli_error(capsys: pytest.CaptureFixture[str], model: str) -> str:
    assert main(["run", "--model", model, "--input", "corpus", "--output", "out"]) == 2
    return capsys.readouterr().err.strip()


def api_error(model: str) -> str:
    with pytest.raises(ModelNotAvailableError) as caught:
        run(DomainClassifier(model=model), "corpus", "out")
    return caught.value.one_line()


def test_a_corpus_directory_given_as_the_model(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    expected = (
        "corpus/ is not a checkpoint directory (no config.json; it holds 3 .jsonl files); "
        f"HINT: {CHECKPOINT_DIR_HINT}"
    )
    assert cli_error(capsys, "corpus/") == f"hpc-classify run: error: {expected}"
    assert api_error("corpus/") == expected
    assert not (corpus.parent / "out").exists()  # refused before anything was written


def test_a_file_given_as_the_model(corpus: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for model in ("corpus/shard-000.jsonl", os.path.join(corpus, "shard-001.jsonl")):
        expected = f"{model} is a file, not a checkpoint directory; HINT: {CHECKPOINT_DIR_HINT}"
        assert cli_error(capsys, model) == f"hpc-classify run: error: {expected}"
        assert api_error(model) == expected
    shutil.copy(corpus / "shard-000.jsonl", "shard.jsonl")  # no slash: an existing file, not a hub id
    assert api_error("shard.jsonl").startswith(
        "shard.jsonl is a file, not a checkpoint directory; HINT: pass"
    )


def test_a_file_of_a_checkpoint_names_its_directory(corpus: Path, tiny_domain_model: Path) -> None:
    (corpus.parent / "demo").mkdir()
    (corpus.parent / "demo" / "tiny-model").symlink_to(tiny_domain_model)
    assert api_error("demo/tiny-model/config.json").startswith(
        "demo/tiny-model/config.json is a file, not a checkpoint directory (did you mean its directory "
        "demo/tiny-model?); HINT: pass a checkpoint directory"
    )
    assert api_error("demo") == (
        "demo is not a checkpoint directory (no config.json; it holds 1 directory); "
        "HINT: pass the checkpoint directory itself, e.g. demo/tiny-model"
    )
    assert DomainClassifier(model="demo/tiny-model").load_labels() == DOMAIN_LABELS  # the checkpoint itself


def test_an_empty_directory_and_mixed_contents(corpus: Path) -> None:
    (corpus.parent / "empty").mkdir()
    with pytest.raises(
        ModelNotAvailableError, match=r"^empty is not a checkpoint directory \(no config.json; it is empty\)"
    ):
        resolve_model_dir("empty")
    for name in ("a.parquet", "b.parquet", "notes.txt", "README"):
        (corpus / name).write_text("")
    (corpus / "sub").mkdir()
    with pytest.raises(ModelNotAvailableError) as caught:
        resolve_model_dir(corpus)
    assert (
        "(no config.json; it holds 3 .jsonl files, 2 .parquet files, 1 .txt file, other files, 1 directory)"
        in str(caught.value)
    )


def test_a_real_checkpoint_directory_resolves(tiny_domain_model: Path) -> None:
    assert resolve_model_dir(tiny_domain_model) == tiny_domain_model.resolve()
    assert DomainClassifier(model=str(tiny_domain_model)).load_labels() == DOMAIN_LABELS


def test_a_lora_adapter_directory_is_judged_by_its_own_config_file(tmp_path: Path) -> None:
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(
        ModelNotAvailableError, match=r"adapter is not a checkpoint directory \(no adapter_config.json;"
    ):
        resolve_adapter_dir(str(adapter))
    (adapter / "adapter_config.json").write_text("{}")
    assert resolve_adapter_dir(str(adapter)) == adapter.resolve()


def test_fetch_models_is_the_remedy_only_inside_the_hub_cache(
    tiny_domain_model: Path, tmp_path: Path, offline_home: Path
) -> None:
    local = tmp_path / "local-model"
    shutil.copytree(tiny_domain_model, local)
    (local / "model.safetensors").unlink()
    with pytest.raises(CheckpointFormatError, match="model.safetensors is missing") as caught:
        checkpoint_hash(resolve_model_dir(local))
    assert "fetch-models" not in caught.value.hint and "where the checkpoint came from" in caught.value.hint

    files = {p.name: p for p in tiny_domain_model.iterdir() if p.name != "model.safetensors"}
    snapshot = cache_snapshot(offline_home / "hub", "org/tiny-domain", "d" * 40, files)
    with pytest.raises(CheckpointFormatError, match="model.safetensors is missing") as caught:
        checkpoint_hash(resolve_model_dir("org/tiny-domain"))
    assert caught.value.hint == "re-run `hpc-classify fetch-models` (the cached snapshot is incomplete)"
    (snapshot / "config.json").unlink()  # the snapshot's path given as a local directory
    with pytest.raises(ModelNotAvailableError, match="is not a checkpoint directory") as caught:
        resolve_model_dir(snapshot)
    assert caught.value.hint == "re-run `hpc-classify fetch-models` (the cached snapshot is incomplete)"
