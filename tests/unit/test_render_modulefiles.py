"""The modulefiles env/render_modulefiles.py writes, read as text (tests/lmod loads them in real Lmod).

The model cache is set as HF_HUB_CACHE, never HF_HOME: HF_HOME also holds each user's login token, and a
shared one hides a token from before `module load` and exposes (and makes private) the shared directory to a
later `hf auth login`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def render(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "render_modulefiles", REPO / "env" / "render_modulefiles.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    prefix = tmp_path / "prefix"
    monkeypatch.chdir(tmp_path)

    def run(*options: str) -> tuple[str, str]:
        argv = ["--prefix", str(prefix), "--version", "9.9", "--venv-bin", f"{prefix}/venv/bin", *options]
        assert module.main(argv) == 0
        lua = (prefix / "modulefiles" / "hpc-classify" / "9.9.lua").read_text()
        tcl = (prefix / "modulefiles-tcl" / "hpc-classify" / "9.9").read_text()
        return lua, tcl

    return prefix, run


def test_the_cache_is_hf_hub_cache_unless_the_user_names_hf_home(render):
    prefix, run = render
    lua, tcl = run()
    assert (
        f'default_env("HF_HUB_CACHE", "{prefix}/hf-cache/hub", {{"HF_HOME", "HUGGINGFACE_HUB_CACHE"}})' in lua
    )
    assert f"default_env HF_HUB_CACHE {{{prefix}/hf-cache/hub}} {{HF_HOME HUGGINGFACE_HUB_CACHE}}" in tcl
    assert 'default_env("HF_HOME"' not in lua and "default_env HF_HOME" not in tcl


def test_a_relative_hf_home_is_made_absolute(render, tmp_path):
    _, run = render
    lua, tcl = run("--hf-home", "site/hf")
    assert f'default_env("HF_HUB_CACHE", "{tmp_path}/site/hf/hub", ' in lua
    assert f"default_env HF_HUB_CACHE {{{tmp_path}/site/hf/hub}} " in tcl


def test_a_site_hf_home_replaces_the_cache_default(render):
    _, run = render
    lua, tcl = run("--setenv", "HF_HOME=/site/hf")
    assert 'default_env("HF_HOME", "/site/hf")' in lua and "default_env HF_HOME {/site/hf}" in tcl
    assert 'HF_HUB_CACHE",' not in lua and "default_env HF_HUB_CACHE" not in tcl
