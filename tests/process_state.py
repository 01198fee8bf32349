"""The process-wide state tests must not leak into each other (imported by tests/conftest.py, which registers
these fixtures): Dask worker processes outliving their module, the Dask settings the package sets for its
process by design, and the logging the CLI's `main()` configures for its process."""

from __future__ import annotations

import multiprocessing
import time
from typing import Any

import pytest


def dask_worker_children() -> set[int]:
    """The pids of this process's live Dask worker processes (a Nanny's children)."""
    return {p.pid for p in multiprocessing.active_children() if "Dask Worker" in p.name}


@pytest.fixture(scope="module", autouse=True)
def no_worker_outlives_its_module(request: pytest.FixtureRequest):
    """A module's Dask workers must be gone once its tests and its module-scoped fixtures end (this one is set
    up first, so torn down last): a worker left by a close that failed or timed out ran for the rest of the
    session (and would in a user's notebook). Leftovers are not killed: a nanny still alive would restart its
    worker, and a later module would be blamed for it."""
    before = dask_worker_children()
    yield
    deadline = time.monotonic() + 10  # a close that returned has joined its workers: this rarely waits
    while (left := dask_worker_children() - before) and time.monotonic() < deadline:
        time.sleep(0.05)
    if left:
        pytest.fail(f"{request.module.__name__} left Dask worker process(es) {sorted(left)} alive")


# Set process-wide, not for one cluster, as a process runs one job (cluster/local.py, cluster/worker_jobs.py,
# logging_setup.py); in a test session every later test would inherit them.
PROCESS_WIDE_DASK_SETTINGS = ("distributed.deploy.lost-worker-timeout", "logging.distributed")
_UNSET = object()


def _dask_settings() -> dict[str, Any]:
    import dask.config

    return {key: dask.config.get(key, _UNSET) for key in PROCESS_WIDE_DASK_SETTINGS}


def _restore_dask_settings(saved: dict[str, Any]) -> None:
    """Put `saved` back; a setting unset then goes back to its default, which a package imported since (e.g.
    distributed) may have added, else is removed."""
    import dask.config

    for key, value in saved.items():
        if value is _UNSET:
            value = dask.config.get(key, _UNSET, config=dask.config.merge(*dask.config.defaults))
        if dask.config.get(key, _UNSET) == value:
            continue
        if value is not _UNSET:
            dask.config.set({key: value})
            continue
        *parents, leaf = key.split(".")
        node = dask.config.config
        for parent in parents:
            node = node.get(parent, {})
        node.pop(leaf, None)


@pytest.fixture(scope="module", autouse=True)
def process_wide_dask_settings_per_module():
    """Settings made by a module-scoped fixture (a cluster it starts) end with the module."""
    saved = _dask_settings()
    yield
    _restore_dask_settings(saved)


@pytest.fixture(autouse=True)
def process_wide_dask_settings_per_test():
    saved = _dask_settings()
    yield
    _restore_dask_settings(saved)


@pytest.fixture(scope="session", autouse=True)
def distributed_logging_in_place() -> None:
    """distributed sets its loggers' levels when first imported: imported before the first test (as most modules'
    collection does; inside a test phase, so that pytest's handlers on the root keep it propagating), its levels
    are part of every test's starting point, not undone after whichever test happened to import it first."""
    import distributed  # noqa: F401


def _logging_state() -> tuple[int, list[tuple[Any, ...]]]:
    """What the CLI's logging_setup.configure_logging changes: the root (basicConfig) and QUIETED_LOGGERS."""
    import logging

    from hpc_classify.logging_setup import QUIETED_LOGGERS

    loggers = [logging.getLogger(), *map(logging.getLogger, QUIETED_LOGGERS)]
    return logging.root.manager.disable, [
        (lg, lg.level, lg.handlers[:], lg.propagate, lg.disabled) for lg in loggers
    ]


def _pytests(handler: Any) -> bool:
    return type(handler).__module__ == "_pytest.logging"


def _restore_logging(saved: tuple[int, list[tuple[Any, ...]]]) -> None:
    import logging

    disable, loggers = saved
    if logging.root.manager.disable != disable:
        logging.disable(disable)
    for logger, level, handlers, propagate, disabled in loggers:
        if logger.level != level:
            logger.setLevel(level)  # (clears the loggers' cached effective levels)
        if (
            logger is logging.root
        ):  # pytest puts its capturing handlers on and off per test phase: its own business
            handlers = [h for h in handlers if not _pytests(h)] + [h for h in logger.handlers if _pytests(h)]
        if logger.handlers != handlers:
            logger.handlers[:] = handlers
        logger.propagate, logger.disabled = propagate, disabled


@pytest.fixture(autouse=True)
def process_wide_logging_per_test():
    """Tests that call the CLI's main() in-process leave its logging configured (fine for a CLI's process): a later
    test's caplog would miss distributed's INFO records, or see them, depending on the order the tests ran in."""
    saved = _logging_state()
    yield
    _restore_logging(saved)


def _distributed_deque_handlers() -> dict[Any, list[Any]]:
    """logger -> its DequeHandlers, for every logger of distributed: each Scheduler, Worker and Nanny adds one
    to its class's logger, removed only when the object is garbage (weakref.finalize), never at its close."""
    import logging

    from distributed.utils import DequeHandler

    loggers = [
        lg
        for name, lg in list(logging.root.manager.loggerDict.items())
        if isinstance(lg, logging.Logger) and name.split(".")[0] == "distributed"
    ]
    return {lg: [h for h in lg.handlers if isinstance(h, DequeHandler)] for lg in loggers}


def remove_deque_handlers_added_since(saved: dict[Any, list[Any]]) -> int:
    """Remove (and empty) the DequeHandlers added to distributed's loggers since `saved`; how many."""
    removed = 0
    for logger, handlers in _distributed_deque_handlers().items():
        for handler in handlers:
            if handler not in saved.get(logger, ()):
                logger.removeHandler(handler)
                handler.clear()
                removed += 1
    return removed


@pytest.fixture(scope="module", autouse=True)
def no_distributed_log_handler_outlives_its_module():
    """An in-process cluster's Scheduler and Workers that something still references after their close (a
    thread a test left behind, distributed's caches) keep their DequeHandler on distributed's loggers: each
    holds up to `distributed.admin.log-length` (10,000) records, and every later log call of the session went
    through all of them. The module's clusters are closed by now (this fixture is torn down after its own)."""
    saved = _distributed_deque_handlers()
    yield
    remove_deque_handlers_added_since(saved)
