"""TEST-ONLY Dask worker preload: the worker command fails at once on the named Slurm nodes.

Loaded with DASK_DISTRIBUTED__WORKER__PRELOAD='["<this file>"]' (sbatch exports the environment to every
task); production code has no hook. The worker process exits while it starts, so its nanny fails to start
and the node's `dask worker` command exits 1, as with a broken environment on that node:

HPC_CLASSIFY_TEST_FAIL_WORKERS_ON: a comma-separated list of Slurm node names (SLURMD_NODENAME).
"""

from __future__ import annotations

import os
import sys

_node = os.environ.get("SLURMD_NODENAME", "")
if _node and _node in os.environ.get("HPC_CLASSIFY_TEST_FAIL_WORKERS_ON", "").split(","):
    sys.stderr.write(f"worker disabled on {_node} by $HPC_CLASSIFY_TEST_FAIL_WORKERS_ON\n")
    sys.stderr.flush()
    os._exit(1)
