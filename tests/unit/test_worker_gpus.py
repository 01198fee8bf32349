"""The workers' GPU question at a run's start: bounded (a worker that never answers counts as unknown and is
named), and asked once per run however many settings depend on it."""

from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest
from distributed import Client, LocalCluster

from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
from hpc_classify.cluster import local
from hpc_classify.config import RunConfig
from hpc_classify.driver.run import RunHooks, run_classification
from hpc_classify.driver.worker_gpus import workers_see_gpus


def _never_answer() -> None:
    """Run on one worker: its GPU count becomes a coroutine that never returns (a worker stuck in a CUDA
    init), without blocking its event loop, so that the cluster still closes promptly."""
    import asyncio

    from hpc_classify.cluster import local as worker_local

    async def stuck() -> int:
        await asyncio.Event().wait()
        return 1

    worker_local.visible_gpu_count = stuck


# The stuck worker never answers: the question returns at all only if its deadline cut it.
@pytest.mark.timeout(60)
def test_a_worker_that_never_answers_counts_as_unknown_and_is_named(caplog) -> None:
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        stuck, _answering = sorted(client.scheduler_info(n_workers=-1)["workers"])
        client.run(_never_answer, workers=[stuck])
        with caplog.at_level(logging.WARNING, logger="hpc_classify.driver.worker_gpus"):
            # Room for the other worker's answer on a loaded machine: it must be counted.
            assert workers_see_gpus(client, timeout=10) is False  # the one answer: no GPU
    warnings = [r.getMessage() for r in caplog.records if r.name == "hpc_classify.driver.worker_gpus"]
    assert len(warnings) == 1 and f"({stuck}) did not say within 10 s whether it sees a GPU" in warnings[0]


class _Aborted(Exception):
    pass


@contextmanager
def _stop_before_dispatch(config, output_dir):
    raise _Aborted  # the start-up checks are done: nothing more to learn here
    yield


def test_a_run_asks_its_workers_once(tiny_domain_model, tmp_path, monkeypatch) -> None:
    """max_mem_gb (needs workers with GPUs) and the --piece-bytes default (follows them) share one answer."""
    monkeypatch.setattr(local, "visible_gpu_count", lambda: 1)  # the in-process worker sees it too
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jsonl").write_text('{"text": "one"}\n')
    config = RunConfig(
        inputs=[str(tmp_path / "in")],
        output=str(tmp_path / "out"),
        classifiers=[DomainClassifier(model=str(tiny_domain_model), max_mem_gb=4)],
    )
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        asked = []
        run = client.run
        monkeypatch.setattr(
            client, "run", lambda *args, **kwargs: asked.append(args[0]) or run(*args, **kwargs)
        )
        with pytest.raises(_Aborted):  # so max_mem_gb passed: the worker's GPU was seen
            run_classification(
                config, client=client, hooks=RunHooks(around_classifying=_stop_before_dispatch)
            )
    assert asked == [local.visible_gpu_count]
