"""A Dask worker preload for local clusters: the driver alone decides when a worker stops, and a stop it
asked for logs no traceback; and the driver's side of it, `stop_signals_held`.

The stop signals (stop_request.STOP_SIGNALS) reach more than the driver: a terminal's Ctrl-C every process of
the foreground process group, Slurm's time limit (SIGTERM) and `scancel --signal=USR1` without `B:` every
process of the job step. Left alone, a worker dies mid-file (KeyboardInterrupt, or Python's default for TERM
and USR1: the end) while the driver, which owns those signals, was going to let its in-flight files finish,
and its nanny restarts it meanwhile; the driver retires the workers itself. So the driver makes its cluster
with the stop signals blocked in the making thread: the IO loop thread it starts keeps that mask and hands it
to every worker process it spawns (restarts included), blocked from the first instruction on; a worker's
preload then ignores INT, USR1 and USR2 (SIG_IGN drops one already pending) and keeps TERM blocked, for a
thread of its own that ends the worker on a SIGTERM from its parent only (multiprocessing's terminate at the
driver's exit, a stray process reaped), never on one from Slurm or a shell. A driver SIGKILLed takes its
workers with it all the same: each exits when its pipe to the driver closes (distributed's AsyncProcess).

When a worker closes, distributed closes its connection pool while a heartbeat may still be in flight; that
heartbeat then fails with a traceback although nothing failed: "Failed to communicate with scheduler during
heartbeat" (an OSError), or, when the pool is already closed as it connects, "Unexpected exception during
heartbeat" with RuntimeError("ConnectionPool is closed"), which tornado logs a second time as an "Exception in
callback". The filter drops those once the worker is closing; a heartbeat failing while the worker runs is
still logged.
Loaded by `LocalCluster(preload=[__name__])`; Dask calls `dask_setup` in the worker's main thread.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

from hpc_classify.cluster.node_files import signals_held
from hpc_classify.stop_request import STOP_SIGNALS

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


def with_this_preload(options: dict[str, Any]) -> dict[str, Any]:
    """`options` for a local cluster, with this module among its worker preloads: workers made with the stop
    signals held must run it, or they keep all four blocked, the driver's SIGTERM included. An explicit
    `preload=` is kept (this module put first); without one, Dask's configured preloads stay (an explicit
    list replaces them)."""
    import dask

    if "preload" in options:
        preloads = preload_list(options["preload"])
    else:
        preloads = preload_list(dask.config.get("distributed.worker.preload", default=None))
    if __name__ not in preloads:
        preloads = [__name__, *preloads]
    return {**options, "preload": preloads}


def preload_list(value: Any) -> list[str]:
    """A `preload` setting (None, one name, or several) as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


@contextlib.contextmanager
def stop_signals_held() -> Iterator[None]:
    """Around the making of a local cluster, in the thread that makes it (its IO loop thread is started
    meanwhile and keeps the mask: never the driver's main thread, whose signals are only delayed here).
    The resource tracker that multiprocessing spawns for the workers is started first, with the signals held
    too (it ignores INT and TERM itself; USR1 and USR2 then stay blocked in it): started later by the loop
    thread, its start would unblock INT and TERM there, for every worker spawned after it."""
    from distributed.utils import get_mp_context

    if get_mp_context().get_start_method() != "fork":
        from multiprocessing import resource_tracker

        with signals_held(STOP_SIGNALS):
            resource_tracker.ensure_running()  # one started before (not ours) is left as it is
    with signals_held(STOP_SIGNALS):
        yield


def dask_setup(worker: Any) -> None:
    ignore_stop_signals()
    quiet_close_race(worker)


def ignore_stop_signals() -> None:
    """In the worker's main thread: the stop signals ignored, but a SIGTERM from the driver. Processes a worker
    starts inherit this (INT, USR1, USR2 ignored, TERM blocked): one that must end on a plain SIGTERM unblocks it
    first (engine/tiled_attention.py's build child does)."""
    ignored = tuple(sig for sig in STOP_SIGNALS if sig != signal.SIGTERM)
    for sig in ignored:
        signal.signal(sig, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, ignored)
    if not hasattr(signal, "sigwaitinfo"):  # macOS: no sender to tell apart; TERM keeps its default, an end
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        return
    # Blocked here and in every thread started from now on: the waiting thread alone receives it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    threading.Thread(
        target=_end_on_sigterm_from, args=(driver_pid(),), name="SIGTERM from the driver", daemon=True
    ).start()


def driver_pid() -> int:
    """The process that started this worker: multiprocessing's parent (under forkserver the OS parent is the
    fork server, not the driver whose terminate() sends the SIGTERM), else the OS parent."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None and parent.pid is not None else os.getppid()


def _end_on_sigterm_from(parent: int) -> None:
    while signal.sigwaitinfo({signal.SIGTERM}).si_pid != parent:
        pass
    # Delivered to this thread alone, unblocked: TERM's default action, the end it would have been.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
    signal.pthread_kill(threading.get_ident(), signal.SIGTERM)


def quiet_close_race(worker: Any) -> HeartbeatAtCloseFilter:
    """Install the filter on the loggers the close race reaches; returned so that a caller may remove it."""
    close_race = HeartbeatAtCloseFilter(worker)
    for name in CLOSE_RACE_LOGGERS:
        logging.getLogger(name).addFilter(close_race)
    return close_race
