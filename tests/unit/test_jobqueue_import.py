"""Importing dask_jobqueue sets the process's SIGINT handler to `sys.exit()` (dask_jobqueue/runner.py, at import):
in a run, which imports it when its first jobqueue cluster starts, that replaced the run's own handler, and a
Ctrl-C raised SystemExit wherever the driver was (no clean stop). cluster/jobqueue.py keeps the handler it finds."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("dask_jobqueue")

# A fresh interpreter: dask_jobqueue must not be imported yet, as in a run starting its first jobqueue cluster.
KEEPS_THE_HANDLER = """
import signal, sys
from hpc_classify.cluster import jobqueue
assert "dask_jobqueue" not in sys.modules
def runs_own(signum, frame):
    pass
signal.signal(signal.SIGINT, runs_own)
cls = jobqueue.slurm_cluster_class()
assert cls.__name__ == "SLURMCluster" and "dask_jobqueue.runner" in sys.modules
print(signal.getsignal(signal.SIGINT) is runs_own)
"""


def test_importing_slurm_cluster_keeps_the_runs_sigint_handler():
    done = subprocess.run(
        [sys.executable, "-c", KEEPS_THE_HANDLER], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
