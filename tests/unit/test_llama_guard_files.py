"""LlamaGuard's files refused at load with a CheckpointFormatError naming them, not deep in the first
forward (or never: an adapter weight left at its init): a base model without tokenizer files or with a
tokenizer larger than its embedding table, a LoRA adapter missing a weight, holding another or made for
another base model, a damaged guard net. On an untrained two-layer Llama (no training: fast)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from hpc_classify.errors import CheckpointFormatError
from hpc_classify.models.llama_guard_loading import load_llama_guard, load_llama_guard_tokenizer

TEXTS = [f"Please tell me about gardens, birds and the weather, day {i}." for i in range(50)]


def save_tiny_llama(base_dir: Path, adapter_dir: Path, vocab_size: int, hidden_size: int = 16) -> None:
    """meta-llama/LlamaGuard-7b's layout (config.json, model.safetensors) and an Aegis-style LoRA adapter
    (random B matrices, as after training: applied, it changes the model's outputs)."""
    from peft import LoraConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=128,
    )
    base = LlamaForCausalLM(config)
    base.save_pretrained(str(base_dir))
    lora = LoraConfig(
        r=2, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
    )
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


ADAPTER_KEY = "base_model.model.model.layers.{layer}.self_attn.{module}.lora_{ab}.weight"
MISMATCH = "weights do not match the classifier built from its config"


def save_tiny_guard(tmp_path: Path) -> tuple[Path, Path]:
    base_dir, adapter_dir = tmp_path / "base", tmp_path / "adapter"
    save_tiny_llama(base_dir, adapter_dir, vocab_size=300)
    save_tiny_llama(base_dir, adapter_dir, vocab_size=save_tokenizer(base_dir, vocab_size=300))
    return base_dir, adapter_dir


def rewrite_adapter(adapter_dir: Path, edit) -> Path:
    from safetensors.torch import load_file, save_file

    path = adapter_dir / "adapter_model.safetensors"
    weights = load_file(str(path))
    assert len(weights) == 8  # 2 layers x (q_proj, v_proj) x (A, B)
    save_file(edit(weights), str(path))
    return path


def test_an_adapter_missing_a_weight_is_refused_not_left_at_its_init(tmp_path: Path):
    """peft alone leaves that LoRA B at zero: the adapter is partly a no-op, every worker loads it, no error."""
    base_dir, adapter_dir = save_tiny_guard(tmp_path)
    key = ADAPTER_KEY.format(layer=1, module="v_proj", ab="B")
    path = rewrite_adapter(adapter_dir, lambda w: {k: v for k, v in w.items() if k != key})
    with pytest.raises(CheckpointFormatError) as info:
        load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
    assert str(info.value).splitlines()[0] == f"{path}: {MISMATCH}: 1 missing key(s) ['{key}']"
    assert "adapter_config.json's target modules (['q_proj', 'v_proj'])" in info.value.hint


def test_an_adapter_without_its_weights_file_is_refused_naming_it(tmp_path: Path):
    """peft took the directory for a hub id then: an error about the hub, not the missing file."""
    base_dir, adapter_dir = save_tiny_guard(tmp_path)
    path = adapter_dir / "adapter_model.safetensors"
    path.unlink()
    with pytest.raises(CheckpointFormatError) as info:
        load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
    assert str(info.value).splitlines()[0] == f"{path} is missing"
    assert "hpc-classify fetch-models" in info.value.hint


def test_an_adapter_with_a_weight_of_another_module_is_refused(tmp_path: Path):
    """A tensor under another target module's name: peft alone drops it and keeps the zero B it replaces."""
    base_dir, adapter_dir = save_tiny_guard(tmp_path)
    key = ADAPTER_KEY.format(layer=0, module="q_proj", ab="B")
    other = ADAPTER_KEY.format(layer=0, module="k_proj", ab="B")
    path = rewrite_adapter(adapter_dir, lambda w: {(other if k == key else k): v for k, v in w.items()})
    with pytest.raises(CheckpointFormatError) as info:
        load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
    assert str(info.value).splitlines()[0] == (
        f"{path}: {MISMATCH}: 1 missing key(s) ['{key}']; 1 unexpected key(s) ['{other}']"
    )


