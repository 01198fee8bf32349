"""A node launcher killed outright (SIGKILL, the OOM killer) takes its scheduler and workers with it: they run
in process groups of their own, and orphans would hold the node (and answer for a dead rank 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hpc_classify.cluster import die_with_parent

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's parent-death signal")

LAUNCHER = """
import sys, time
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_processes import NodeProcesses
processes = NodeProcesses(JobPaths.for_job(sys.argv[1], "42"), "node1")
processes.spawn("worker", [sys.executable, "-c", "import time; time.sleep(600)"], {})
with open(sys.argv[2], "w") as out:
    out.write(str(processes.running["worker"].pid))
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    """Running, not a zombie waiting for whoever adopted it."""
    try:
        return " Z " not in Path(f"/proc/{pid}/stat").read_text().split(")", 1)[1][:4]
    except FileNotFoundError:
        return False


def _wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def test_a_spawned_process_ends_when_its_launcher_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(tmp_path), str(pid_file)], env=env)
    try:
        assert _wait_for(lambda: pid_file.exists() and pid_file.read_text(), 60), "the launcher never spawned"
        child = int(pid_file.read_text())
        # The command itself runs, under its own name (exec, same pid).
        assert _wait_for(lambda: b"time.sleep(600)" in Path(f"/proc/{child}/cmdline").read_bytes(), 30)
        launcher.kill()
        launcher.wait(timeout=30)
        assert _wait_for(lambda: not _alive(child), 30), f"process {child} outlived its launcher"
    finally:
        launcher.kill()
        if pid_file.exists() and pid_file.read_text() and _alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_child_whose_parent_died_before_it_asked_does_not_start() -> None:
    with pytest.raises(SystemExit, match="parent 1 is gone"):
        die_with_parent.die_with(1)  # our parent is not pid 1: as if it had died and we were adopted
