"""The installed environment as users meet it: `module load hpc-classify` in a fresh login shell (real Lmod).

env/install.sh installs once per session into `<repo>/.cache/lmod-prefix` (reused across sessions: a re-run
is the idempotent update an admin does; a fresh clone installs from scratch). Every test then starts its own
`bash --login` with an empty environment and a private HOME, as a user logging in would.
"""

from __future__ import annotations

import fcntl
import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.lmod,
    pytest.mark.skipif(
        not Path("/usr/share/lmod/lmod/init/bash").exists(),
        reason="Debian's lmod is not installed (scripts/bootstrap.sh installs it)",
    ),
]

REPO = Path(__file__).resolve().parents[2]
CLEAN_PATH = "/usr/local/bin:/usr/bin:/bin"  # no duplicates: Lmod drops duplicate PATH entries on load
# Lmod's own bookkeeping, which legitimately changes across load/unload.
LMOD_STATE = ("_ModuleTable", "__LMOD", "LOADEDMODULES", "_LMFILES_", "LMOD_", "BASH_FUNC_", "SHLVL", "_")
MODULE_DEFAULTS = {
    "HF_HUB_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "120s",
    "RAPIDS_NO_INITIALIZE": "1",
    "UCX_WARN_UNUSED_ENV_VARS": "n",
}


