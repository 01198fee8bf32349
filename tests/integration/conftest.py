"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def local_client():
    """A client of an in-process Dask cluster (one worker thread): what a test patches in the driver holds
    in the worker too, and the engine's batches and the tasks' frames can be counted."""
    from distributed import Client, LocalCluster

    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        yield client
