"""A nanny preload whose teardown waits until `release` is set: the nanny's close (and so the local cluster's)
hangs before it stops its worker (tests/integration/test_close_leaves_no_worker.py)."""

import asyncio
import threading

release = threading.Event()


async def dask_teardown(nanny):
    while not release.is_set():
        await asyncio.sleep(0.05)
