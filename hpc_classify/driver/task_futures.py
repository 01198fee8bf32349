"""What a done Dask future of the dispatcher yields: its result, or the error that ended it (no import-time
effects)."""

from __future__ import annotations

from typing import Any

# A finished task's result is small (markers): fetched in well under a second. Past this, its worker died
# between the task's end and the fetch, and the client waits for the task to run again: for ever when no
# worker is left, and the dispatcher's loop (signals, --worker-wait) with it.
GATHER_TIMEOUT = 30.0


def result_or_error(future: Any) -> tuple[Any, BaseException | None]:
    """A done task's result, or what ended it: its error, a cancellation, or its worker's death between the
    task's end and the gather (the result was lost with the worker: a TimeoutError after GATHER_TIMEOUT; the
    files it finished have their markers, which the caller counts)."""
    if future.status == "finished":
        try:
            return future.result(timeout=GATHER_TIMEOUT), None
        except TimeoutError:
            return None, TimeoutError(
                f"the result of task {future.key} could not be fetched within {GATHER_TIMEOUT:g} s: its worker "
                "died after the task ended, and no worker ran it again"
            )
        except Exception as exc:
            return None, exc
    return None, future_error(future)


def future_error(future: Any) -> BaseException:
    if future.status == "cancelled":
        from concurrent.futures import CancelledError

        return CancelledError(f"task {future.key} was cancelled (its worker or the scheduler went away)")
    try:
        return future.exception()
    except Exception as exc:  # the exception itself could not be unpickled, or the client lost the scheduler
        return exc
