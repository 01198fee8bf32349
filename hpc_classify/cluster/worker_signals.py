"""A Dask worker preload: the worker ignores SIGINT, so only the driver decides when it stops.

A Ctrl-C in a terminal reaches every process of the foreground process group, the local cluster's
worker processes included. Left alone, a worker dies mid-file with a KeyboardInterrupt while the driver,
which owns SIGINT, was going to let its in-flight files finish; the driver retires the workers itself.
Loaded by `LocalCluster(preload=[__name__])`; Dask calls `dask_setup` in the worker's main thread.
"""

from __future__ import annotations

import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
