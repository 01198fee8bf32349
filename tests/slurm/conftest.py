"""Fixtures for tests that need a real Slurm cluster (three emulated nodes on this machine).

The cluster is started once per session by tests/slurm_cluster.py and always torn down. Tests here
are skipped, with the reason, where the Slurm/munge binaries are absent or we are not root.
"""

from __future__ import annotations

import importlib.util
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

HARNESS_PATH = Path(__file__).resolve().parents[1] / "slurm_cluster.py"
GATE_PRELOAD = Path(__file__).with_name("gate_preload.py")
# munged's socket path must fit in a sockaddr_un (108 bytes): fall back to a short /tmp dir.
MAX_STATE_DIR_CHARS = 70


def _load_harness() -> ModuleType:
    """Import tests/slurm_cluster.py as `slurm_cluster` (tests/ is not a package)."""
    if "slurm_cluster" in sys.modules:
        return sys.modules["slurm_cluster"]
    spec = importlib.util.spec_from_file_location("slurm_cluster", HARNESS_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["slurm_cluster"] = module
    spec.loader.exec_module(module)
    return module


def _skip_reason(harness: ModuleType) -> str | None:
    missing = harness.missing_binaries()
    if missing:
        return f"Slurm test cluster needs {', '.join(missing)} (apt-get install -y slurm-wlm munge)"
    if os.geteuid() != 0:
        return "Slurm test cluster runs munged/slurmd as root; run the slurm tests as root"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slurm)


@pytest.fixture(scope="session")
def slurm_harness() -> ModuleType:
    """The harness module (SlurmCluster, SlurmClusterError, ...), for tests that start their own cluster."""
    harness = _load_harness()
    reason = _skip_reason(harness)
    if reason:
        pytest.skip(reason)
    return harness


def state_dir_for(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh state directory, short enough for munged's socket path."""
    path = tmp_path_factory.mktemp(name)
    if len(str(path)) > MAX_STATE_DIR_CHARS:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir="/tmp"))
    return path


@pytest.fixture(scope="session")
def slurm_cluster(slurm_harness: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A running three-node cluster (node1..node3, 2 CPUs each, partition `debug`) for the whole session.

    Yields a `SlurmCluster`: `.env` (pass to subprocesses), `.conf_path`, `.state_dir`, `.node_names`,
    `.run(cmd)`, `.sbatch(args) -> job_id`, `.wait_job(job_id, timeout) -> state`, `.node_log(name)`.
    """
    with slurm_harness.SlurmCluster(state_dir_for(tmp_path_factory, "slurm")) as cluster:
        yield cluster


@pytest.fixture
def fragile_slurm_cluster(
    slurm_harness: ModuleType, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[object]:
    """A three-node cluster of the test's own, for tests that kill nodes (`kill_node`, `restart_node`).
    slurmctld declares a silent node DOWN after 20 s (SlurmdTimeout) instead of 60."""
    state_dir = state_dir_for(tmp_path_factory, "fragile")
    with slurm_harness.SlurmCluster(state_dir, slurmd_timeout=20) as cluster:
        yield cluster


@pytest.fixture
def gated(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A closed gate and the environment that makes every worker wait at it (tests/slurm/gate_preload.py):
    each classification creates `started-<node>-...` in the gate, then waits while `hold` exists."""
    gate = tmp_path / "gate"
    gate.mkdir()
    (gate / "hold").touch()
    env = {
        "DASK_DISTRIBUTED__WORKER__PRELOAD": json.dumps([str(GATE_PRELOAD)]),
        "HPC_CLASSIFY_TEST_GATE_DIR": str(gate),
    }
    return gate, env
