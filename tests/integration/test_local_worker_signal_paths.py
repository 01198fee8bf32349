"""Every way a local cluster is made spares its workers the run's stop signals and still lets the driver end
them (cluster/worker_signals.py, worker_start.py): the NeMo get_client GPU path (construct_with_deadline, given
no preload), the forkserver start method (the OS parent is the fork server), a Ctrl-C held while the cluster is
made, and the processes a worker starts (the kernel build child). Real clusters, real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import dask
import pytest
from distributed import Client, LocalCluster
from driver_support import wait_for

from hpc_classify.cluster.local import start_cpu_cluster
from hpc_classify.cluster.node_files import signals_held
from hpc_classify.cluster.worker_start import construct_with_deadline, start_with_deadline
from hpc_classify.engine import tiled_attention
from hpc_classify.stop_request import STOP_SIGNALS

CPU_CLUSTER = {"n_workers": 1, "threads_per_worker": 1, "processes": True, "dashboard_address": ":0"}


def signal_state() -> tuple[list[str], list[str]]:
    """(blocked, ignored) stop signals of the calling thread's process: what a worker reports."""
    status = Path("/proc/self/status").read_text()
    blocked = int(next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16)
    names = [sig.name for sig in STOP_SIGNALS if blocked >> (sig - 1) & 1]
    return sorted(names), sorted(sig.name for sig in STOP_SIGNALS if signal.getsignal(sig) == signal.SIG_IGN)


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_a_cluster_made_without_our_preload_still_runs_it(monkeypatch) -> None:
    # get_client(cluster_type="gpu") hands LocalCUDACluster no preload: its workers kept all four signals
    # blocked, the driver's SIGTERM included (the exit's terminate() of a live worker then joins for ever).
    monkeypatch.setitem(dask.config.config, "distributed", dask.config.get("distributed"))
    cluster = construct_with_deadline(LocalCluster, dict(CPU_CLUSTER), 120, "test")
    client = Client(cluster)
    try:
        [(blocked, ignored)] = client.run(signal_state).values()
        assert (blocked, ignored) == (["SIGTERM"], ["SIGINT", "SIGUSR1", "SIGUSR2"])
        [worker] = client.run(os.getpid).values()
        os.kill(worker, signal.SIGTERM)  # from the driver: it ends
        wait_for(lambda: not alive(worker), timeout=60, what=f"worker {worker} to end")
    finally:
        client.close()
        cluster.close(timeout=60)


def test_under_forkserver_the_drivers_sigterm_still_ends_a_worker() -> None:
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        cluster = start_cpu_cluster(1, 1, "tcp")
    client = Client(cluster)
    try:
        [worker] = client.run(os.getpid).values()
        assert int(Path(f"/proc/{worker}/stat").read_text().rsplit(") ", 1)[1].split()[1]) != os.getpid()
        os.kill(worker, signal.SIGTERM)  # from the driver, which is not its OS parent here
        wait_for(lambda: not alive(worker), timeout=60, what=f"worker {worker} to end")
    finally:
        client.close()
        cluster.close(timeout=60)


class Interrupted(Exception):
    pass


def test_a_ctrl_c_held_while_the_cluster_is_made_closes_it() -> None:
    made: list[LocalCluster] = []

    class CtrlCWhileMaking(LocalCluster):
        def __init__(self, **kwargs) -> None:
            super().__init__(**kwargs)
            made.append(self)
            # To this thread (a process-directed one may go to another test's thread): held until the cluster
            # exists, delivered as the mask is restored.
            signal.pthread_kill(threading.get_ident(), signal.SIGINT)

    def interrupt(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGINT, interrupt)
    try:
        with pytest.raises(Interrupted):
            start_with_deadline(CtrlCWhileMaking, dict(CPU_CLUSTER), 120)
    finally:
        signal.signal(signal.SIGINT, previous)
    [cluster] = made
    assert cluster.status.name == "closed"  # it was left running, its scheduler and loop thread too


def test_the_kernel_build_child_ends_on_a_plain_sigterm_though_its_worker_blocks_it() -> None:
    # What the build child runs before torch: inside a worker it inherits SIGTERM blocked.
    preamble = tiled_attention._BUILD_CHILD.split("from torch.utils")[0]
    started: list[subprocess.Popen] = []

    def start() -> None:
        with signals_held(STOP_SIGNALS):  # as in a worker's thread
            started.append(
                subprocess.Popen([sys.executable, "-c", preamble + "import time\ntime.sleep(120)\n"])
            )

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    [child] = started
    try:
        wait_for(
            lambda: "time" in Path(f"/proc/{child.pid}/cmdline").read_text(), timeout=30, what="the child"
        )
        child.terminate()
        assert child.wait(timeout=60) == -signal.SIGTERM
    finally:
        child.kill()
