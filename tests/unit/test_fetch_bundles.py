"""The LlamaGuard bundles (aegis, aegis-permissive, instruction-data-guard) in a cache of the hub's exact
layout (tests/hub_cache.py), read by the real huggingface_hub client offline: the pins fetch-models prints
are commits that `@REVISION` can take, and a base model whose weight shards are not all there is refused by
name, with the command that completes it, by fetch-models' check, the resolution, the loader and the
fingerprint alike (no tree listing: the hub client finds such a snapshot complete)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from hub_cache import cache_snapshot

from hpc_classify.cli.main import main
from hpc_classify.errors import CheckpointFormatError, ModelNotAvailableError
from hpc_classify.models import llama_guard as lg
from hpc_classify.models.fetch import fetch_models
from hpc_classify.models.llama_guard_loading import load_llama_guard

BASE_COMMIT, ADAPTER_COMMIT, GUARD_COMMIT, COMPLETE_COMMIT = "c" * 40, "d" * 40, "e" * 40, "f" * 40
FETCH_AEGIS = "hpc-classify fetch-models --classifier aegis"


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache (HF_HOME/hub) compute nodes read, offline."""
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "hf" / "hub"


def _files(directory: Path) -> dict[str, Path]:
    return {p.name: p for p in directory.iterdir() if p.is_file()}


def _write(directory: Path, files: dict[str, bytes]) -> dict[str, Path]:
    directory.mkdir(parents=True)
    for name, data in files.items():
        (directory / name).write_bytes(data)
    return _files(directory)


def test_the_pins_fetch_models_prints_are_commits_the_pinned_repositories_have(offline, tmp_path, capsys):
    """@REVISION pins a bundle's adapter (aegis) or guard net (instruction-data-guard), never the LlamaGuard
    base: one pin per classifier, with that repository's commit, and the line runs."""
    base = _write(
        tmp_path / "base", {"config.json": b"{}", "tokenizer.json": b"{}", "model.safetensors": b"W"}
    )
    adapter = _write(tmp_path / "adapter", {"adapter_config.json": b"{}", lg.ADAPTER_WEIGHTS: b"A"})
    guard = _write(tmp_path / "guard", {"config.json": b"{}", "model.safetensors": b"G"})
    cache_snapshot(offline, lg.LLAMA_GUARD_BASE, BASE_COMMIT, base)
    cache_snapshot(offline, lg.AEGIS_DEFENSIVE, ADAPTER_COMMIT, adapter)
    cache_snapshot(offline, lg.INSTRUCTION_DATA_GUARD, GUARD_COMMIT, guard)

    assert main(["fetch-models", "--classifier", "aegis", "instruction-data-guard"]) == 0
    out = capsys.readouterr().out.splitlines()
    [pin_line] = [line for line in out if line.startswith("pin these commits: ")]
    pins = f"aegis@{ADAPTER_COMMIT} instruction-data-guard@{GUARD_COMMIT}"
    assert pin_line == f"pin these commits: hpc-classify fetch-models --classifier {pins}"
    base_note = f"{lg.LLAMA_GUARD_BASE} at main (now commit {BASE_COMMIT})"
    assert f"    aegis also loads {base_note}, which aegis@REVISION does not pin" in out
    assert (
        f"    instruction-data-guard also loads {base_note}, which instruction-data-guard@REVISION does not pin"
        in out
    )

    command = pin_line.removeprefix("pin these commits: ").split()
    assert main(command[1:]) == 0, capsys.readouterr().err  # every pin is a commit of what it pins
    fetched = fetch_models(command[3:])
    assert [(item.repo_id, item.commit) for item in fetched if item.revision != "main"] == [
        (lg.AEGIS_DEFENSIVE, ADAPTER_COMMIT),
        (lg.INSTRUCTION_DATA_GUARD, GUARD_COMMIT),
    ]


