"""A task that finished on a worker which then died, no worker left to run it again: fetching its result
ends with an error after GATHER_TIMEOUT (its files' markers count), instead of a wait for ever that held the
dispatcher's loop (signals, --worker-wait) with it."""

from __future__ import annotations

import os
import signal

import pytest
from distributed import Client, LocalCluster, wait
from distributed.core import Status

from hpc_classify.driver import task_futures


def _finished_here() -> int:
    return 7


@pytest.mark.timeout(180)
def test_the_result_of_a_task_lost_with_its_worker_is_an_error_not_a_wait_for_ever(monkeypatch) -> None:
    monkeypatch.setattr(task_futures, "GATHER_TIMEOUT", 5.0)
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster,
        Client(cluster) as client,
    ):
        future = client.submit(_finished_here, pure=False)
        wait(future)
        assert future.status == "finished"
        (nanny,) = cluster.workers.values()
        nanny.status = (
            Status.closing_gracefully
        )  # its worker is not restarted: nothing can run the task again
        os.kill(nanny.process.process.pid, signal.SIGKILL)

        result, error = task_futures.result_or_error(future)

    assert result is None and isinstance(error, TimeoutError)
    assert f"the result of task {future.key} could not be fetched within 5 s" in str(error)
