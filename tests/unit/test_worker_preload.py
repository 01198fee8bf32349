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


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_heartbeat_that_meets_the_closed_connection_pool_logs_nothing_once_closed():
    """The race CI met: a heartbeat in flight as the worker closes connects through the closed pool; distributed
    logs "Unexpected exception during heartbeat" and re-raises, tornado logs the callback's traceback. Here the
    real heartbeat runs after close(); with the filter both records are dropped, without it both are seen."""
    from tornado.ioloop import IOLoop

    from hpc_classify.cluster.worker_signals import CLOSE_RACE_LOGGERS, POOL_CLOSED, quiet_close_race

    def race(filtered: bool) -> list[str]:
        kept = _Kept()
        loggers = [logging.getLogger(name) for name in CLOSE_RACE_LOGGERS]

        async def lifecycle() -> None:
            async with Scheduler(dashboard_address=":0", port=0) as scheduler:
                worker = Worker(scheduler.address, nthreads=1, dashboard=False)
                close_race = quiet_close_race(worker) if filtered else None
                for logger in loggers:
                    logger.addHandler(kept)
                try:
                    await worker
                    await worker.close()
                    heartbeat = asyncio.Event()

                    async def late_heartbeat() -> (
                        None
                    ):  # as the periodic callback runs it: tornado logs a raise
                        try:
                            await worker.heartbeat()
                        finally:
                            heartbeat.set()

                    IOLoop.current().add_callback(late_heartbeat)
                    await heartbeat.wait()
                    await asyncio.sleep(0)  # let tornado log the callback's exception
                finally:
                    for logger in loggers:
                        logger.removeHandler(kept)
                        if close_race is not None:
                            logger.removeFilter(close_race)

        asyncio.run(lifecycle())
        return [
            f"{record.name}: {record.exc_info[1] if record.exc_info else record.getMessage()}"
            for record in kept.records
            if record.levelno >= logging.ERROR
        ]

    assert race(filtered=False) == [
        f"distributed.worker: {POOL_CLOSED}",
        f"tornado.application: {POOL_CLOSED}",
    ]
    assert race(filtered=True) == []
