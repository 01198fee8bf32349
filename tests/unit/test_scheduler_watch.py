"""SchedulerWatch (driver/scheduler_loss.py) against a real in-process Dask scheduler: a future cancelled by the
scheduler for another reason is a done future to collect, not a lost scheduler; a scheduler process killed is
one, named by its address. (The run's end to end: tests/faults/test_scheduler_loss.py; a distinct name: pytest
imports test modules by basename.)"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from distributed import Client, Event, Future, LocalCluster, wait

from hpc_classify.driver.scheduler_loss import SchedulerWatch


def _wait_for(event: str) -> bool:
    Event("started").set()
    return Event(event).wait(60)


def test_a_future_cancelled_by_the_scheduler_is_collected_not_a_loss() -> None:
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster,
        Client(cluster) as client,
        Client(cluster) as other,
    ):
        release = Event("release", client)
        future = client.submit(_wait_for, "release", pure=False)
        # Running, so the scheduler knows it: a cancel that reached the scheduler before the submit did would
        # cancel nothing (seen once on a loaded machine: the task then ran until the wait timed out).
        assert Event("started", client).wait(60)
        watch = SchedulerWatch(client)
        # Another client cancels our task on the scheduler (as a user at the dashboard or a console could).
        other.cancel([Future(future.key, other)], force=True)
        watch.wait_for_one(wait, [future], timeout=30)
        release.set()
        assert future.cancelled()
        assert watch.lost() is None


def test_a_scheduler_killed_is_a_loss_named_by_its_address(tmp_path: Path) -> None:
    scheduler_file = tmp_path / "scheduler.json"
    argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(scheduler_file)]
    argv += ["--host", "127.0.0.1", "--port", "0", "--dashboard-address", ":0"]
    scheduler = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:  # waits for the file
            future = client.submit(sum, [1, 2], pure=False)  # no worker: it waits on the scheduler
            watch = SchedulerWatch(client)
            assert watch.lost() is None
            scheduler.kill()
            watch.wait_for_one(wait, [future], timeout=60)
            assert future.cancelled()
            reason = watch.lost()
            address = client.scheduler.address
            assert reason is not None and reason.startswith(f"lost the Dask scheduler at {address} (")
    finally:
        scheduler.kill()
        scheduler.wait(timeout=60)
