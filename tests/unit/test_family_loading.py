"""Loading the prompt task/complexity (multi-head) and FineWeb-Edu checkpoints: a tokenizer that does not
belong to the weights is refused at load, naming both sizes, not deep in the first forward; a FineWeb
checkpoint's config.json and weights are checked as strictly as the DeBERTa classifiers'."""

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


# -- FineWeb-Edu: config.json and weights as strict as the DeBERTa classifiers' ---------------------
def fineweb_copy(model_dir: Path, out: Path, keep=lambda key: True, change=lambda key, value: value) -> Path:
    """A copy of the checkpoint whose weights keep only the keys `keep` accepts, each passed through `change`."""
    from safetensors.torch import load_file, save_file

    shutil.copytree(model_dir, out)
    weights = load_file(str(out / "model.safetensors"))
    save_file({k: change(k, v) for k, v in weights.items() if keep(k)}, str(out / "model.safetensors"))
    return out


@pytest.mark.parametrize(
    "variant", ["FineWebEduClassifier", "FineWebMixtralEduClassifier", "FineWebNemotronEduClassifier"]
)
def test_fineweb_refuses_weights_without_the_head_naming_the_file_and_keys(
    tiny_fineweb_model: Path, tmp_path: Path, variant: str
):
    """transformers alone initialises the missing head at random, another one in every worker: scores of noise."""
    import hpc_classify

    model_dir = fineweb_copy(
        tiny_fineweb_model, tmp_path / "m", keep=lambda k: not k.startswith("classifier.")
    )
    classifier = getattr(hpc_classify, variant)(model=str(model_dir), device_type="cpu", autocast=False)
    assert classifier.labels == []  # config.json is sound: the driver's early check passes
    reported = _transformers_warnings()
    with pytest.raises(CheckpointFormatError) as info, reported:
        classifier.load_components(torch.device("cpu"))
    assert str(info.value).splitlines()[0] == (
        f"{model_dir / 'model.safetensors'}: weights do not match the classifier built from its config: "
        "2 missing key(s) ['classifier.bias', 'classifier.weight']"
    )
    assert reported.seen == []  # transformers' "newly initialized" report would precede our error: dropped


class _transformers_warnings:
    """The warnings transformers' loading logger emits inside the block, in `seen`."""

    def __enter__(self):
        import logging

        from hpc_classify.models.held_warnings import TRANSFORMERS_LOAD_LOGGER

        self.seen: list[str] = []
        self.handler = logging.Handler(logging.WARNING)
        self.handler.emit = lambda record: self.seen.append(record.getMessage())
        self.logger = logging.getLogger(TRANSFORMERS_LOAD_LOGGER)
        self.logger.addHandler(self.handler)
        return self

    def __exit__(self, *exc_info):
        self.logger.removeHandler(self.handler)
        return False


def test_fineweb_refuses_unexpected_and_misshapen_weights(tiny_fineweb_model: Path, tmp_path: Path):
    from safetensors.torch import load_file, save_file

    from hpc_classify import FineWebEduClassifier

    extra = fineweb_copy(tiny_fineweb_model, tmp_path / "extra")
    weights = load_file(str(extra / "model.safetensors"))
    save_file({**weights, "head.extra": torch.zeros(2)}, str(extra / "model.safetensors"))
    with pytest.raises(CheckpointFormatError) as info:
        FineWebEduClassifier(model=str(extra), device_type="cpu").load_model(torch.device("cpu"))
    assert str(info.value).splitlines()[0] == (
        f"{extra / 'model.safetensors'}: weights do not match the classifier built from its config: "
        "1 unexpected key(s) ['head.extra']"
    )

    wide = fineweb_copy(
        tiny_fineweb_model,
        tmp_path / "wide",
        change=lambda k, v: v.repeat(2, 1) if k == "classifier.weight" else v,
    )
    with pytest.raises(CheckpointFormatError) as info:
        FineWebEduClassifier(model=str(wide), device_type="cpu").load_model(torch.device("cpu"))
    assert str(info.value).splitlines()[0] == (
        f"{wide / 'model.safetensors'}: weight shapes do not match the configuration: "
        "classifier.weight [2, 32] (config: [1, 32])"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{not json", "is not valid JSON ("),
        ("[1]", "holds a list, expected a JSON object"),
    ],
)
def test_fineweb_refuses_a_torn_config_when_its_labels_are_asked(
    tiny_fineweb_model: Path, tmp_path: Path, text: str, message: str
):
    """Where the driver asks every classifier before any worker starts (the run's fingerprint); a raw
    JSONDecodeError on each worker before."""
    from hpc_classify import FineWebMixtralEduClassifier

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_fineweb_model, model_dir)
    (model_dir / "config.json").write_text(text)
    classifier = FineWebMixtralEduClassifier(model=str(model_dir), device_type="cpu")
    for ask in (lambda: classifier.labels, lambda: classifier.load_model(torch.device("cpu"))):
        with pytest.raises(CheckpointFormatError) as info:
            ask()
        assert str(info.value).startswith(f"classifier {model_dir}: {model_dir / 'config.json'} {message}")


def test_fineweb_refuses_a_config_of_several_outputs_before_loading_weights(
    tiny_fineweb_model: Path, tmp_path: Path
):
    import json

    from hpc_classify import FineWebEduClassifier

    model_dir = tmp_path / "m"
    shutil.copytree(tiny_fineweb_model, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["id2label"] = {"0": "low", "1": "high"}
    (model_dir / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointFormatError) as info:
        _ = FineWebEduClassifier(model=str(model_dir)).labels
    assert str(info.value).splitlines()[0] == (
        f"{model_dir}: config.json describes a model with 2 outputs (id2label, else num_labels, else 2); a score "
        "regressor has exactly one"
    )


def test_fineweb_python_api_fails_on_a_headless_checkpoint_instead_of_scoring(
    tiny_fineweb_model: Path, tmp_path: Path
):
    import pandas as pd

    from hpc_classify import DocumentDataset, FineWebEduClassifier

    model_dir = fineweb_copy(tiny_fineweb_model, tmp_path / "m", keep=lambda k: k != "classifier.bias")
    data = DocumentDataset.from_pandas(pd.DataFrame({"text": ["one text", "another text"]}), npartitions=2)
    classifier = FineWebEduClassifier(model=str(model_dir), device_type="cpu", autocast=False)
    with pytest.raises(CheckpointFormatError) as info:
        classifier(data).df.compute()
    assert str(info.value).splitlines()[0] == (
        f"{model_dir / 'model.safetensors'}: weights do not match the classifier built from its config: "
        "1 missing key(s) ['classifier.bias']"
    )