@pytest.fixture(scope="session")
def prefix() -> Path:
    root = Path(os.environ.get("HPC_CLASSIFY_LMOD_PREFIX") or REPO / ".cache" / "lmod-prefix")
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(root.parent / ".lmod-prefix.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test sessions must not pip-install into one venv at once
        done = subprocess.run(
            ["bash", str(REPO / "env" / "install.sh"), str(root)], capture_output=True, text=True, timeout=900
        )
    assert done.returncode == 0, f"install.sh failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return root.resolve()


@pytest.fixture
def login(tmp_path: Path):
    """Run a script in a fresh login shell (`env -i ... bash --login`); returns (CompletedProcess, dumps)
    where dumps maps each `dump NAME` call in the script to the environment at that point."""
    home = tmp_path / "home"
    home.mkdir()

    def run(script: str, env: dict[str, str] | None = None, timeout: int = 120):
        dumps = tmp_path / "dumps"
        dumps.mkdir(exist_ok=True)
        prelude = f"""
set -e
type module >/dev/null 2>&1 || source /usr/share/lmod/lmod/init/bash
export PATH={CLEAN_PATH}
dump() {{ env -0 > {shlex.quote(str(dumps))}/"$1"; }}
"""
        base = {"HOME": str(home), "USER": "tester", "TERM": "dumb", "LANG": "C.UTF-8"}
        argv = ["env", "-i", *(f"{k}={v}" for k, v in {**base, **(env or {})}.items())]
        done = subprocess.run(
            [*argv, "bash", "--login", "-c", prelude + script],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
        )
        envs = {}
        for path in dumps.iterdir():
            pairs = (item.split("=", 1) for item in path.read_text().split("\0") if "=" in item)
            envs[path.name] = dict(pairs)
        return done, envs

    return run


def _user_env(env: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if not k.startswith(LMOD_STATE)}


def test_load_puts_the_prefix_command_on_path_and_sets_the_documented_defaults(prefix, login):
    done, envs = login(
        f"""module use {prefix}/modulefiles
module load hpc-classify
command -v hpc-classify
python -c 'import hpc_classify; print(hpc_classify.__file__)'
hpc-classify --version
dump loaded"""
    )
    assert done.returncode == 0, done.stderr
    which, package, version = done.stdout.split()[:3]
    assert which == f"{prefix}/venv/bin/hpc-classify"
    assert package.startswith(f"{prefix}/venv/lib/")  # the installed copy, not the source tree
    loaded = envs["loaded"]
    assert loaded["PATH"] == f"{prefix}/venv/bin:{CLEAN_PATH}"
    assert {k: loaded.get(k) for k in MODULE_DEFAULTS} == MODULE_DEFAULTS
    assert loaded["HF_HUB_CACHE"] == f"{prefix}/hf-cache/hub"
    assert "HF_HOME" not in loaded  # the user's own, with their login token (see the test below)
    assert loaded["HPC_CLASSIFY_HOME"] == str(prefix)
    assert loaded["HPC_CLASSIFY_MODULE_DEFAULTS"].split(":") == ["HF_HUB_CACHE", *MODULE_DEFAULTS]
    assert (prefix / "hf-cache").is_dir()


def test_unload_restores_path_and_every_variable_exactly(prefix, login):
    done, envs = login(
        f"""module use {prefix}/modulefiles
dump before
module load hpc-classify
module unload hpc-classify
dump after"""
    )
    assert done.returncode == 0, done.stderr
    before, after = envs["before"], envs["after"]
    assert after["PATH"] == before["PATH"] == CLEAN_PATH
    assert _user_env(after) == _user_env(before)


@pytest.mark.parametrize("flavour", ["modulefiles", "modulefiles-tcl"])
def test_values_the_user_set_before_loading_are_kept_and_survive_unload(prefix, login, flavour):
    # modulefiles-tcl is the Environment Modules flavour, which Lmod reads too (it calls unload "remove").
    preset = {"HF_HOME": "/users/me/hf", "HF_HUB_OFFLINE": "0", "UCX_NET_DEVICES": "mlx5_0:1"}
    done, envs = login(
        f"""module use {prefix}/{flavour}
module load hpc-classify
dump loaded
module unload hpc-classify
dump after""",
        env=preset,
    )
    assert done.returncode == 0, done.stderr
    loaded, after = envs["loaded"], envs["after"]
    assert {k: loaded[k] for k in preset} == preset
    assert loaded["RAPIDS_NO_INITIALIZE"] == "1"  # the defaults the user did not set still apply
    assert loaded["PATH"] == f"{prefix}/venv/bin:{CLEAN_PATH}"
    assert "HF_HOME" not in loaded["HPC_CLASSIFY_MODULE_DEFAULTS"].split(":")
    assert "HF_HUB_CACHE" not in loaded  # the user's HF_HOME says where the cache is: $HF_HOME/hub
    assert {k: after.get(k) for k in preset} == preset
    assert [
        k
        for k in (*MODULE_DEFAULTS, "HPC_CLASSIFY_HOME", "HPC_CLASSIFY_MODULE_DEFAULTS")
        if k in after and k not in preset
    ] == []
    assert after["PATH"] == CLEAN_PATH


@pytest.mark.parametrize("flavour", ["modulefiles", "modulefiles-tcl"])
def test_a_user_logged_in_before_loading_stays_logged_in_and_the_token_stays_private(prefix, login, flavour):
    """The module sets the shared hub cache, not HF_HOME: HF_HOME also holds the login token, which a shared
    HF_HOME would hide (`hf auth login` done before loading no longer found) or expose (a later login writes
    it into the shared directory and makes that 0700 for everyone else)."""
    done, envs = login(
        f"""mkdir -p "$HOME/.cache/huggingface" && printf hf_mine > "$HOME/.cache/huggingface/token"
module use {prefix}/{flavour}
module load hpc-classify
dump loaded
python -c 'from huggingface_hub import constants, get_token; print(get_token(), constants.HF_TOKEN_PATH)'"""
    )
    assert done.returncode == 0, done.stderr
    home = envs["loaded"]["HOME"]
    assert done.stdout.split() == ["hf_mine", f"{home}/.cache/huggingface/token"]
    assert envs["loaded"]["HF_HUB_CACHE"] == f"{prefix}/hf-cache/hub"


def test_module_help_and_whatis_describe_the_installation(prefix, login):
    done, _ = login(
        f"""module use {prefix}/modulefiles
module whatis hpc-classify 2>&1
module help hpc-classify 2>&1"""
    )
    assert done.returncode == 0, done.stderr
    text = done.stdout
    assert "Name: hpc-classify" in text
    assert "Description: label large sharded text corpora with pre-trained DeBERTa classifiers" in text
    assert f"installed in {prefix}" in text
    assert f"HF_HUB_CACHE                              = {prefix}/hf-cache/hub" in text
    assert "`HF_HUB_OFFLINE=0 hf auth login` first" in text
    assert (
        "HF_HUB_OFFLINE=0 hpc-classify fetch-models --classifier domain quality multilingual-domain" in text
    )
    assert "`module unload hpc-classify` restores PATH" in text


def test_loaded_environment_classifies_a_corpus_with_the_tiny_model(
    prefix, login, tiny_domain_model, topic_corpus, tmp_path
):
    output = tmp_path / "labelled"
    done, _ = login(
        f"""module use {prefix}/modulefiles
module load hpc-classify
hpc-classify run --input {topic_corpus} --output {output} --model {tiny_domain_model} \\
    --cluster local --workers 1 --threads-per-worker 1""",
        timeout=300,
    )
    assert done.returncode == 0, f"{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    summary = json.loads((output / "_summary.json").read_text())
    assert (summary["exit_code"], summary["files_processed"], summary["documents_in"]) == (0, 3, 45)
    assert summary["documents_out"] == 45 and summary["files_failed"] == 0
    for shard, rows in (("shard-00.jsonl", 20), ("shard-01.jsonl", 15), ("shard-02.jsonl", 10)):
        records = [json.loads(line) for line in (output / shard).read_text().splitlines()]
        inputs = [json.loads(line) for line in (topic_corpus / shard).read_text().splitlines()]
        assert [r["id"] for r in records] == [r["id"] for r in inputs] and len(records) == rows
        assert all(isinstance(r["domain_pred"], str) and r["domain_pred"] for r in records)


def test_offline_default_makes_fetch_models_check_the_cache_instead_of_downloading(prefix, login, tmp_path):
    done, _ = login(
        f"""module use {prefix}/modulefiles
module load hpc-classify
export HF_HUB_CACHE={tmp_path}/empty-hf/hub
hpc-classify fetch-models --classifier domain""",
    )
    assert done.returncode == 2
    assert "cannot fetch classifier 'nvidia/domain-classifier' at revision 'main'" in done.stderr
    assert "HF_HUB_OFFLINE=1 is set (the hpc-classify module sets it for compute nodes)" in done.stderr


def test_install_is_idempotent_and_rewrites_the_modulefiles(prefix):
    lua = prefix / "modulefiles" / "hpc-classify"
    tcl = prefix / "modulefiles-tcl" / "hpc-classify"
    from hpc_classify._version import __version__

    assert sorted(p.name for p in lua.iterdir()) == [f"{__version__}.lua"]
    assert sorted(p.name for p in tcl.iterdir()) == [__version__]
    assert tcl.joinpath(__version__).read_text().startswith("#%Module")
    done = subprocess.run(
        ["bash", str(REPO / "env" / "install.sh"), str(prefix)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "updating" in done.stdout and "No broken requirements found." in done.stdout
    assert sorted(p.name for p in lua.iterdir()) == [f"{__version__}.lua"]  # no temp files left behind


def test_install_under_a_private_umask_is_usable_by_everyone_and_makes_hf_home_absolute(prefix, tmp_path):
    """An admin's umask 077 must not make the installation private; `--hf-home` relative to the directory
    install.sh runs in is that directory's absolute path in the modulefile (a relative one would be relative to
    each job's directory), created by install.sh, and then PREFIX/hf-cache is not made."""
    default_cache = prefix / "hf-cache"
    if default_cache.is_dir() and not any(default_cache.iterdir()):
        default_cache.rmdir()
    try:
        done = subprocess.run(
            ["bash", "-c", 'umask 077 && exec bash "$@"', "-", str(REPO / "env" / "install.sh"), str(prefix)]
            + ["--hf-home", "site-hf"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        from hpc_classify._version import __version__

        lua = (prefix / "modulefiles" / "hpc-classify" / f"{__version__}.lua").read_text()
        assert f'default_env("HF_HUB_CACHE", "{tmp_path}/site-hf/hub", ' in lua
        assert (tmp_path / "site-hf").is_dir() and not default_cache.exists()
        [package] = (prefix / "venv" / "lib").glob("python3*/site-packages/hpc_classify/__init__.py")
        readable = [tmp_path / "site-hf", package, package.parent, prefix / "venv" / "pip-freeze.txt"]
        assert {path.name: oct(path.stat().st_mode & 0o055) for path in readable} == {
            path.name: oct(0o055 if path.is_dir() else 0o044) for path in readable
        }
    finally:
        # Back to the session's installation, with what an `hf auth login` under an earlier module (HF_HOME
        # set to the shared cache) left there: install.sh says so.
        default_cache.mkdir(exist_ok=True)
        (default_cache / "token").write_text("hf_someone")
        default_cache.chmod(0o700)
        restored = subprocess.run(
            ["bash", str(REPO / "env" / "install.sh"), str(prefix)], capture_output=True, text=True
        )
        (default_cache / "token").unlink()
        default_cache.chmod(0o755)
    assert restored.returncode == 0, restored.stderr[-3000:]
    assert (
        f"warning: {default_cache}/token is a Hugging Face login token in the shared cache" in restored.stderr
    )
    assert f"warning: {default_cache} is mode 0700" in restored.stderr


def test_site_options_are_baked_in_as_overridable_defaults(login, tmp_path):
    # The renderer alone (no venv needed): what `install.sh --gpu --infiniband --hf-home --setenv` writes.
    # (No space in this path: Lmod's own Tcl reader, tcl2lua.tcl, cannot open a modulefile whose path has one.)
    site = tmp_path / "site-prefix"
    argv = [
        "--prefix",
        str(site),
        "--version",
        "9.9",
        "--venv-bin",
        f"{site}/venv/bin",
        "--gpu",
        "--infiniband",
    ]
    argv += [
        "--hf-home",
        "/shared/hf",
        "--setenv",
        "UCX_NET_DEVICES=mlx5_0:1",
        "--setenv",
        "HF_HUB_OFFLINE=0",
    ]
    rendered = subprocess.run(
        ["python3", str(REPO / "env" / "render_modulefiles.py"), *argv], capture_output=True, text=True
    )
    assert rendered.returncode == 0, rendered.stderr
    expected = {
        "HF_HUB_CACHE": "/shared/hf/hub",
        "HF_HUB_OFFLINE": "0",  # a site value replaces the built-in default
        "DASK_DISTRIBUTED_UCXX__CREATE_CUDA_CONTEXT": "True",
        "DASK_DISTRIBUTED_UCXX__INFINIBAND": "True",
        "DASK_DISTRIBUTED__COMM__UCX__INFINIBAND": "True",
        "UCX_NET_DEVICES": "mlx5_0:1",
    }
    for flavour in ("modulefiles", "modulefiles-tcl"):
        done, envs = login(
            f"""module use {shlex.quote(f"{site}/{flavour}")}
module load hpc-classify/9.9
dump {flavour}
module unload hpc-classify""",
            env={"UCX_NET_DEVICES": "mlx5_2:1"},
        )
        assert done.returncode == 0, done.stderr
        loaded = envs[flavour]
        assert {k: loaded.get(k) for k in expected} == {**expected, "UCX_NET_DEVICES": "mlx5_2:1"}
        assert loaded["PATH"] == f"{site}/venv/bin:{CLEAN_PATH}"
        assert loaded["HPC_CLASSIFY_HOME"] == str(site)
