"""fetch-models knows the classifier family by name, and the classifiers load offline from what it fetched
(the stand-in hub of test_fetch_models.py: only the two download calls are replaced, while online)."""

from __future__ import annotations

from pathlib import Path

import huggingface_hub
import pandas as pd
import pytest
from test_fetch_models import FakeHub

from hpc_classify import FineWebEduClassifier, PromptTaskComplexityClassifier
from hpc_classify.models.fetch import fetch_models
from hpc_classify.models.registry_defaults import DEFAULT_MODELS

COMMIT = "d" * 40


@pytest.fixture
def family_hub(tiny_fineweb_model: Path, tiny_prompt_complexity_model: Path, monkeypatch) -> FakeHub:
    import json

    hub = FakeHub()
    fineweb = {p.name: p.read_bytes() for p in tiny_fineweb_model.iterdir() if p.is_file()}
    hub.add(DEFAULT_MODELS["fineweb-edu"], COMMIT, {**fineweb, "training_args.bin": b"junk"}, refs=("main",))
    prompt = {p.name: p.read_bytes() for p in tiny_prompt_complexity_model.iterdir() if p.is_file()}
    config = json.loads(prompt["config.json"])
    base_config = Path(config["base_model"], "config.json").read_bytes()
    config["base_model"] = "fake-org/deberta-v3-base"
    prompt["config.json"] = json.dumps(config).encode()
    hub.add(DEFAULT_MODELS["prompt-task-complexity"], COMMIT, prompt, refs=("main",))
    hub.add(
        "fake-org/deberta-v3-base",
        COMMIT,
        {"config.json": base_config, "model.safetensors": b"W"},
        refs=("main",),
    )
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.hf_hub_download)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return hub


def test_family_names_fetch_then_load_offline_by_hub_id(family_hub, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    fineweb, prompt = fetch_models(["fineweb-edu", "prompt-task-complexity"], cache_dir=cache)
    assert "training_args.bin" not in fineweb.files and fineweb.base_model is None  # architecture inline
    assert prompt.base_model == "fake-org/deberta-v3-base"  # its config only, never the base weights
    assert ("fake-org/deberta-v3-base", "model.safetensors") not in family_hub.downloaded

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    frame = pd.DataFrame(
        {"text": ["An introduction to photosynthesis for students.", "Buy cheap watches now"]}
    )
    scored = FineWebEduClassifier(autocast=False, device="cpu").predict_frame(frame)  # the default hub id
    assert scored["fineweb-edu-score"].between(0, 5).all()
    complexity = PromptTaskComplexityClassifier(autocast=False, device="cpu").predict_frame(frame)
    assert complexity["prompt_complexity_score"].notna().all()


def test_bundled_classifiers_fetch_every_repository_then_load_offline(
    tiny_llama_guard, tiny_guard_net, tmp_path, monkeypatch
):
    from hpc_classify import InstructionDataGuardClassifier
    from hpc_classify.models import llama_guard as lg

    base, adapter = tiny_llama_guard
    hub = FakeHub()
    junk = {"pytorch_model-00001-of-00002.bin": b"duplicate", "README.md": b"card"}
    hub.add(lg.LLAMA_GUARD_BASE, COMMIT, {**_files(base), **junk}, refs=("main",))
    hub.add(lg.AEGIS_DEFENSIVE, COMMIT, _files(adapter), refs=("main",))
    hub.add(lg.INSTRUCTION_DATA_GUARD, COMMIT, _files(tiny_guard_net), refs=("main",))
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hub.hf_hub_download)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)

    cache = tmp_path / "hub"
    fetched = fetch_models(["instruction-data-guard"], cache_dir=cache)
    assert [item.repo_id for item in fetched] == [
        lg.LLAMA_GUARD_BASE,
        lg.AEGIS_DEFENSIVE,
        lg.INSTRUCTION_DATA_GUARD,
    ]
    assert not any(name.endswith(".bin") or name == "README.md" for item in fetched for name in item.files)

    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    frame = pd.DataFrame({"text": ["Instruction: plan a route. Input: none. Response: take the A1."]})
    scored = InstructionDataGuardClassifier(device_type="cpu", autocast=False).predict_frame(frame)
    assert scored["instruction_data_guard_poisoning_score"].between(0, 1).all()


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}
