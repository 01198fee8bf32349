"""`--cluster jobqueue`: dask-jobqueue's SLURMCluster, for sites whose queues favour many small jobs.

The scheduler runs in the driver's process; each worker is its own Slurm job (one worker per job on
CPU; on GPU a dask-cuda worker per job, one per GPU it was given). Site settings (partition, account,
walltime, cores, memory, job-script prologue such as `module load`, interface) come from Dask's
configuration, `jobqueue.slurm.*` (~/.config/dask/jobqueue.yaml or DASK_JOBQUEUE__SLURM__QUEUE=...);
the run decides the protocol, the worker count and the worker command. Worker jobs retire before their
walltime and are submitted again (worker_jobs.py), so a run may last longer than one. Never imports torch.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from hpc_classify.cluster.job_layout import jobqueue_log_dir
from hpc_classify.cluster.worker_jobs import keep_worker_jobs
from hpc_classify.cluster.worker_lifetime import lifetime_environment
from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError
from hpc_classify.worker_env import cpu_worker_environment, ucx_environment

logger = logging.getLogger(__name__)

DEFAULT_CORES = 1
DEFAULT_MEMORY = "4GB"


def jobqueue_settings(config: RunConfig) -> dict[str, Any]:
    """Keyword arguments for SLURMCluster: Dask's `jobqueue.slurm` config, completed by the run's choices."""
    import dask

    def site(key: str, default: Any = None) -> Any:
        # Dask's own lookup: `job-script-prologue` and `job_script_prologue` (what DASK_JOBQUEUE__SLURM__...
        # environment variables give) are one key to Dask; a dict's .get saw only the first spelling.
        return dask.config.get(f"jobqueue.slurm.{key}", default=None) or default

    cores = site("cores", DEFAULT_CORES)
    gpu = config.device == "cuda"
    site_worker_args = list(site("worker-extra-args", []))
    settings: dict[str, Any] = {
        "cores": cores,
        "memory": site("memory", DEFAULT_MEMORY),
        "processes": 1,  # one worker per job: the model is loaded once per job
        "protocol": config.cluster_protocol,
        "python": site("python", sys.executable),  # the same environment as the driver
        "scheduler_options": {
            "protocol": config.cluster_protocol,
            "dashboard_address": ":0",
            **site("scheduler-options", {}),
        },
        "job_script_prologue": [
            *site("job-script-prologue", []),
            # One worker process per job: torch gets the job's cores. Only --device cpu jobs get UCXX's thread
            # progress: with auto, the job's node may have GPUs (this login node cannot tell).
            *(
                f"export {name}={value}"
                for name, value in (
                    ucx_environment(gpus=True)
                    if gpu
                    else cpu_worker_environment(cores, 1, gpus_on_node=config.device != "cpu")
                ).items()
            ),
            # Each worker retires before its job's walltime; keep_worker_jobs submits another (worker_jobs.py).
            *(
                f"export {name}={value}"
                for name, value in lifetime_environment(site("walltime"), site_worker_args).items()
            ),
        ],
        "worker_extra_args": [
            *site_worker_args,
            "--nthreads",
            str(config.threads_per_worker or 1),
        ],
    }
    if gpu:
        # dask-cuda's worker through dask's CLI (`python -m dask cuda worker`): one worker per GPU of the job.
        settings["worker_command"] = "dask cuda worker"
    if site("log-directory") is None:
        settings["log_directory"] = jobqueue_log_dir(config.output)
    return settings


def slurm_cluster_class() -> Any:
    """dask_jobqueue's SLURMCluster, imported without its side effect: importing it (dask_jobqueue/runner.py)
    sets the process's SIGINT handler to `sys.exit()`, which would replace the run's own (StopRequest: a
    Ctrl-C then raised SystemExit wherever the driver was, instead of its clean stop)."""
    kept = signal.getsignal(signal.SIGINT)
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError as exc:
        raise ClusterError(
            f"--cluster jobqueue needs dask-jobqueue ({exc})", hint="pip install dask-jobqueue"
        ) from exc
    finally:
        if kept is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, kept)
    return SLURMCluster


def start_jobqueue_cluster(config: RunConfig) -> Any:
    """Start a SLURMCluster and ask for `config.workers` worker jobs (default 1); with `max_workers`
    above that, adapt between the two instead. The caller closes it."""
    SLURMCluster = slurm_cluster_class()  # noqa: N806 - a class
    settings = jobqueue_settings(config)
    if settings.get("log_directory"):
        os.makedirs(settings["log_directory"], exist_ok=True)
    try:
        cluster = SLURMCluster(**settings)
    except Exception as exc:
        raise ClusterError(
            f"could not start the jobqueue SLURMCluster: {exc}",
            hint="check the jobqueue.slurm settings in your Dask config (queue, account, cores, memory)",
        ) from exc
    keep_worker_jobs(cluster)  # before the first scale: it keeps the error of a failed first submission
    jobs = config.workers or 1
    if config.max_workers and config.max_workers > jobs:
        cluster.adapt(minimum_jobs=jobs, maximum_jobs=config.max_workers)
    else:
        cluster.scale(jobs=jobs)
    logger.info(
        "jobqueue: scheduler %s, %d worker job(s) requested; job script:\n%s",
        cluster.scheduler_address,
        jobs,
        cluster.job_script(),
    )
    return cluster
