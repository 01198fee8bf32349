"""The per-node entry inside a Slurm allocation (`srun --ntasks-per-node=1 hpc-classify node ...`).

Rank 0 starts the Dask scheduler and publishes its scheduler file atomically in a job-scoped directory;
every node starts its workers against that file; rank 0 waits (with a deadline) until all expected
workers joined, runs the driver it is given, then shuts the scheduler and workers down so that every
node's entry returns and the job ends at once. Non-zero ranks return when their workers exit. Shared
files go through `Incarnation` (job_incarnation.py): another run with the same job id may have left some.

The job's SLURM_* facts come from `slurm_env` (the one module that reads them). This module never
imports the driver (the CLI hands a callable in) nor torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from hpc_classify.cluster.connect import retire_and_shut_down
from hpc_classify.cluster.file_looks import LONGEST_GAP, Backoff
from hpc_classify.cluster.hidden_gpus import warn_if_gpus_hidden
from hpc_classify.cluster.job_incarnation import Incarnation
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.kill_wait import kill_wait_here
from hpc_classify.cluster.local import (
    refuse_cuda_without_gpu,
    refuse_workers_other_than_gpus,
    visible_gpu_count,
)
from hpc_classify.cluster.node_end import end_node
from hpc_classify.cluster.node_files import log_tail, read_json
from hpc_classify.cluster.node_options import NodeOptions
from hpc_classify.cluster.node_processes import NodeProcesses
from hpc_classify.cluster.node_refusal import report_refusal
from hpc_classify.cluster.other_rank import OtherRankRole
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWriter
from hpc_classify.cluster.slurm_env import NodeIdentity, node_cores, refuse_several_tasks_per_node
from hpc_classify.cluster.worker_command import WorkerSpec, refuse_gpu_worker_options, worker_command
from hpc_classify.cluster.worker_roster import WorkerRoster
from hpc_classify.errors import ClusterError, ConfigError
from hpc_classify.exit_codes import STOPPED_BEFORE_PROGRESS
from hpc_classify.stop_request import StopRequest
from hpc_classify.worker_env import cpu_worker_environment, ucx_environment

logger = logging.getLogger(__name__)


def run_node(
    options: NodeOptions,
    run_driver: Callable[[str, StopRequest], int],
    *,
    identity: NodeIdentity | None = None,
    stop: StopRequest | None = None,
    on_outcome: Callable[[int], None] | None = None,
) -> int:
    """Run this node's part of the job; rank 0 returns the driver's exit code (5, STOPPED_BEFORE_PROGRESS, for a
    stop before the driver started). `run_driver(scheduler file, stop)`; on rank 0 `stop` (a new one if
    None) holds the stop signals for the whole entry, so that the caller can read afterwards what stopped
    the run, and `on_outcome(code)` is called as soon as the code is known, before the cluster's end: after a
    stop signal that end has only what KillWait leaves (the stop report, cluster/stop_report.py, comes first)."""
    if identity is None:
        refuse_several_tasks_per_node()  # every task of such a step refuses: none is the node's own
        identity = NodeIdentity.from_environment()
    stop = stop if stop is not None else StopRequest(kill_wait=kill_wait_here())
    try:
        launcher = NodeLauncher(options, identity)
    except ConfigError as error:
        # The other nodes stop now, not after --worker-timeout.
        report_refusal(
            identity,
            error,
            options.job_root,
            wait=options.worker_timeout,
            poll_interval=options.poll_interval,
        )
        raise
    logger.info(
        "node %s: rank %d of %d, job %s, job dir %s",
        identity.node_name,
        identity.rank,
        identity.num_nodes,
        identity.job_id,
        launcher.job_dir,
    )
    clean = False
    # Rank 0 holds the stop signals until its processes are stopped too: a warning while they stop must not
    # kill it (USR1's default action) and turn the driver's exit code into a signal's.
    with stop if identity.rank == 0 else contextlib.nullcontext():
        try:
            if identity.rank != 0:
                code = launcher.run_other_rank()
            else:
                code = launcher.run_rank0(run_driver, stop)
                if on_outcome is not None:
                    on_outcome(code)
            clean = True
            return code
        finally:
            end_node(launcher, clean, stopping=identity.rank == 0 and stop.requested, within=stop.within)


class NodeLauncher(OtherRankRole):
    def __init__(self, options: NodeOptions, identity: NodeIdentity):
        self.options = options
        self.identity = identity
        self.paths = JobPaths.for_job(options.job_root, identity.job_id, identity.restart_count)
        self.job_dir = self.paths.job_dir
        self.scheduler_file = self.paths.scheduler_file
        self.incarnation = Incarnation(identity.incarnation)
        self.processes = NodeProcesses(self.paths, identity.node_name, self.incarnation)
        self.heartbeat: HeartbeatWriter | None = None  # rank 0's, from its scheduler's start to its end
        self.client: Any = None  # rank 0's, connected to its scheduler until end_cluster
        self.deadline = time.monotonic() + options.worker_timeout
        gpus = self._gpus()
        self._refuse_what_this_node_cannot_do(gpus)
        # A GPU node that shows this job none of its GPUs (no --gpus-per-node): CPU workers, said loudly.
        self.gpus_hidden = warn_if_gpus_hidden(options.device, gpus, f"node {identity.node_name}")
        self.workers_per_node = options.workers_per_node or gpus or 1
        self.roster = WorkerRoster(self.paths, self.incarnation, identity.node_names, options.worker_timeout)

    def _refuse_what_this_node_cannot_do(self, gpus: int) -> None:
        """Options that this node's workers could not honour are errors before anything starts."""
        opts, node = self.options, self.identity.node_name
        refuse_cuda_without_gpu(
            opts.device,
            gpus,
            f"node {node}",
            hint="ask Slurm for GPUs on a GPU partition (--gpus-per-node, on sbatch or `hpc-classify submit`), "
            "check CUDA_VISIBLE_DEVICES there, or use --device cpu",
        )
        refuse_gpu_worker_options(
            opts.rmm_pool_size, opts.enable_cudf_spill, gpus=gpus, device=opts.device, node_name=node
        )
        refuse_workers_other_than_gpus(
            "--workers-per-node",
            opts.workers_per_node,
            gpus,
            node,
            hint="drop --workers-per-node on GPU nodes (ask Slurm for the GPUs you want with "
            "--gpus-per-node), or pass --device cpu for CPU workers",
        )

    # ----- rank 0 ----------------------------------------------------------------------------
    def run_rank0(self, run_driver: Callable[[str, StopRequest], int], stop: StopRequest) -> int:
        """Start the scheduler and this node's workers, wait for every node's, then run the driver with
        `stop`, which the caller entered before anything started: a stop signal before the driver runs
        means start nothing, and one while the driver starts up reaches it. Its cluster is ended by
        end_cluster, which run_node calls once the caller has the code."""
        client = None
        try:
            self.incarnation.take_job_dir(self.paths, self.identity.node_name)
            self.start_scheduler()
            scheduler = self.processes.running["scheduler"]
            # It beats until node_end.end_node writes its ended beat, after the driver returned.
            self.heartbeat = HeartbeatWriter(
                self.paths.heartbeat,
                self.identity.node_name,
                alive=lambda: scheduler.poll() is None,
                interval=self.options.heartbeat_interval,
                incarnation=self.incarnation,
                finished=lambda: stop.finished,  # the driver's count: the other nodes requeue after progress
            ).start()
            self.start_workers()
            client = self._connect()
            self.wait_for_workers(client, stop)
            if stop.requested:
                logger.warning("%s received before the driver started: stopping", stop.signal_name)
                return STOPPED_BEFORE_PROGRESS
            logger.info(
                "all %d workers joined; running the driver", sum(self.roster.expected_workers().values())
            )
            code = run_driver(str(self.scheduler_file), stop)
            if self.gpus_hidden:  # again beside the run's result: the log's start is far behind by now
                logger.warning("%s", self.gpus_hidden)
            return code
        finally:
            self.client = client
            if client is not None and self.heartbeat is not None:
                self.heartbeat.scheduler_ends()  # on purpose from now on: its exit is no failure to report

    def end_cluster(self, timeout: float) -> None:
        """Rank 0: retire the workers and stop the scheduler, so that every node's entry returns, within
        `timeout` s."""
        client, self.client = self.client, None
        if client is not None:
            retire_and_shut_down(client, timeout)

    def start_scheduler(self) -> None:
        """Start the scheduler, then publish its file with this run's token in one atomic rename."""
        private = self.paths.private_scheduler_file(os.getpid())
        argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(private)]
        argv += ["--protocol", self.options.protocol, "--port", "0", "--dashboard-address", ":0"]
        if self.options.interface:
            argv += ["--interface", self.options.interface]
        self.processes.spawn("scheduler", argv, ucx_environment(gpus=visible_gpu_count() > 0))
        # Every node waits for this one file: looked at every poll_interval, without backoff.
        info = self._poll(
            lambda: read_json(private), "the scheduler to write its address", "scheduler", longest=0.0
        )
        self.incarnation.write(self.scheduler_file, info)  # Dask reads only the keys it knows
        private.unlink(missing_ok=True)  # a scheduler that died at once took its file along
        logger.info("scheduler at %s (dashboard port %s)", info["address"], info.get("services", {}))

    def wait_for_workers(self, client: Any, stop: StopRequest) -> None:
        """Wait until every node's workers joined (WorkerRoster.wait); fail fast when a node reports that
        it refused its options or that its worker exited, else at the deadline, naming the missing nodes with their log tails."""
        self.roster.wait(
            client,
            stop,
            self.deadline,
            self.options.poll_interval,
            lambda: self.processes.record_exit("worker"),
        )

    # ----- workers ---------------------------------------------------------------------------
    def start_workers(self) -> None:
        # GPU workers: dask-cuda pins each to its GPU; CPU workers: an equal share of the node's cores.
        env = (
            ucx_environment(gpus=True)
            if self._gpus()
            else cpu_worker_environment(
                node_cores(), self.workers_per_node, gpus_on_node=visible_gpu_count() > 0
            )
        )
        directory = self.paths.node_dir(self.identity.node_name)
        directory.mkdir(parents=True, exist_ok=True)
        self.incarnation.write(
            self.paths.node_workers(self.identity.node_name), {"workers": self.workers_per_node}
        )
        self.processes.spawn("worker", self.worker_command(), env, record_exit=True)

    def worker_command(self) -> list[str]:
        opts = self.options
        spec = WorkerSpec(
            node_name=self.identity.node_name,
            scheduler_file=str(self.scheduler_file),
            scheduler_address=""
            if opts.interface
            else str((self.incarnation.read(self.scheduler_file) or {})["address"]),
            workers=self.workers_per_node,
            gpus=self._gpus(),
            threads_per_worker=opts.threads_per_worker,
            protocol=opts.protocol,
            # Dask's --death-timeout is also the nanny's deadline for each start of its worker (imports, CUDA,
            # an RMM pool: a minute and more on a cold shared file system): never below --worker-timeout.
            death_timeout=max(opts.death_timeout, opts.worker_timeout),
            interface=opts.interface,
            local_directory=opts.local_directory,
            rmm_pool_size=opts.rmm_pool_size,
            enable_cudf_spill=opts.enable_cudf_spill,
        )
        return worker_command(spec)

    def _gpus(self) -> int:
        return 0 if self.options.device == "cpu" else visible_gpu_count()

    # ----- processes -------------------------------------------------------------------------
    def _poll(
        self, read: Callable[[], Any], what: str, watch: str | None = None, *, longest: float = LONGEST_GAP
    ) -> Any:
        """Poll `read()` until it returns a value, every poll_interval backing off to `longest` (file_looks.py);
        fail at the deadline or if process `watch` exits."""
        looks = Backoff(self.options.poll_interval, longest)
        while (value := read()) is None:
            proc = self.processes.running.get(watch or "")
            if proc is not None and proc.poll() is not None:
                log = self.processes.log(str(watch))
                raise ClusterError(
                    f"the {watch} on {self.identity.node_name} exited with {proc.returncode} "
                    f"while waiting for {what}; its log ends:\n{log_tail(log)}",
                    hint="check --protocol/--interface and the Python environment",
                )
            if time.monotonic() > self.deadline:
                raise ClusterError(
                    f"node {self.identity.node_name}: waited {self.options.worker_timeout:.0f} s for {what} in vain",
                    hint=f"check rank 0's log and {self.job_dir}",
                )
            looks.sleep()
        return value

    def _connect(self) -> Any:
        from distributed import Client

        return Client(
            scheduler_file=str(self.scheduler_file), timeout=self.options.worker_timeout, set_as_default=False
        )
