"""A lost Dask scheduler (killed, out of memory, its node or network gone) stops the run as a stop signal
does: nothing more is submitted, the summary names the cause, and the exit code is 3 (5 if this run had
finished nothing), so that a batch script requeues the job and the rerun resumes from the markers.

When the client loses its scheduler it cancels every future it holds (reason "scheduler-connection-lost",
finished ones too) and tries to reconnect; whatever happens next, the tasks are gone with the scheduler. What
the workers finished before the loss is on disk (their markers), and is counted from there
(driver/done_markers.count_late_markers), never from the futures. A future cancelled for another reason is
not a loss: the dispatcher collects it as any other cancelled task.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError
from typing import Any

logger = logging.getLogger(__name__)

CONNECTION_LOST = "scheduler-connection-lost"  # distributed's reason for the futures it cancels then
RUNNING = "running"  # a distributed.Client's status while it has its scheduler


class SchedulerWatch:
    """Notices that the client lost its scheduler: its status (it reconnects, then closes), or futures
    cancelled for that reason (a reconnect to a new scheduler at the same address runs none of ours)."""

    def __init__(self, client: Any):
        self.client = client
        self.address = _address(client)
        self._cancelled_by_loss = False

    def lost(self) -> str | None:
        """None while the client has its scheduler; else why the run stops."""
        status = getattr(self.client, "status", RUNNING)
        if status == RUNNING and not self._cancelled_by_loss:
            return None
        return (
            f"lost the Dask scheduler at {self.address} (the client is {status}): its process died or its node "
            "or network went away, and its tasks with it. Rerun the same command to resume with a new cluster"
        )

    def wait_for_one(self, wait: Callable[..., Any], futures: Sequence[Any], timeout: float) -> None:
        """Wait up to `timeout` s until one of `futures` is done (`wait`: distributed's). Cancelled futures
        are done futures here: the caller collects them, or stops when `lost()` says so."""
        try:
            wait(futures, timeout=timeout, return_when="FIRST_COMPLETED")
        except TimeoutError:
            pass
        except CancelledError as error:  # FuturesCancelledError: its groups say why
            reasons = {getattr(group, "reason", None) for group in getattr(error, "error_groups", ())}
            if CONNECTION_LOST in reasons:
                self._cancelled_by_loss = True
            else:
                logger.debug("futures cancelled: %s", error)
        except Exception:
            if self.lost() is None:  # not the scheduler's loss: a bug to see
                raise
            logger.debug("waiting on a client without its scheduler failed", exc_info=True)


def _address(client: Any) -> str:
    try:
        return str(client.scheduler.address)
    except Exception:  # noqa: BLE001 - only for the message
        return "an unknown address"
