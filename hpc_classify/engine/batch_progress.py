"""Who hears that a chunk of documents went through the model: a per-thread callback, set by the caller of
the engine (the driver's task on a worker reports it to the run's progress). No callback set: nothing
happens. The engine knows nothing of Dask or of the driver."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextvars import ContextVar

# callback(documents, of_documents): `documents` more of a call's `of_documents` are classified
BatchCallback = Callable[[float, int], None]

_callback: ContextVar[BatchCallback | None] = ContextVar("hpc_classify_batch_callback", default=None)


@contextlib.contextmanager
def reporting_batches(callback: BatchCallback | None) -> Iterator[None]:
    token = _callback.set(callback)
    try:
        yield
    finally:
        _callback.reset(token)


@contextlib.contextmanager
def scaled(factor: float) -> Iterator[None]:
    """Report `factor` of each chunk: when the same documents go through several models in turn, each
    pass is worth 1/passes of them."""
    outer = _callback.get()
    if outer is None or factor == 1:
        yield
        return
    with reporting_batches(lambda documents, total: outer(documents * factor, total)):
        yield


def report(documents: float, of_documents: int) -> None:
    callback = _callback.get()
    if callback is not None:
        callback(documents, of_documents)
