"""How many tasks the driver keeps in flight (driver/dispatch.py): `tasks_per_worker` per task thread of a real
in-process Dask cluster, so that a worker started with several threads has a task queued behind each running
one, as a one-thread worker has."""

from __future__ import annotations

from pathlib import Path

import pytest
from distributed import Client, LocalCluster
from fake_dispatcher import make_dispatcher


@pytest.mark.parametrize(("workers", "threads", "tasks_per_worker"), [(1, 1, 2), (2, 3, 2), (1, 4, 1)])
def test_tasks_in_flight_are_counted_per_worker_thread(
    tmp_path: Path, workers: int, threads: int, tasks_per_worker: int
) -> None:
    with (
        LocalCluster(n_workers=workers, threads_per_worker=threads, processes=False) as cluster,
        Client(cluster) as client,
    ):
        dispatcher = make_dispatcher(client, tmp_path, tasks_per_worker=tasks_per_worker)
        assert dispatcher.capacity() == tasks_per_worker * workers * threads
