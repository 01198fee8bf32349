"""A Dask worker preload for local clusters: the driver alone decides when a worker stops, and a stop it
asked for logs no traceback.

A Ctrl-C in a terminal reaches every process of the foreground process group, the local cluster's
worker processes included. Left alone, a worker dies mid-file with a KeyboardInterrupt while the driver,
which owns SIGINT, was going to let its in-flight files finish; the driver retires the workers itself.

When a worker closes, distributed closes its connection pool while a heartbeat may still be in flight; that
heartbeat then fails with a traceback although nothing failed: "Failed to communicate with scheduler during
heartbeat" (an OSError), or, when the pool is already closed as it connects, "Unexpected exception during
heartbeat" with RuntimeError("ConnectionPool is closed"), which tornado logs a second time as an "Exception in
callback". The filter drops those once the worker is closing; a heartbeat failing while the worker runs is
still logged.
Loaded by `LocalCluster(preload=[__name__])`; Dask calls `dask_setup` in the worker's main thread.
"""

from __future__ import annotations

import logging
import signal
from typing import Any

HEARTBEAT_FAILURE = "Failed to communicate with scheduler during heartbeat"
POOL_CLOSED = "ConnectionPool is closed"  # distributed's RuntimeError for a connect after rpc.close()
# Where the close race is logged: the worker's heartbeat itself, and tornado for the callback that raised.
CLOSE_RACE_LOGGERS = ("distributed.worker", "tornado.application")


class HeartbeatAtCloseFilter(logging.Filter):
    """Drops the heartbeat failure that a closing worker's own connection pool causes."""

    def __init__(self, worker: Any) -> None:
        super().__init__()
        self._worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        if not _is_close_race(record):
            return True
        return _is_running(self._worker)


def _is_close_race(record: logging.LogRecord) -> bool:
    if str(record.msg).startswith(HEARTBEAT_FAILURE):
        return True
    error = record.exc_info[1] if record.exc_info else None
    return isinstance(error, RuntimeError) and str(error) == POOL_CLOSED


def _is_running(worker: Any) -> bool:
    from distributed.worker import WORKER_ANY_RUNNING  # the states before close() begins

    return worker.status in WORKER_ANY_RUNNING


def dask_setup(worker: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    quiet_close_race(worker)


def quiet_close_race(worker: Any) -> HeartbeatAtCloseFilter:
    """Install the filter on the loggers the close race reaches; returned so that a caller may remove it."""
    close_race = HeartbeatAtCloseFilter(worker)
    for name in CLOSE_RACE_LOGGERS:
        logging.getLogger(name).addFilter(close_race)
    return close_race
