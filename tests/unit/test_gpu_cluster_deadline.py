"""get_client(cluster_type="gpu") starts its dask-cuda cluster under the CPU path's start deadline (death_timeout=,
else --worker-wait's default): LocalCUDACluster's constructor waits for its workers with no deadline, so a GPU
worker that hung at start (a GPU held elsewhere, an RMM pool larger than the free memory) kept get_client waiting
for ever. No GPU can exist here: a stand-in LocalCUDACluster that never becomes ready drives the same seam
(tests/gpu/test_nemo_gpu.py starts the real one)."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

from hpc_classify.cluster import nemo_client
from hpc_classify.cluster.worker_start import construct_with_deadline
from hpc_classify.errors import ClusterError

HINT = (
    "HINT: nvidia-smi shows what holds the GPUs; the workers log into this process's stderr above; if they only "
    "start slowly, give a longer death_timeout= of get_client"
)


@pytest.fixture
def never_ready(monkeypatch):
    release = threading.Event()
    made = []

    class LocalCUDACluster:
        def __init__(self, protocol=None, dashboard_address=None, **options) -> None:
            made.append(options)
            release.wait(30)  # its workers never start (until the test ends)

        def close(self, timeout=None) -> None:
            pass  # what the late start's thread calls once the test has released it

    monkeypatch.setitem(sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=LocalCUDACluster))
    monkeypatch.setattr(nemo_client, "visible_gpu_count", lambda: 1)
    yield made
    release.set()


def test_get_client_gpu_ends_its_wait_at_death_timeout_naming_it(never_ready) -> None:
    started = time.monotonic()
    with pytest.raises(ClusterError) as raised:
        nemo_client.get_client(
            cluster_type="gpu", rmm_pool_size=None, rmm_async=False, enable_spilling=False, death_timeout=0.5
        )
    assert time.monotonic() - started < 10
    assert raised.value.one_line() == (
        "the workers of the local LocalCUDACluster did not start within 0.5 s (death_timeout= of get_client) and "
        "were stopped. A GPU worker hangs at start when its GPU is held by another process or has less free "
        "memory than the RMM pool asks, when a worker preload or plugin blocks, or when it cannot reach the "
        f"scheduler over its protocol; {HINT}"
    )
    assert len(never_ready) == 1 and "death_timeout" not in never_ready[0]  # the deadline is ours


def test_a_cluster_that_starts_in_time_is_returned_and_its_errors_are_its_own() -> None:
    class Ready:
        def __init__(self, **options) -> None:
            self.options = options

    class Broken:
        def __init__(self, **options) -> None:
            raise ValueError("no such protocol")

    cluster = construct_with_deadline(Ready, {"protocol": "tcp"}, 5, "--worker-wait")
    assert type(cluster).__name__ == "Ready" and cluster.options["protocol"] == "tcp"
    # Made with the stop signals held, so its workers run the preload that takes them (worker_signals.py).
    assert cluster.options["preload"][0] == "hpc_classify.cluster.worker_signals"
    with pytest.raises(ValueError, match="^no such protocol$"):
        construct_with_deadline(Broken, {}, 5, "--worker-wait")


def test_a_runs_local_gpu_cluster_ends_its_wait_at_worker_wait(monkeypatch) -> None:
    """`run --cluster local` on a GPU machine: the same constructor, under --worker-wait."""
    from hpc_classify.cluster import local

    release = threading.Event()

    class LocalCUDACluster:
        def __init__(self, **options) -> None:
            release.wait(30)

        def close(self, timeout=None) -> None:
            pass

    monkeypatch.setitem(sys.modules, "dask_cuda", types.SimpleNamespace(LocalCUDACluster=LocalCUDACluster))
    monkeypatch.setattr(local, "visible_gpu_count", lambda: 1)
    monkeypatch.setattr(local, "keep_restarting_local_workers", lambda: None)  # dask's config, process-wide
    started = time.monotonic()
    try:
        with pytest.raises(ClusterError) as raised:
            local.start_local_cluster(device="cuda", worker_wait=0.5)
    finally:
        release.set()
    assert time.monotonic() - started < 10
    message = raised.value.one_line()
    assert message.startswith(
        "the workers of the local LocalCUDACluster did not start within 0.5 s (--worker-wait)"
    )
    assert message.endswith("if they only start slowly, give a longer --worker-wait")


def test_ctrl_c_during_the_start_closes_the_cluster_that_comes_up_after() -> None:
    """A notebook user interrupts a slow get_client: the cluster that starts a moment later is closed, not left
    holding the GPUs with nobody to close it (a retry would then find them busy)."""
    import signal

    closed = threading.Event()

    class SlowCluster:
        def __init__(self, **options) -> None:
            time.sleep(1)  # its workers starting

        def close(self, timeout=None) -> None:
            closed.set()

    main_thread = threading.main_thread().ident
    interrupt = threading.Timer(0.2, lambda: signal.pthread_kill(main_thread, signal.SIGINT))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        interrupt.start()
        with pytest.raises(KeyboardInterrupt):
            construct_with_deadline(SlowCluster, {}, 30, "--worker-wait")
    finally:
        interrupt.cancel()
        signal.signal(signal.SIGINT, previous)
    assert closed.wait(10)
