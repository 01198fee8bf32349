"""How many tasks the driver keeps in flight (driver/dispatch.py): `tasks_per_worker` per task thread of a real
in-process Dask cluster, so that a worker started with several threads has a task queued behind each running
one, as a one-thread worker has."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client, LocalCluster

from hpc_classify.config import RunConfig
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.summary import RunStats
from hpc_classify.stop_request import StopRequest


@pytest.mark.parametrize(("workers", "threads", "tasks_per_worker"), [(1, 1, 2), (2, 3, 2), (1, 4, 1)])
def test_tasks_in_flight_are_counted_per_worker_thread(
    tmp_path: Path, workers: int, threads: int, tasks_per_worker: int
) -> None:
    config = RunConfig(
        inputs=(str(tmp_path),),
        output=str(tmp_path / "out"),
        classifiers=("stored only",),
        tasks_per_worker=tasks_per_worker,
    )
    with (
        LocalCluster(n_workers=workers, threads_per_worker=threads, processes=False) as cluster,
        Client(cluster) as client,
    ):
        dispatcher = Dispatcher(
            client,
            RunContext(
                config=config,
                output_dir=str(tmp_path),
                fingerprint="f",
                stats=RunStats(),
                failures=FailureLog(str(tmp_path)),
                stop=StopRequest(()),
            ),
            progress=Progress(0, interval=60),
        )
        assert dispatcher.capacity() == tasks_per_worker * workers * threads
