"""A Dask cluster on this machine: dask-cuda's LocalCUDACluster (one worker per GPU) when GPUs are visible,
else a LocalCluster of worker processes. Never imports torch: starting a cluster stays light."""

from __future__ import annotations

import difflib
import functools
import inspect
import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from typing import Any

from hpc_classify.cluster.hidden_gpus import warn_if_gpus_hidden
from hpc_classify.cluster.main_guard import refuse_start_while_importing_main, refuse_unguarded_main
from hpc_classify.cluster.worker_signals import preload_list
from hpc_classify.cluster.worker_start import construct_with_deadline, start_with_deadline
from hpc_classify.config import DEFAULT_WORKER_WAIT
from hpc_classify.errors import ClusterError, ConfigError, UnexpectedArgumentError
from hpc_classify.whole_numbers import is_whole_number
from hpc_classify.worker_env import TORCH_THREADS_ENV, quiet_ucx_here, torch_threads, ucx_environment

logger = logging.getLogger(__name__)

# Preloaded into every local worker (and into workers the nanny restarts): ignore the terminal's Ctrl-C.
WORKER_PRELOAD = ("hpc_classify.cluster.worker_signals",)


def available_cores() -> int:
    return max(1, len(os.sched_getaffinity(0)))


def visible_gpu_count() -> int:
    """GPUs this process may use (honours CUDA_VISIBLE_DEVICES), found without importing torch or CUDA."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    listed: list[str] | None = None
    if env is not None:
        listed = [d.strip() for d in env.split(",") if d.strip()]
        if not listed or listed[0] == "-1":
            return 0
    count = _nvml_device_count()
    if count is None:
        count = _nvidia_smi_device_count()
    return min(count, len(listed)) if listed is not None else count


def refuse_cuda_without_gpu(device: str, gpus: int, where: str, hint: str) -> None:
    """`--device cuda` where no GPU is visible would start CPU workers, on which every file then fails in the
    engine: refused up front (local clusters and each Slurm node), naming `where` and what to do (`hint`)."""
    if device == "cuda" and gpus == 0:
        raise ConfigError(f"--device cuda but no GPU is visible on {where}", hint=hint)


def refuse_workers_other_than_gpus(flag: str, workers: int | None, gpus: int, where: str, hint: str) -> None:
    """GPU workers are one per visible GPU (dask-cuda on a local cluster, each Slurm node's launcher): another
    count given (`flag`) would be changed without a word (locally) or never join (on Slurm), so it is refused."""
    if gpus and workers is not None and workers != gpus:
        raise ConfigError(
            f"{flag} {workers} on {where}, which has {gpus} GPU(s): GPU nodes run one worker per visible GPU",
            hint=hint,
        )


def start_local_cluster(
    workers: int | None = None,
    threads_per_worker: int | None = None,
    protocol: str = "tcp",
    device: str = "auto",
    worker_wait: float | None = None,
) -> Any:
    """Start and return a local cluster (the caller closes it).

    CPU: `workers` processes (default 1: one process whose torch pool uses every core is faster than
    several small ones), each with `threads_per_worker` task threads (default 1) and cores/workers torch
    threads; they must start within `worker_wait` s (the run's --worker-wait; None: its default; 0: no
    deadline). GPU (device "cuda", or "auto" with GPUs visible): dask-cuda, one worker per GPU.
    """
    gpus = visible_gpu_count() if device != "cpu" else 0
    if protocol == "ucxx":
        quiet_ucx_here()  # the workers inherit it
    refuse_cuda_without_gpu(
        device, gpus, "this machine", hint="check CUDA_VISIBLE_DEVICES/nvidia-smi, or use --device cpu"
    )
    warn_if_gpus_hidden(device, gpus, "this machine")  # e.g. `srun hpc-classify run` in a job without GPUs
    if gpus:
        refuse_workers_other_than_gpus(
            "--workers",
            workers,
            gpus,
            "this machine",
            hint="drop --workers (one worker per GPU), choose the GPUs with CUDA_VISIBLE_DEVICES, or pass "
            "--device cpu for CPU workers",
        )
        return _start_cuda_cluster(
            gpus, workers, threads_per_worker, protocol, required=device == "cuda", worker_wait=worker_wait
        )
    return start_cpu_cluster(workers or 1, threads_per_worker or 1, protocol, worker_wait=worker_wait)


def check_cluster_arguments(
    cluster_class: type, n_workers: Any, threads_per_worker: Any, cluster_kwargs: Mapping[str, Any]
) -> None:
    """Before a local cluster starts: n_workers and threads_per_worker >= 1 (None: the default), and every
    keyword one that `cluster_class`, or the Nanny and Worker it hands the others to, takes. Otherwise 0
    workers wait 30 s for a worker that never joins, 0 threads become dask's default, and a misspelt keyword
    ends in a worker's traceback that never names it."""
    for name, value in (("n_workers", n_workers), ("threads_per_worker", threads_per_worker)):
        if value is not None and not is_whole_number(value, 1):
            raise ConfigError(
                f"{name} must be a whole number >= 1, not {value!r}", hint=f"leave {name} out for the default"
            )
    accepted = cluster_keywords(cluster_class)
    unknown = [name for name in cluster_kwargs if name not in accepted]
    if unknown:
        close = [match for name in unknown for match in difflib.get_close_matches(name, accepted, n=1)]
        raise UnexpectedArgumentError(
            f"unknown cluster argument(s) {', '.join(map(repr, unknown))}: {cluster_class.__name__} takes no "
            "such keyword, nor do the Nanny and Worker it passes keywords on to",
            hint=f"did you mean {', '.join(map(repr, close))}?"
            if close
            else f"see {cluster_class.__name__}'s parameters in the Dask documentation",
        )


@functools.cache
def cluster_keywords(cluster_class: type) -> frozenset[str]:
    """The keyword names `cluster_class(...)` accepts: its own (and its bases'), and those it forwards to its
    workers (Nanny's and Worker's, with their bases')."""
    from distributed import Nanny, Worker

    names: set[str] = set()
    for cls in (*cluster_class.__mro__, *Nanny.__mro__, *Worker.__mro__):
        init = cls.__dict__.get("__init__")
        if init is None:
            continue
        for parameter in list(inspect.signature(init).parameters.values())[1:]:
            if parameter.kind in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
                names.add(parameter.name)
    return frozenset(names)


def start_cpu_cluster(
    workers: int | None,
    threads_per_worker: int,
    protocol: str,
    worker_wait: float | None = None,
    **cluster_kwargs: Any,
) -> Any:
    """A LocalCluster of worker processes; `cluster_kwargs` (LocalCluster's own options) override ours. Its
    workers start within `worker_wait` s (None: --worker-wait's default; 0: no deadline), or within
    `death_timeout` where the caller gives Dask's own startup deadline."""
    from distributed import LocalCluster

    refuse_start_while_importing_main()
    check_cluster_arguments(LocalCluster, workers, threads_per_worker, cluster_kwargs)
    threads = torch_threads(available_cores(), workers or available_cores())
    logger.info(
        "starting a local CPU cluster: %s worker process(es) x %d thread(s), %d torch thread(s) each, protocol %s",
        workers or "dask's default number of",
        threads_per_worker,
        threads,
        protocol,
    )
    options = {
        "n_workers": workers,
        "threads_per_worker": threads_per_worker,
        "processes": True,
        "protocol": protocol,
        "dashboard_address": ":0",  # a free port: several runs (and test clusters) may share a node
        **cluster_kwargs,
    }
    # Over ucxx the workers (processes of their own) get UCXX's thread progress on a machine without GPUs.
    ucx = ucx_environment(gpus=visible_gpu_count() > 0) if protocol == "ucxx" else {}
    options["env"] = {**ucx, TORCH_THREADS_ENV: str(threads), **cluster_kwargs.get("env", {})}
    options["preload"] = worker_preloads(cluster_kwargs.get("preload"))
    keep_restarting_local_workers()
    try:
        # Dask's own start deadline (death_timeout) is ours: given to the nannies as well, theirs fires first
        # and leaves them waiting on the hung process, where ours kills it.
        wait = start_wait(worker_wait, cluster_kwargs)
        options.pop("death_timeout", None)
        return start_with_deadline(LocalCluster, options, wait)
    except ClusterError:  # the workers did not start in time: it says why
        raise
    except Exception as exc:
        refuse_unguarded_main(exc)
        raise ClusterError(
            f"could not start a local Dask cluster over {protocol}: {exc}",
            hint="try --protocol tcp, fewer --workers, or check that distributed-ucxx is installed for ucxx",
        ) from exc


def start_wait(worker_wait: float | None, cluster_kwargs: Mapping[str, Any]) -> float | None:
    from dask.utils import parse_timedelta

    if cluster_kwargs.get("death_timeout") is not None:
        return parse_timedelta(cluster_kwargs["death_timeout"])
    return DEFAULT_WORKER_WAIT if worker_wait is None else worker_wait


def _start_cuda_cluster(
    gpus: int,
    workers: int | None,
    threads_per_worker: int | None,
    protocol: str,
    *,
    required: bool,
    worker_wait: float | None = None,
) -> Any:
    refuse_start_while_importing_main()
    try:
        from dask_cuda import LocalCUDACluster
    except ImportError as exc:
        if required or (workers or 1) > 1:  # without it one worker on the first GPU, not the --workers given
            raise ClusterError(
                f"{gpus} GPU(s) visible but dask-cuda is not installed ({exc})",
                hint="pip install 'hpc-classify[gpu]', or run with --device cpu",
            ) from exc
        logger.warning(
            "%d GPU(s) visible but dask-cuda is missing: one local worker will use the first GPU", gpus
        )
        return start_cpu_cluster(1, threads_per_worker or 1, protocol)
    n_workers = gpus  # start_local_cluster refused another --workers
    logger.info(
        "starting a local dask-cuda cluster: %d worker(s), one per GPU, protocol %s", n_workers, protocol
    )
    keep_restarting_local_workers()
    try:
        options = {
            "n_workers": n_workers,
            "threads_per_worker": threads_per_worker or 1,
            "protocol": protocol,
            "dashboard_address": ":0",
            "preload": worker_preloads(),
        }
        # Its constructor waits for its workers with no deadline: a GPU held elsewhere would hang the run.
        return construct_with_deadline(
            LocalCUDACluster, options, start_wait(worker_wait, {}), "--worker-wait"
        )
    except ClusterError:
        raise
    except Exception as exc:
        refuse_unguarded_main(exc)
        raise ClusterError(
            f"could not start a local dask-cuda cluster over {protocol}: {exc}",
            hint="check the GPUs with nvidia-smi, try --protocol tcp, or run with --device cpu",
        ) from exc


# A local cluster closes a worker's nanny for good when no worker of its name is connected this long after
# any of its removals (distributed.deploy.lost-worker-timeout, 15 s): a worker that a document kills again
# while its nanny restarts it would then never come back. Here the nanny restarts it, and the driver's
# --worker-wait decides when workers are gone.
LOST_LOCAL_WORKER_TIMEOUT = "3650 days"


def keep_restarting_local_workers() -> None:
    """Let the nannies of a local cluster in this process restart their workers however often they die
    (the setting is read when a worker is removed, long after the cluster starts: it is set process-wide)."""
    import dask

    dask.config.set({"distributed.deploy.lost-worker-timeout": LOST_LOCAL_WORKER_TIMEOUT})


def worker_preloads(given: Any = None) -> list[str]:
    """Our preload, then the ones Dask's config names (an explicit `preload=` replaces those: keep them),
    then the caller's."""
    import dask

    configured = dask.config.get("distributed.worker.preload", default=None)
    return [*WORKER_PRELOAD, *preload_list(configured), *preload_list(given)]


def _nvml_device_count() -> int | None:
    try:
        import pynvml
    except ImportError:
        return None
    try:
        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver (NVMLError_LibraryNotFound and friends): no GPU
        return 0


def _nvidia_smi_device_count() -> int:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        listing = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in listing.splitlines() if line.startswith("GPU "))