@pytest.fixture(scope="module")
def sharded_llama_guard(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(base, adapter): an untrained two-layer Llama saved in shards as meta-llama/LlamaGuard-7b is
    (model.safetensors.index.json, model-0000N-of-0000M.safetensors), its tokenizer, a LoRA adapter."""
    from peft import LoraConfig, get_peft_model
    from test_llama_guard_files import save_tokenizer
    from transformers import LlamaConfig, LlamaForCausalLM

    root = tmp_path_factory.mktemp("sharded-llama-guard")
    base_dir, adapter_dir = root / "base", root / "adapter"
    size = save_tokenizer(base_dir, vocab_size=300)
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
    )
    model = LlamaForCausalLM(config)
    model.save_pretrained(str(base_dir), max_shard_size="20KB")
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(model, lora).save_pretrained(str(adapter_dir))
    assert (base_dir / "model.safetensors.index.json").is_file() and len(list(base_dir.glob("model-*"))) >= 2
    return base_dir, adapter_dir


def _last_shard(base_dir: Path) -> str:
    return sorted(p.name for p in base_dir.glob("model-*.safetensors"))[-1]


def test_a_cached_base_missing_a_weight_shard_is_refused_by_name(sharded_llama_guard, offline):
    from hpc_classify import AegisClassifier

    base_dir, adapter_dir = sharded_llama_guard
    dropped = _last_shard(base_dir)
    files = _files(base_dir)
    snapshot = cache_snapshot(
        offline, lg.LLAMA_GUARD_BASE, BASE_COMMIT, {n: p for n, p in files.items() if n != dropped}
    )
    adapter = cache_snapshot(offline, lg.AEGIS_DEFENSIVE, ADAPTER_COMMIT, _files(adapter_dir))
    listed = f"{dropped} (a shard model.safetensors.index.json lists)"

    with pytest.raises(CheckpointFormatError) as checked:  # fetch-models' check of the cache
        fetch_models(["aegis"])
    assert (
        listed in str(checked.value)
        and f"`HF_HUB_OFFLINE=0 {FETCH_AEGIS} --revision main" in checked.value.hint
    )

    def refused(call) -> ModelNotAvailableError:
        with pytest.raises(ModelNotAvailableError) as error:
            call()
        message = str(error.value)
        assert (
            f"base model '{lg.LLAMA_GUARD_BASE}' (LlamaGuard) is incomplete: {snapshot} has no {listed}"
            in message
        )
        assert f"`HF_HUB_OFFLINE=0 {FETCH_AEGIS}`" in error.value.hint
        return error.value

    refused(lambda: lg.resolve_base_dir(lg.LLAMA_GUARD_BASE))
    refused(lambda: load_llama_guard(snapshot, adapter, torch.device("cpu"), torch.float32))
    refused(lambda: AegisClassifier(device_type="cpu").model_fingerprint())  # hashed 2 of 3 shards

    # The complete snapshot (main moves on: a fetch completed it) resolves, loads and is fingerprinted.
    complete = cache_snapshot(offline, lg.LLAMA_GUARD_BASE, COMPLETE_COMMIT, files)
    assert lg.resolve_base_dir(lg.LLAMA_GUARD_BASE) == complete
    assert load_llama_guard(complete, adapter, torch.device("cpu"), torch.float32).hidden_size == 16
    assert len(AegisClassifier(device_type="cpu").model_fingerprint()["base_model_hash"]) == 16
    assert [item.commit for item in fetch_models(["aegis"])] == [COMPLETE_COMMIT, ADAPTER_COMMIT]


def test_a_local_base_directory_missing_a_weight_shard_is_refused(sharded_llama_guard, tmp_path):
    base_dir, _ = sharded_llama_guard
    local = tmp_path / "LlamaGuard-7b"
    shutil.copytree(base_dir, local)
    dropped = _last_shard(local)
    (local / dropped).unlink()
    with pytest.raises(ModelNotAvailableError, match=f"is incomplete: {local} has no {dropped}") as error:
        lg.resolve_base_dir(str(local))
    assert f"copy the complete model into {local}" in error.value.hint and FETCH_AEGIS in error.value.hint

    (local / "model.safetensors.index.json").unlink()
    with pytest.raises(
        ModelNotAvailableError, match="has no model.safetensors \\(or model.safetensors.index"
    ):
        lg.resolve_base_dir(str(local))
