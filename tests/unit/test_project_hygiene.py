"""Checks that keep the repository coherent: lint, and pins that cover every dependency."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINTED = ["hpc_classify", "tests", "benchmarks", "examples", "env"]


def _name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


@pytest.mark.skipif(
    shutil.which("ruff", path=str(Path(sys.executable).parent)) is None, reason="ruff not installed"
)
@pytest.mark.parametrize("command", [["check"], ["format", "--check"]])
def test_ruff_is_clean(command):
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent))
    done = subprocess.run([ruff, *command, *LINTED], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_runtime_dependency_is_pinned_for_the_module_install():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins = {
        _name(line): line.strip()
        for line in (ROOT / "env" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    unpinned = [dep for dep in project["dependencies"] if _name(dep) not in pins]
    assert unpinned == []
    assert all("==" in pins[_name(dep)] for dep in project["dependencies"])


def test_test_module_basenames_are_unique():
    # pytest imports test modules by basename (no packages under tests/): a second test_x.py anywhere makes
    # collection fail on a fresh clone with "import file mismatch".
    names = sorted(path.name for path in (ROOT / "tests").rglob("test_*.py"))
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_login_advice_names_the_command_the_pinned_hub_client_installs():
    # The pinned huggingface_hub installs `hf` (login: `hf auth login`), no longer `huggingface-cli`: advice to run
    # the old command fails with "command not found" on the very step that unlocks a gated model.
    assert (Path(sys.executable).parent / "hf").exists()
    texts = [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "env").iterdir()]
    texts += [
        *(ROOT / "hpc_classify").rglob("*.py"),
        *(ROOT / "slurm").iterdir(),
        *(ROOT / "examples").rglob("*"),
    ]
    stale = [
        str(p.relative_to(ROOT))
        for p in texts
        if p.is_file() and "huggingface-cli" in p.read_text(errors="replace")
    ]
    assert stale == []
