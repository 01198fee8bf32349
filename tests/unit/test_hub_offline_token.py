"""Offline, the cache look-ups never read the Hugging Face login token.

On a cluster the cache is shared. Where HF_HOME is that shared directory (a site's own setting, or an older
hpc-classify module), one user's `hf auth login` leaves `$HF_HOME/token` there, mode 0600: every other user's
hub call that reads it raised PermissionError, which the loader reported as "not in the cache" although every
file was there. Offline there is nothing to authenticate, so our hub calls pass `token=False` there.

Each check runs in a fresh interpreter whose environment names HF_HOME before huggingface_hub is imported:
the hub client derives the token path from it at import, as in a job. The cache is the real hub layout
(`tests/hub_cache.py`); the hub calls are the real ones.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hub_cache import cache_snapshot

REPO = Path(__file__).resolve().parents[2]
CLASSIFIER, CLASSIFIER_COMMIT = "nvidia/domain-classifier", "a" * 40
BASE, BASE_COMMIT = "microsoft/deberta-v3-base", "b" * 40


@pytest.fixture
def shared_home(tmp_path: Path) -> Path:
    """An HF_HOME holding a classifier whose config names a hub base model, that base's config, and a login
    token this process cannot read (another user's 0600 file; as root, which reads any file, a directory)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"base_model": BASE, "id2label": {"0": "Sports"}}))
    (src / "model.safetensors").write_bytes(b"weights")
    (src / "tokenizer.json").write_text("{}")
    (src / "base-config.json").write_text(json.dumps({"model_type": "deberta-v2"}))
    home = tmp_path / "shared-hf"
    files = {p.name: p for p in src.iterdir() if p.name != "base-config.json"}
    cache_snapshot(home / "hub", CLASSIFIER, CLASSIFIER_COMMIT, files)
    cache_snapshot(home / "hub", BASE, BASE_COMMIT, {"config.json": src / "base-config.json"})
    token = home / "token"
    if os.geteuid() == 0:
        token.mkdir()
    else:
        token.write_text("hf_someone_else")
        token.chmod(0)
    with pytest.raises(OSError):
        token.read_text()
    return home


def _offline_python(code: str, home: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_", "TRANSFORMERS_"))}
    env.update(HF_HOME=str(home), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=home.parent
    )


def test_the_loader_finds_cached_models_beside_an_unreadable_login_token(shared_home):
    done = _offline_python(
        "from hpc_classify.models.hub import resolve_base_config, resolve_model_dir\n"
        f"print(resolve_model_dir({CLASSIFIER!r}, token='hf_mine').name)\n"  # a classifier's token=: unused
        f"print(resolve_base_config({BASE!r})['model_type'])\n",
        shared_home,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [CLASSIFIER_COMMIT, "deberta-v2"]


def test_the_offline_fetch_models_check_passes_beside_an_unreadable_login_token(shared_home):
    done = _offline_python(
        "from hpc_classify.models.fetch import fetch_models\n"
        "[fetched] = fetch_models(['domain'])\n"
        "print(fetched.commit, fetched.base_model, fetched.base_commit)\n",
        shared_home,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == [CLASSIFIER_COMMIT, BASE, BASE_COMMIT]
