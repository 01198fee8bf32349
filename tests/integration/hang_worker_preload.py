"""A worker preload that never returns: the worker hangs as it starts (tests/integration/test_worker_start_deadline.py)."""

import threading


def dask_setup(worker):
    threading.Event().wait()  # blocks the worker's event loop, as a stuck plugin or import would
