"""Whether the run's workers have GPUs, and the settings that need one: asked of the workers themselves, since
the driver may run on a login node without any GPU (and GPU workers' driver on a CPU node, or the reverse)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Sequence
from typing import Any

from hpc_classify.errors import ConfigError

logger = logging.getLogger(__name__)

# How long a worker has to say how many GPUs it sees: one stuck (in a CUDA init, on a frozen node) must not
# hold the driver's start for ever.
ANSWER_TIMEOUT_S = 60.0


def workers_see_gpus(client: Any, timeout: float = ANSWER_TIMEOUT_S) -> bool:
    """Whether every worker that answers within `timeout` seconds sees a GPU; with no answer (no worker yet,
    or none in time), whether the driver's node does (the Slurm launchers run the driver on one of the
    workers' nodes)."""
    from hpc_classify.cluster.local import visible_gpu_count

    answers = _ask_each_worker(client, visible_gpu_count, timeout) if client is not None else {}
    counts = [n for n in answers.values() if isinstance(n, int)]  # failed or silent: unknown
    return all(counts) if counts else bool(visible_gpu_count())


def _ask_each_worker(client: Any, function: Any, timeout: float) -> dict[str, Any]:
    """`client.run(function)` with a deadline per worker (Client.run takes none): each worker is asked on its
    own, so a silent one costs `timeout`, is named in the log and left out of the answers."""
    workers = client.scheduler_info(n_workers=-1)["workers"]

    async def ask(address: str) -> Any:
        try:
            # On the client's event loop, client.run returns an awaitable.
            answer = await asyncio.wait_for(
                client.run(function, workers=[address], on_error="return"), timeout
            )
        except TimeoutError as exc:
            name = workers[address].get("name", address)
            logger.warning(
                "worker %s (%s) did not say within %.0f s whether it sees a GPU: counted as unknown",
                name,
                address,
                timeout,
            )
            return exc
        except Exception as exc:  # e.g. the worker left since it was listed: unknown, like one that failed
            return exc
        return answer.get(address)

    async def ask_all() -> list[Any]:
        return await asyncio.gather(*(ask(address) for address in workers))

    return dict(zip(workers, client.sync(ask_all), strict=True))


class WorkerGpus:
    """The workers' GPU answer for one run: asked on first use, then reused by every setting that depends on
    it (a second question would cost a second wait on a slow worker). Lives as long as the run holds it."""

    def __init__(self, client: Any, timeout: float = ANSWER_TIMEOUT_S):
        self._client = client
        self._timeout = timeout

    @functools.cached_property
    def seen(self) -> bool:
        return workers_see_gpus(self._client, self._timeout)


def refuse_gpu_settings_without_gpus(classifiers: Sequence[Any], gpus: WorkerGpus) -> None:
    """`max_mem_gb` limits GPU memory: on workers without a GPU (where device "auto" runs on the CPU) every
    file would fail in turn, so it is a ConfigError (exit 2) before anything is submitted. (`device: cpu`
    with it is refused when the classifier is built.)"""
    limited = [c for c in classifiers if getattr(c, "max_mem_gb", None) is not None]
    if not limited or gpus.seen:
        return
    classifier = limited[0]
    raise ConfigError(
        f"max_mem_gb={classifier.max_mem_gb} was given for {type(classifier).__name__} (device "
        f"{classifier.device!r}), but the workers of this run have no GPU: max_mem_gb limits GPU memory",
        hint="leave max_mem_gb out on CPU workers, or run on GPU workers (a GPU node; "
        "--gpus-per-node with `hpc-classify submit`)",
    )
