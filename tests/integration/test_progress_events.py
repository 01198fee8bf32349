"""Progress counts documents as the workers' batches finish, not when a task ends: a task on a real Dask
worker reports its batches (the engine's batch hook), the driver's Progress hears them while the task is
still running, and the task's end replaces the announced figures with its exact ones."""

from __future__ import annotations

import distributed
import pytest
from distributed import Client, LocalCluster

from hpc_classify.driver import worker_tasks
from hpc_classify.driver.progress import Progress
from hpc_classify.engine.batch_progress import report


def _classify_in_batches(unit: str, unit_bytes: int, gate: str) -> int:
    with worker_tasks.reporting_to_driver(unit, unit_bytes):
        report(10, 40)  # 10 of the call's 40 documents went through the model
        report(10, 40)
        distributed.Event(gate).wait(timeout=120)  # hold the task until the driver has seen them
        report(20, 40)
    return 40


@pytest.fixture
def every_batch_reported(monkeypatch):
    monkeypatch.setattr(worker_tasks, "PROGRESS_EVENT_SECONDS", 0.0)


def test_documents_are_counted_while_the_task_runs(every_batch_reported):
    from driver_support import wait_for

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        progress = Progress(1, interval=3600, total_bytes=1000)
        client.subscribe_topic(
            worker_tasks.PROGRESS_TOPIC,
            lambda event: progress.documents_classified(
                event[1]["unit"], event[1]["documents"], event[1]["bytes"]
            ),
        )
        progress.unit_started("task-1")
        future = client.submit(_classify_in_batches, "task-1", 1000, "gate-1", pure=False)

        wait_for(lambda: progress.documents >= 20, timeout=60, what="the first two batches' events")
        assert not future.done()
        assert progress.documents == 20 and progress.bytes_done == pytest.approx(500.0)
        assert 0 < progress.eta_seconds() < float("inf")

        distributed.Event("gate-1", client=client).set()
        assert future.result(timeout=60) == 40
        progress.unit_done("task-1", documents=40, size=1000, files=1)
        assert (progress.documents, progress.bytes_done, progress.files_done) == (40, 1000, 1)
        # A late event of a finished task is not counted twice.
        progress.documents_classified("task-1", 20, 500)
        assert progress.documents == 40
