"""The Dask settings the package makes process-wide (one job per process) do not outlive the test that made
them (tests/conftest.py puts them back): a later test's local cluster would otherwise keep a nanny whose
worker is lost for ten years. The second test reads what the first left: they run in this order."""

from __future__ import annotations

import dask.config
import distributed  # noqa: F401  its defaults (lost-worker-timeout: 15 s) are in place before the first test

from hpc_classify.cluster.local import LOST_LOCAL_WORKER_TIMEOUT, keep_restarting_local_workers

LOST = "distributed.deploy.lost-worker-timeout"


def test_a_run_sets_them_for_the_whole_process() -> None:
    keep_restarting_local_workers()
    dask.config.set({"logging.distributed": "warning"})  # as logging_setup.configure_logging does
    assert dask.config.get(LOST) == LOST_LOCAL_WORKER_TIMEOUT
    assert dask.config.get("logging.distributed") == "warning"


def test_the_next_test_has_the_defaults_again() -> None:
    assert dask.config.get(LOST) == "15s"
    assert dask.config.get("logging.distributed", None) is None
