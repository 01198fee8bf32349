"""A local cluster whose close fails or passes its deadline has its worker processes killed: `run()` (and any
caller of close_quietly) used to return with the worker still running, for as long as the calling process lived
(a notebook, a long Python session, the test run that found it)."""

from __future__ import annotations

import multiprocessing
import sys
import time
from pathlib import Path

import dask
from distributed import Client  # also: its config defaults must exist before dask.config.set below

from hpc_classify.cluster import connect as connect_module
from hpc_classify.cluster.local import start_local_cluster

HANG_PRELOAD = Path(__file__).with_name("hang_nanny_close_preload.py")


def worker_processes() -> set[int]:
    return {p.pid for p in multiprocessing.active_children() if "Dask Worker" in p.name}


def workers_left(pids: set[int], deadline_s: float = 10.0) -> set[int]:
    """Those of `pids` still alive once they are all gone or `deadline_s` has passed."""
    deadline = time.monotonic() + deadline_s
    while (left := pids & worker_processes()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def test_a_close_past_its_deadline_kills_the_workers(monkeypatch, caplog):
    monkeypatch.setattr(connect_module, "CLOSE_TIMEOUT", 2.0)
    before = worker_processes()
    with dask.config.set({"distributed.nanny.preload": [str(HANG_PRELOAD)]}):
        cluster = start_local_cluster(workers=1, device="cpu")  # as `run --cluster local` starts it
    client = Client(cluster)
    started = worker_processes() - before
    try:
        assert len(started) == 1
        # As the driver ends a run: the nanny's close hangs, so the cluster's passes its deadline.
        connect_module.close_quietly(client, cluster)
        assert "error while closing LocalCluster: timed out after 2 s" in caplog.text
        assert not workers_left(started)
        assert "killed 1 worker process(es) of the LocalCluster that did not close" in caplog.text
    finally:
        sys.modules[HANG_PRELOAD.stem].release.set()  # the nanny's close goes on (nothing left to stop)
