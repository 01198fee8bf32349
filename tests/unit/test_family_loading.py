"""Loading the prompt task/complexity (multi-head) and FineWeb-Edu checkpoints: a tokenizer that does not
belong to the weights is refused at load, naming both sizes, not deep in the first forward."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from hpc_classify.errors import CheckpointFormatError
from hpc_classify.models.multihead import load_multihead_checkpoint


def copy_with_extra_tokens(model_dir: Path, out: Path, count: int = 5) -> tuple[Path, int]:
    shutil.copytree(model_dir, out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    tokenizer.add_tokens([f"extra_token_{i}" for i in range(count)])
    tokenizer.save_pretrained(str(out))
    return out, len(tokenizer)


def test_multihead_refuses_a_tokenizer_larger_than_its_embedding_table(
    tiny_prompt_complexity_model: Path, tmp_path: Path
):
    rows = len(AutoTokenizer.from_pretrained(tiny_prompt_complexity_model))
    model_dir, size = copy_with_extra_tokens(tiny_prompt_complexity_model, tmp_path / "m")
    with pytest.raises(CheckpointFormatError, match=f"^{model_dir}: the tokenizer has {size} tokens") as info:
        load_multihead_checkpoint(str(model_dir))
    assert f"embedding table only {rows} rows" in str(info.value)
    assert "do not belong to this checkpoint" in info.value.hint


def test_fineweb_refuses_a_tokenizer_larger_than_its_embedding_table(
    tiny_fineweb_model: Path, tmp_path: Path
):
    from hpc_classify import FineWebEduClassifier

    model_dir, size = copy_with_extra_tokens(tiny_fineweb_model, tmp_path / "m")
    classifier = FineWebEduClassifier(model=str(model_dir), device_type="cpu", autocast=False)
    with pytest.raises(CheckpointFormatError, match=f"^{model_dir}: the tokenizer has {size} tokens"):
        classifier.load_components(torch.device("cpu"))


def test_a_half_precision_multihead_checkpoint_loads_in_fp32(
    tiny_prompt_complexity_model: Path, tmp_path: Path
):
    """As the single-head loader does: the file's fp16 would otherwise stay, whatever precision the engine
    was asked for (and the CPU's tiled attention kernel refuses fp16: 'float32 or bfloat16 expected')."""
    from safetensors.torch import load_file, save_file

    from hpc_classify.engine import InferenceEngine

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_prompt_complexity_model, model_dir)
    weights = load_file(str(model_dir / "model.safetensors"))
    save_file({k: v.half().contiguous() for k, v in weights.items()}, str(model_dir / "model.safetensors"))
    loaded = load_multihead_checkpoint(str(model_dir))
    assert {p.dtype for p in loaded.model.parameters()} == {torch.float32}
    engine = InferenceEngine(loaded.model, loaded.tokenizer, device="cpu", precision="fp32")
    outputs = engine.predict_outputs(["Write a poem about the sea.", "Summarize this article."])
    assert outputs.shape == (2, loaded.model.num_labels)
