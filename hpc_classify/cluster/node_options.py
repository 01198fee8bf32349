"""`NodeOptions`: the launcher's settings of `hpc-classify node` and `submit` (cluster/slurm_node.py), each
checked when they are made, so that a negative or nan timeout fails before the job is queued, not inside it."""

from __future__ import annotations

from dataclasses import dataclass

from hpc_classify.errors import ConfigError
from hpc_classify.whole_numbers import is_seconds, is_whole_number, plain_number, seconds_rule


@dataclass(frozen=True)
class NodeOptions:
    """Launcher settings (the driver's own settings travel separately, as its command line)."""

    job_root: str  # job-scoped directories are created below it (see job_layout.py)
    protocol: str = "tcp"
    interface: str | None = None  # e.g. ib0; default: the address that routes to the scheduler
    worker_timeout: float = 300.0  # deadline for the scheduler file and for all workers to join
    device: str = "auto"
    workers_per_node: int | None = None  # default: one per visible GPU, or one CPU worker
    threads_per_worker: int = 1  # task threads; on CPU torch itself uses the node's cores
    rmm_pool_size: str | None = None  # dask-cuda: e.g. "70GB"
    enable_cudf_spill: bool = False  # dask-cuda: cuDF spilling to host memory
    local_directory: str | None = None  # worker scratch (node-local disk); default: Dask's
    # A worker whose scheduler vanished exits after this; another node that sees no heartbeat from rank 0
    # for this long stops its workers and exits with the resumable code (ending the job).
    death_timeout: float = 60.0
    heartbeat_interval: float = 5.0  # rank 0 rewrites <job dir>/heartbeat.json this often
    # Rank 0 asks its scheduler this often while it waits for the workers; the waits' looks at the shared job
    # directory start this often and back off (file_looks.py). Not a command-line option: see docs/slurm.md.
    poll_interval: float = 0.2
    shutdown_poll_interval: float = 1.0  # other ranks: first gap of their watch of rank 0 (file_looks.py)

    def __post_init__(self) -> None:
        seconds = (
            "worker_timeout",
            "death_timeout",
            "heartbeat_interval",
            "poll_interval",
            "shutdown_poll_interval",
        )
        for name in seconds:  # a negative or nan timeout would fail inside the job, after it was queued
            value = getattr(self, name)
            if not is_seconds(value, allow_zero=False):
                raise ConfigError(f"{name} must be {seconds_rule(allow_zero=False)}, not {value!r}")
            object.__setattr__(self, name, plain_number(value))  # numpy's (computed) as Python's, for JSON
        for name in ("workers_per_node", "threads_per_worker"):
            value = getattr(self, name)
            if value is not None and not is_whole_number(value, 1):
                raise ConfigError(f"{name} must be a whole number >= 1, not {value!r}")
            object.__setattr__(self, name, None if value is None else plain_number(value))
