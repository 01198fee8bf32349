"""tests/process_state.py: what an in-process cluster leaves on distributed's loggers is removed at its module's end."""

from __future__ import annotations

import logging

from distributed import LocalCluster
from process_state import _distributed_deque_handlers, remove_deque_handlers_added_since


def _count() -> int:
    return sum(len(handlers) for handlers in _distributed_deque_handlers().values())


def test_a_closed_clusters_log_handlers_still_referenced_are_removed():
    """distributed removes a Scheduler's or Worker's DequeHandler only once the object is garbage, not at its
    close: one still referenced (here by the test; in the suite by a thread or cache) keeps it on its logger."""
    before = _count()
    saved = _distributed_deque_handlers()
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster:
        scheduler, worker = cluster.scheduler, next(iter(cluster.workers.values()))
    assert _count() == before + 2  # closed, still on the loggers: its records kept, 10,000 each
    logging.getLogger("distributed.scheduler").warning("recorded by the closed scheduler's handler")
    assert len(scheduler._deque_handler.deque) >= 1

    assert remove_deque_handlers_added_since(saved) == 2

    assert _count() == before
    assert (len(scheduler._deque_handler.deque), len(worker._deque_handler.deque)) == (0, 0)
