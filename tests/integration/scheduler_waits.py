"""For tests of the waits for a scheduler (cluster/first_worker.py, scheduler_handshake.py): a call bounded by a
thread instead of hanging the suite, and a scheduler that starts only once the wait says it still waits."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from distributed import LocalCluster


def within(seconds: float, call: Callable[[], Any]) -> Any:
    """call() in a daemon thread: its result or its exception; an AssertionError if it has not returned (the
    thread is left behind, as a hung call would be)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"did not return within {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class SchedulerOnWarning(logging.Handler):
    """Added to the waits' logger: the first "still waiting for the scheduler" record starts a one-worker
    LocalCluster on `port` (in `started`; the test closes it)."""

    def __init__(self, port: int):
        super().__init__()
        self.port = port
        self.started: list[LocalCluster] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "still waiting for the scheduler" in record.getMessage() and not self.started:
            self.started.append(
                LocalCluster(n_workers=1, processes=False, scheduler_port=self.port, dashboard_address=None)
            )


Handler = TypeVar("Handler", bound=logging.Handler)


@contextmanager
def handler_on(logger: logging.Logger, handler: Handler) -> Iterator[Handler]:
    """`handler` on `logger` for the block, removed however the block ends (a later test's records must not
    reach it)."""
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextmanager
def scheduler_on_warning(port: int, waits: logging.Logger) -> Iterator[list[LocalCluster]]:
    """A SchedulerOnWarning on `waits` for the block; yields the clusters it started (none, or one), closed
    when the block ends (close a client of it inside the block)."""
    handler = SchedulerOnWarning(port)
    try:
        with handler_on(waits, handler):
            yield handler.started
    finally:
        for cluster in handler.started:
            cluster.close()
