"""The LlamaGuard bundles (aegis, aegis-permissive, instruction-data-guard) in a cache of the hub's exact
layout (tests/hub_cache.py), read by the real huggingface_hub client offline: the pins fetch-models prints
are commits that `@REVISION` can take."""

from __future__ import annotations

from pathlib import Path

import pytest
from hub_cache import cache_snapshot

from hpc_classify.cli.main import main
from hpc_classify.models import llama_guard as lg
from hpc_classify.models.fetch import fetch_models

BASE_COMMIT, ADAPTER_COMMIT, GUARD_COMMIT = "c" * 40, "d" * 40, "e" * 40


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
