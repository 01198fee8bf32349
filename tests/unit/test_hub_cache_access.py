"""A cache shared between users, and the local reasons a model cannot be had from it: the real
huggingface_hub client, fetching from a stand-in hub on 127.0.0.1 (tests/hub_server.py) into the cache and
reading it offline, as the user who fetched or as another (tests/other_user.py).

- offline, the hub's own reason is kept (an incomplete snapshot says which files it misses);
- a cache another user fetched under umask 077 is "not readable by user X", with the chmod that fixes it,
  not "not in the cache: run fetch-models";
- fetching into a cache folder this user may not write, or onto a full disk, blames neither the hub nor the
  network;
- what fetch-models fetches is open to whoever the cache's folder is open to, whatever the umask (the tree
  listings, which huggingface_hub writes 0600, included), and a umask that hides files says so.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import huggingface_hub
import pytest
from hub_cache import cache_snapshot
from hub_server import LocalHub
from other_user import hand_over, run_as_other_user

from hpc_classify.errors import ModelNotAvailableError
from hpc_classify.models.fetch import fetch_models

DOMAIN_REPO = "nvidia/domain-classifier"
BASE_REPO = "fake-org/tiny-deberta-base"
COMMIT, NEW_COMMIT, BASE_COMMIT = "a" * 40, "b" * 40, "c" * 40
REPO_DIR = "models--nvidia--domain-classifier"


def _user() -> str:
    from hpc_classify.models.cache_access import user_name

    return user_name()


@pytest.fixture
def hub(tiny_domain_model: Path) -> LocalHub:
    """The tiny domain classifier (its base model a hub id, as in the public checkpoints) on a local hub."""
    files = {p.name: p.read_bytes() for p in tiny_domain_model.iterdir() if p.is_file()}
    config = json.loads(files["config.json"])
    base_config = Path(config["base_model"], "config.json").read_bytes()
    files["config.json"] = json.dumps({**config, "base_model": BASE_REPO}).encode()
    local = LocalHub()
    local.add(DOMAIN_REPO, COMMIT, files)
    local.add(BASE_REPO, BASE_COMMIT, {"config.json": base_config})
    with local:
        yield local


@pytest.fixture
def online(hub: LocalHub, monkeypatch: pytest.MonkeyPatch) -> LocalHub:
    """This process's hub client talks to the local hub (huggingface_hub froze its endpoint at import)."""
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", hub.endpoint)
    template = hub.endpoint + "/{repo_id}/resolve/{revision}/{filename}"
    monkeypatch.setattr(huggingface_hub.constants, "HUGGINGFACE_CO_URL_TEMPLATE", template)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        monkeypatch.delenv(name, raising=False)
    return hub


def _shared_cache(tmp_path: Path, mode: int = 0o755) -> Path:
    """HF_HOME/hub, made by an administrator for everybody (env/install.sh makes HF_HOME)."""
    cache = tmp_path / "hf" / "hub"
    cache.mkdir(parents=True)
    os.chmod(cache.parent, mode)
    os.chmod(cache, mode)
    return cache


def _hub_env(hub: LocalHub, **env: str) -> dict[str, str]:
    return {"HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_OFFLINE": "0", **env}


def test_offline_an_incomplete_snapshot_says_what_it_misses(online, tmp_path, monkeypatch):
    from hpc_classify.models.checkpoint import load_classifier_checkpoint

    cache = tmp_path / "hf" / "hub"
    [item] = fetch_models(["domain"], cache_dir=cache)  # the real client: it lists the commit's files
    assert (cache / REPO_DIR / "trees" / f"{COMMIT}.json").is_file()
    (item.path / "model.safetensors").unlink()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(ModelNotAvailableError) as error:
        load_classifier_checkpoint(DOMAIN_REPO)
    assert "is incomplete: 1 file(s) are missing (model.safetensors)" in str(error.value)
    assert "local_files_only" not in str(error.value)  # the hub client's advice about its own argument

    shutil.rmtree(cache / REPO_DIR)  # nothing there: the hub has nothing to add
    with pytest.raises(ModelNotAvailableError) as error:
        load_classifier_checkpoint(DOMAIN_REPO)
    assert str(error.value).split("\n")[0].endswith("and offline (HF_HUB_OFFLINE=1)")


def test_a_cache_another_user_fetched_under_umask_077_is_not_readable_not_missing(hub, tmp_path):
    cache = _shared_cache(tmp_path)
    old = os.umask(0o077)  # how huggingface_hub writes under such a umask: 0700 folders, 0600 files
    try:
        files = {name: tmp_path / name for name in hub.repos[DOMAIN_REPO][COMMIT]}
        for name, path in files.items():
            path.write_bytes(hub.repos[DOMAIN_REPO][COMMIT][name])
        cache_snapshot(cache, DOMAIN_REPO, COMMIT, files)
    finally:
        os.umask(old)
    hand_over(cache)

    done = run_as_other_user(
        "from hpc_classify.models.checkpoint import load_classifier_checkpoint\n"
        "from hpc_classify.models.fetch import fetch_models\n"
        "for load in (lambda: load_classifier_checkpoint('nvidia/domain-classifier'), "
        "lambda: fetch_models(['domain'])):\n"
        "    try:\n"
        "        load()\n"
        "    except Exception as error:\n"
        "        print(type(error).__name__, error.one_line())\n",
        {"HF_HOME": str(cache.parent), "HF_HUB_OFFLINE": "1"},
    )
    assert "Traceback" not in done.stderr, done.stderr
    loading, checking = done.stdout.splitlines()
    repo = cache / REPO_DIR
    for message in (loading, checking):
        assert message.startswith("CacheAccessError "), message
        assert f"Hugging Face cache not readable by user {_user()}: {repo}" in message
        assert f"`chmod -R a+rX {repo}`" in message
        assert "not in the Hugging Face cache" not in message and "HF_HUB_OFFLINE=0" not in message
    assert "run `hpc-classify fetch-models --classifier domain`" not in loading


