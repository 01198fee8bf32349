"""ucxx on CPU: every process of a local cluster (and the client) runs UCXX's thread progress mode, which waits
in epoll. distributed-ucxx's default, "blocking", polls the event loop without pause while a receive is
pending (always, under Dask): each idle process took most of a core, and ucxx ran 5x slower than tcp
(docs/slurm.md). A mode the user sets wins. Each case runs in a process of its own: UCXX reads its settings
once per process."""

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

with start_local_cluster(workers=1, threads_per_worker=1, protocol="ucxx", device="cpu") as cluster:
    with Client(cluster) as client:
        workers = list(client.run(mode).values())
        print(json.dumps({"client": mode(), "workers": workers, "scheduler": client.run_on_scheduler(mode)}))
"""


def _modes(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("UCXPY_")}
    clean.update(env, PYTHONPATH=str(REPO), CUDA_VISIBLE_DEVICES="")  # no GPU: the CPU settings
    done = subprocess.run(
        [sys.executable, "-c", _MODES], capture_output=True, text=True, timeout=300, env=clean
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_ucxx_process_of_a_cpu_cluster_waits_in_thread_mode():
    thread = ["thread", True]
    assert _modes() == {"client": thread, "workers": [thread], "scheduler": thread}


def test_a_progress_mode_the_user_set_wins():
    blocking = ["blocking", False]
    assert _modes(UCXPY_PROGRESS_MODE="blocking") == {
        "client": blocking,
        "workers": [blocking],
        "scheduler": blocking,
    }
