"""The local workers' preload: a heartbeat failure is dropped only once the worker is closing."""

from __future__ import annotations

import asyncio
import logging

from distributed import Scheduler, Worker

from hpc_classify.cluster.worker_signals import HEARTBEAT_FAILURE, HeartbeatAtCloseFilter


def _passes(worker_filter: HeartbeatAtCloseFilter, msg: str) -> bool:
    record = logging.LogRecord("distributed.worker", logging.ERROR, __file__, 1, msg, None, None)
    return worker_filter.filter(record)


def test_a_heartbeat_failure_is_dropped_only_while_the_worker_closes():
    seen: dict[str, tuple[bool, bool]] = {}

    async def lifecycle() -> None:
        async with Scheduler(dashboard_address=":0", port=0) as scheduler:
            worker = Worker(scheduler.address, nthreads=1, dashboard=False)
            worker_filter = HeartbeatAtCloseFilter(worker)
            await worker
            seen["running"] = (
                _passes(worker_filter, HEARTBEAT_FAILURE + "."),
                _passes(worker_filter, "other"),
            )
            await worker.close()
            seen["closed"] = (
                _passes(worker_filter, HEARTBEAT_FAILURE + "."),
                _passes(worker_filter, "other"),
            )

    asyncio.run(lifecycle())

    assert seen["running"] == (True, True)  # a real failure while running still shows
    assert seen["closed"] == (False, True)  # the close's own race is dropped, nothing else is
