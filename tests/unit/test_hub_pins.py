"""A hub model resolved once on the client (the driver's fingerprint) is loaded at that commit by the workers,
even when the hub's `main` moves on during the run: the classifier travels by pickle, as Dask ships it, and
the cache below is updated between the two sides as an online compute node's would be. Offline throughout:
a pinned commit resolves from the cache without `refs/`."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from hub_cache import cache_checkpoint, updated_checkpoint
from safetensors.torch import load_file

from hpc_classify.classifiers import runtime
from hpc_classify.classifiers.aegis import AegisClassifier, InstructionDataGuardClassifier
from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.classifiers.fineweb import FineWebEduClassifier
from hpc_classify.classifiers.prompt_complexity import PromptTaskComplexityClassifier

FIRST, SECOND = "1" * 40, "2" * 40  # the commit fingerprinted, the commit `main` moves to meanwhile
CPU = torch.device("cpu")


def shipped(classifier):
    """The classifier as a Dask worker receives it."""
    return pickle.loads(pickle.dumps(classifier))


@pytest.mark.parametrize(
    ("fixture", "make", "tensor"),
    [
        ("tiny_domain_model", DomainClassifier, "fc.bias"),
        ("tiny_prompt_complexity_model", PromptTaskComplexityClassifier, "head_0.fc.bias"),
        ("tiny_fineweb_model", FineWebEduClassifier, "classifier.bias"),
    ],
)
def test_workers_load_the_commit_the_driver_fingerprinted(
    request, fixture, make, tensor, offline_home: Path, tmp_path: Path, caplog
):
    model_dir: Path = request.getfixturevalue(fixture)
    hub = offline_home / "hub"
    first = cache_checkpoint(hub, "org/model", FIRST, model_dir)
    classifier = make(model="org/model")  # no --revision: `main`
    with caplog.at_level(logging.INFO, logger="hpc_classify.models.hub_pins"):
        printed = classifier.fingerprint()  # the driver, before dispatching
    assert printed["model"]["revision"] == FIRST
    # Output directories written before the pinning resume: --revision <that commit> is the same model.
    assert make(model="org/model", revision=FIRST).fingerprint() == printed

    cache_checkpoint(hub, "org/model", SECOND, updated_checkpoint(model_dir, tmp_path / "update", tensor))
    worker = shipped(classifier)
    loaded = worker.load_components(CPU)
    expected = load_file(str(first / "model.safetensors"))[tensor]
    assert torch.equal(loaded.model.state_dict()[tensor], expected)
    assert worker.fingerprint() == printed
    # A new classifier (a new run, a resume) resolves `main` afresh, as before: its fingerprint differs.
    assert make(model="org/model").model_fingerprint()["revision"] == SECOND
    assert f"org/model at revision main pinned to commit {FIRST}" in caplog.text  # the driver's log


def _fake_snapshot(hub: Path, repo_id: str, commit: str, names: tuple[str, ...], tmp_path: Path) -> Path:
    """A snapshot of files whose bytes name the commit: the LlamaGuard fingerprint hashes bytes only."""
    source = tmp_path / "sources" / repo_id / commit
    source.mkdir(parents=True)
    for name in names:
        (source / name).write_text(f'{{"repo": "{repo_id}", "commit": "{commit}", "file": "{name}"}}')
    return cache_checkpoint(hub, repo_id, commit, source)


@pytest.mark.parametrize("guard", [False, True], ids=["aegis", "instruction-data-guard"])
@pytest.mark.parametrize("pin", ["fingerprint", "pin_models"])  # the driver's run, NeMo's classifier(dataset)
def test_llama_guard_workers_load_the_commits_the_driver_fingerprinted(
    guard: bool, pin: str, offline_home: Path, tmp_path: Path, monkeypatch
):
    """Base model, adapter and guard net: each is pinned, and `_loaded`/`load_guard_net` get those snapshots."""
    from hpc_classify.models import llama_guard_loading

    hub = offline_home / "hub"
    repos = {
        "org/base": ("config.json", "model.safetensors"),
        "org/adapter": ("adapter_config.json", "adapter_model.safetensors"),
        "org/guard": ("config.json", "model.safetensors"),
    }
    first = {repo: _fake_snapshot(hub, repo, FIRST, names, tmp_path) for repo, names in repos.items()}
    if guard:
        classifier = InstructionDataGuardClassifier(
            model="org/guard", base_model="org/base", aegis_adapter="org/adapter"
        )
    else:
        classifier = AegisClassifier(model="org/adapter", base_model="org/base")
    getattr(classifier, pin)()
    for repo, names in repos.items():
        _fake_snapshot(hub, repo, SECOND, names, tmp_path)
    printed = classifier.fingerprint()  # after the update: the commits pinned by the call above

    loads: list[tuple[Path, ...]] = []

    def record(*directories: Path) -> SimpleNamespace:  # what the loaders were given, instead of loading
        loads.append(directories)
        return SimpleNamespace(model=None)

    monkeypatch.setattr(runtime, "_MODELS", {})
    monkeypatch.setattr(
        llama_guard_loading, "load_llama_guard", lambda base, adapter, *_: record(base, adapter)
    )
    monkeypatch.setattr(llama_guard_loading, "load_guard_net", lambda guard_dir, _: record(guard_dir))
    worker = shipped(classifier)
    worker.load_model(CPU)
    assert loads == [(first["org/base"], first["org/adapter"])]
    if guard:
        worker.load_guard_net(CPU)
        assert loads[1] == (first["org/guard"],)
    assert worker.fingerprint() == printed


def test_a_full_commit_stays_and_a_local_directory_is_not_pinned(
    tiny_domain_model: Path, offline_home: Path, caplog
):
    cache_checkpoint(offline_home / "hub", "org/model", FIRST, tiny_domain_model)
    given = DomainClassifier(model="org/model", revision=FIRST)
    local = DomainClassifier(model=str(tiny_domain_model))
    with caplog.at_level(logging.INFO, logger="hpc_classify.models.hub_pins"):
        assert given.model_fingerprint()["revision"] == FIRST
        assert local.model_fingerprint()["revision"] is None
    assert "pinned" not in caplog.text
    assert given.model_identity()["revision"] == FIRST and shipped(given)._load_revision() == FIRST
    assert shipped(local)._load_revision() is None


def test_one_engine_per_commit(tiny_domain_model: Path, offline_home: Path, tmp_path: Path):
    """A worker process that outlives a run (a long-lived Dask cluster) must not serve a later run, pinned to
    the hub's newer commit, with the engine it loaded for the earlier one."""
    hub = offline_home / "hub"
    cache_checkpoint(hub, "org/model", FIRST, tiny_domain_model)
    earlier = DomainClassifier(model="org/model")
    earlier.model_fingerprint()
    cache_checkpoint(
        hub, "org/model", SECOND, updated_checkpoint(tiny_domain_model, tmp_path / "update", "fc.bias")
    )
    later = DomainClassifier(model="org/model")
    later.model_fingerprint()
    assert shipped(earlier).engine_key() != shipped(later).engine_key()
