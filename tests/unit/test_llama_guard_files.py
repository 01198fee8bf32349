"""LlamaGuard's files refused at load with a CheckpointFormatError naming them, not deep in the first
forward: a base model without tokenizer files or with a tokenizer larger than its embedding table, a damaged
guard net. On an untrained two-layer Llama (no training: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpc_classify.errors import CheckpointFormatError
from hpc_classify.models.llama_guard_loading import load_llama_guard, load_llama_guard_tokenizer

TEXTS = [f"Please tell me about gardens, birds and the weather, day {i}." for i in range(50)]


def save_tiny_llama(base_dir: Path, adapter_dir: Path, vocab_size: int) -> None:
    """meta-llama/LlamaGuard-7b's layout (config.json, model.safetensors) and an Aegis-style LoRA adapter."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
    )
    base = LlamaForCausalLM(config)
    base.save_pretrained(str(base_dir))
    lora = LoraConfig(r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM")
    get_peft_model(base, lora).save_pretrained(str(adapter_dir))


def save_tokenizer(base_dir: Path, vocab_size: int) -> int:
    from aegis_models import _train_tokenizer

    tokenizer = _train_tokenizer(TEXTS, vocab_size)
    tokenizer.save_pretrained(str(base_dir))
    return len(tokenizer)


def test_a_base_model_without_tokenizer_files_is_refused(tmp_path: Path):
    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    save_tiny_llama(base_dir, adapter_dir, vocab_size=300)
    for load in (
        lambda: load_llama_guard_tokenizer(base_dir),
        lambda: load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32),
    ):
        with pytest.raises(CheckpointFormatError, match=f"^{base_dir}: no tokenizer files") as info:
            load()
        assert "tokenizer.json" in info.value.hint


def test_a_tokenizer_larger_than_the_embedding_table_is_refused(tmp_path: Path):
    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    save_tiny_llama(base_dir, adapter_dir, vocab_size=100)
    size = save_tokenizer(base_dir, vocab_size=300)
    with pytest.raises(CheckpointFormatError, match=f"^{base_dir}: the tokenizer has {size} tokens") as info:
        load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
    assert "embedding table only 100 rows" in str(info.value)

    save_tiny_llama(base_dir, adapter_dir, vocab_size=size)  # its own tokenizer: loads
    assert len(load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32).tokenizer) == size


@pytest.mark.parametrize(
    "content",
    [b"\x00" * 100, b"version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n", b""],
)
def test_a_damaged_guard_net_names_its_file(tmp_path: Path, content: bytes):
    """As a classifier's damaged model.safetensors does: one CheckpointFormatError with the re-fetch hint."""
    from hpc_classify.models.llama_guard_loading import load_guard_net

    guard_dir = tmp_path / "guard"
    guard_dir.mkdir()
    (guard_dir / "config.json").write_text('{"dropout": 0.7, "input_dim": 32}')
    (guard_dir / "model.safetensors").write_bytes(content)
    path = guard_dir / "model.safetensors"
    with pytest.raises(CheckpointFormatError, match=f"^{path}: not a readable safetensors file") as info:
        load_guard_net(guard_dir, torch.device("cpu"))
    assert "hpc-classify fetch-models" in info.value.hint


def test_a_base_model_missing_a_weight_is_refused_not_initialised_at_random(tmp_path: Path):
    """transformers alone initialises it at random: another LlamaGuard in every worker, no error."""
    from safetensors.torch import load_file, save_file

    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    save_tiny_llama(base_dir, adapter_dir, vocab_size=300)
    size = save_tokenizer(base_dir, vocab_size=300)
    save_tiny_llama(base_dir, adapter_dir, vocab_size=size)
    weights = load_file(str(base_dir / "model.safetensors"))
    save_file(
        {k: v for k, v in weights.items() if k != "model.norm.weight"}, str(base_dir / "model.safetensors")
    )
    with pytest.raises(CheckpointFormatError) as info:
        load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
    assert str(info.value).splitlines()[0] == (
        f"{base_dir}: weights do not match the classifier built from its config: 1 missing key(s) ['model.norm.weight']"
    )
