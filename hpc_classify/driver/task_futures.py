"""What a done Dask future of the dispatcher yields: its result, or the error that ended it (no import-time
effects)."""

from __future__ import annotations

from typing import Any


def result_or_error(future: Any) -> tuple[Any, BaseException | None]:
    """A done task's result, or what ended it: its error, a cancellation, or its worker's death between the
    task's end and the gather (the result was lost with the worker)."""
    if future.status == "finished":
        try:
            return future.result(), None
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