def test_an_adapter_for_another_base_model_is_refused_naming_its_file(tmp_path: Path):
    """Other shapes: peft raised a bare RuntimeError naming neither the file nor what to do."""
    base_dir, adapter_dir = save_tiny_guard(tmp_path)
    other = tmp_path / "other"
    save_tiny_llama(other / "base", other / "adapter", vocab_size=300, hidden_size=32)
    path = other / "adapter" / "adapter_model.safetensors"
    with pytest.raises(CheckpointFormatError) as info:
        load_llama_guard(base_dir, other / "adapter", torch.device("cpu"), torch.float32)
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"{path}: the LoRA adapter does not fit the base model (RuntimeError: ")
    key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.default.weight"
    assert f"size mismatch for {key}: copying a param with shape torch.Size([2, 32])" in first
    assert "LlamaGuard-7b" in info.value.hint


def test_the_adapter_loads_as_peft_loads_it_and_changes_the_outputs(tmp_path: Path):
    """The strict load is peft's: the same logits as PeftModel.from_pretrained, other than the bare base's."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_dir, adapter_dir = save_tiny_guard(tmp_path)
    loaded = load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
    ids = loaded.tokenizer(TEXTS[:3], return_tensors="pt", padding=True)
    bare = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32).eval()
    with torch.no_grad():
        got = loaded.model(**ids).logits
        plain = bare(**ids).logits
        reference = PeftModel.from_pretrained(bare, str(adapter_dir)).eval()(**ids).logits
    assert torch.equal(got, reference)
    assert (got - plain).abs().max() > 1e-3  # the adapter is applied


def test_transformers_report_of_a_missing_base_weight_is_replaced_by_the_error(tmp_path: Path):
    """transformers logs "newly initialized" for it before our error: a misleading line, dropped. A base model
    that loads lets transformers' warnings out as before."""
    import logging

    from safetensors.torch import load_file, save_file

    from hpc_classify.models.held_warnings import TRANSFORMERS_LOAD_LOGGER

    base_dir, adapter_dir = save_tiny_guard(tmp_path)
    weights = load_file(str(base_dir / "model.safetensors"))
    weights["model.unused.weight"] = torch.zeros(1)  # unexpected: reported by transformers, harmless
    save_file(weights, str(base_dir / "model.safetensors"))
    seen: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: seen.append(record.getMessage())
    logging.getLogger(TRANSFORMERS_LOAD_LOGGER).addHandler(handler)
    try:
        load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
        assert len(seen) == 1 and "model.unused.weight" in seen[0]
        seen.clear()
        del weights["lm_head.weight"]
        save_file(weights, str(base_dir / "model.safetensors"))
        with pytest.raises(CheckpointFormatError, match=r"1 missing key\(s\) \['lm_head.weight'\]"):
            load_llama_guard(base_dir, adapter_dir, torch.device("cpu"), torch.float32)
        assert seen == []
    finally:
        logging.getLogger(TRANSFORMERS_LOAD_LOGGER).removeHandler(handler)


def test_held_warnings_are_let_out_on_release_and_dropped_otherwise(caplog):
    import logging

    from hpc_classify.models.held_warnings import held_warnings

    log = logging.getLogger("hpc_classify.tests.held")
    with caplog.at_level(logging.INFO, logger=log.name):
        with held_warnings(log.name) as release:
            log.warning("kept")
            log.info("passes")
            release()
            log.warning("after")
        with pytest.raises(KeyError), held_warnings(log.name):
            log.warning("dropped")
            raise KeyError
        log.warning("unheld")
    assert [r.getMessage() for r in caplog.records] == ["passes", "kept", "after", "unheld"]