def test_fetching_into_a_cache_this_user_may_not_write_blames_no_network(online, tmp_path):
    cache = _shared_cache(tmp_path)
    fetch_models(["domain"], cache_dir=cache)  # by the cache's owner, under the default umask
    online.add(DOMAIN_REPO, NEW_COMMIT, {**online.repos[DOMAIN_REPO][COMMIT], "tokenizer.json": b"{}"})
    hand_over(cache)

    done = run_as_other_user(  # another user updates it: main has moved on
        "from hpc_classify.models.fetch import fetch_models\n"
        f"try:\n    fetch_models(['domain'], cache_dir={str(cache)!r})\n"
        "except Exception as error:\n    print(type(error).__name__, error.one_line())\n",
        _hub_env(online),
    )
    message = done.stdout.strip()
    assert message.startswith("CacheAccessError cannot fetch classifier 'nvidia/domain-classifier'"), done
    assert f"Hugging Face cache not writable by user {_user()}: {cache}" in message
    assert "proxy" not in message and "check the name and revision" not in message


def _small_filesystems() -> bool:
    """Whether this user may mount a tmpfs in a mount namespace of its own (`unshare -Urm`)."""
    if shutil.which("unshare") is None:
        return False
    mount = 'mount -t tmpfs -o size=64k tmpfs "$0"'
    probe = subprocess.run(["unshare", "-Urm", "sh", "-c", mount, "/tmp"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _small_filesystems(), reason="needs a tmpfs mounted with unshare -Urm")
def test_fetching_onto_a_full_disk_says_so(hub, tmp_path):
    cache = tmp_path / "small"
    cache.mkdir()
    code = (
        "from hpc_classify.models.fetch import fetch_models\n"
        f"try:\n    fetch_models(['domain'], cache_dir={str(cache)!r})\n"
        "except Exception as error:\n    print(type(error).__name__, error.one_line())\n"
    )
    path = os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(  # a 256 KiB filesystem in a mount namespace of its own: the weights do not fit
        ["unshare", "-Urm", "sh", "-c", 'mount -t tmpfs -o size=256k tmpfs "$0" && exec "$1" -c "$2"']
        + [str(cache), sys.executable, code],
        env={**os.environ, **_hub_env(hub), "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    message = done.stdout.strip()
    assert message.startswith("CacheAccessError cannot fetch classifier 'nvidia/domain-classifier'"), done
    assert f"the disk holding the Hugging Face cache {cache} is full (No space left on device)" in message
    assert "proxy" not in message and f"df -h {cache}" in message


@pytest.mark.parametrize(
    ("root_mode", "made_here", "dir_bits", "file_bits"),
    [
        (0o755, False, 0o055, 0o044),  # the cache open to all: so is what was fetched
        (0o755, True, 0o055, 0o044),  # HF_HOME open to all, hub/ made by fetch-models: the same
        (0o750, False, 0o050, 0o040),  # open to the group only: nothing for others
    ],
)
def test_what_fetch_models_fetches_under_umask_077_is_as_open_as_the_cache(
    hub, tmp_path, root_mode, made_here, dir_bits, file_bits
):
    cache = _shared_cache(tmp_path, root_mode)
    if made_here:
        cache.rmdir()
    code = (
        "import os, sys; os.umask(0o077)\nfrom hpc_classify.cli.main import main\n"
        f"sys.exit(main(['fetch-models', '--classifier', 'domain', '--cache', {str(cache)!r}]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **_hub_env(hub), "PYTHONPATH": str(Path(__file__).parents[2])},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert f"umask 0077 makes files written into {cache} unreadable by" in done.stderr, done.stderr
    assert stat.S_IMODE(cache.stat().st_mode) & 0o077 == root_mode & 0o055
    paths = [p for repo in cache.glob("models--*") for p in [repo, *repo.rglob("*")] if not p.is_symlink()]
    assert any(p.parent.name == "trees" for p in paths)  # huggingface_hub's listing, made 0600
    for path in paths:
        bits = dir_bits if path.is_dir() else file_bits
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == bits, path
    if root_mode & 0o005:  # open to all: another user reads it offline, tree listings included
        hand_over(cache)
        code = (
            "from hpc_classify.models.checkpoint import load_classifier_checkpoint\n"
            "print(len(load_classifier_checkpoint('nvidia/domain-classifier').labels))\n"
        )
        read = run_as_other_user(code, {"HF_HOME": str(cache.parent), "HF_HUB_OFFLINE": "1"})
        assert read.stdout.strip() == "26", read.stderr
        assert "Ignoring corrupted tree cache file" not in read.stderr
