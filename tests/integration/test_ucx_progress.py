"""ucxx on CPU: the workers of a local cluster run UCXX's thread progress mode, which waits in epoll.
distributed-ucxx's default, "blocking", polls the event loop without pause while a receive is pending
(always, under Dask): each idle process took most of a core, and ucxx ran 5x slower than tcp (docs/slurm.md).
The process that starts the cluster (its client, the local scheduler) keeps the default: thread mode binds
UCXX to a process's first event loop, and a second cluster in that process failed. A mode the user sets wins.
Each case runs in a process of its own: UCXX reads its settings once per process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed_ucxx")

REPO = Path(__file__).resolve().parents[2]

_MODES = """
import json
from distributed import Client
from hpc_classify.cluster.local import start_local_cluster

def mode():
    import ucxx.core
    context = ucxx.core._get_ctx()
    return [context.progress_mode, bool(context.enable_python_future)]

for _ in range(2):  # a second cluster in the same process works too (another event loop)
    with start_local_cluster(workers=1, threads_per_worker=1, protocol="ucxx", device="cpu") as cluster:
        with Client(cluster) as client:
            workers = list(client.run(mode).values())
            found = {"client": mode(), "workers": workers, "scheduler": client.run_on_scheduler(mode)}
print(json.dumps(found))
"""


def _modes(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("UCXPY_")}
    clean.update(env, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")  # no GPU: the CPU settings
    done = subprocess.run(
        [sys.executable, "-c", _MODES], capture_output=True, text=True, timeout=300, env=clean
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_the_workers_of_a_cpu_cluster_wait_in_thread_mode_the_starting_process_keeps_the_default():
    thread, blocking = ["thread", True], ["blocking", False]
    assert _modes() == {"client": blocking, "workers": [thread], "scheduler": blocking}


def test_a_progress_mode_the_user_set_wins():
    blocking = ["blocking", False]
    assert _modes(UCXPY_PROGRESS_MODE="blocking") == {
        "client": blocking,
        "workers": [blocking],
        "scheduler": blocking,
    }
