"""Whether the run's workers have GPUs, and the settings that need one: asked of the workers themselves, since
the driver may run on a login node without any GPU (and GPU workers' driver on a CPU node, or the reverse)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from hpc_classify.errors import ConfigError


def workers_see_gpus(client: Any) -> bool:
    """Whether every worker that answers sees a GPU; with no worker yet, whether the driver's node does (the
    Slurm launchers run the driver on one of the workers' nodes)."""
    from hpc_classify.cluster.local import visible_gpu_count

    answers = client.run(visible_gpu_count, on_error="return") if client is not None else {}
    counts = [n for n in answers.values() if isinstance(n, int)]  # a worker that failed to answer: unknown
    return all(counts) if counts else bool(visible_gpu_count())


def refuse_gpu_settings_without_gpus(classifiers: Sequence[Any], client: Any) -> None:
    """`max_mem_gb` limits GPU memory: on workers without a GPU (where device "auto" runs on the CPU) every
    file would fail in turn, so it is a ConfigError (exit 2) before anything is submitted. (`device: cpu`
    with it is refused when the classifier is built.)"""
    limited = [c for c in classifiers if getattr(c, "max_mem_gb", None) is not None]
    if not limited or workers_see_gpus(client):
        return
    classifier = limited[0]
    raise ConfigError(
        f"max_mem_gb={classifier.max_mem_gb} was given for {type(classifier).__name__} (device "
        f"{classifier.device!r}), but the workers of this run have no GPU: max_mem_gb limits GPU memory",
        hint="leave max_mem_gb out on CPU workers, or run on GPU workers (a GPU node; "
        "--gpus-per-node with `hpc-classify submit`)",
    )
