"""The per-node entry inside a Slurm allocation (`srun --ntasks-per-node=1 hpc-classify node ...`).

Rank 0 starts the Dask scheduler and publishes its scheduler file atomically in a job-scoped directory;
every node starts its workers against that file; rank 0 waits (with a deadline) until all expected
workers joined, runs the driver it is given, then shuts the scheduler and workers down so that every
node's entry returns and the job ends at once. Non-zero ranks return when their workers exit.

The job's SLURM_* facts come from `slurm_env` (the one module that reads them). This module never
imports the driver (the CLI hands a callable in) nor torch.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_classify.cluster.local import TORCH_THREADS_ENV, visible_gpu_count
from hpc_classify.cluster.node_files import log_tail, read_json, record_signals, signal_ignored, write_json
from hpc_classify.cluster.rank0_heartbeat import (
    HEARTBEAT_FILE,
    HeartbeatWatch,
    HeartbeatWriter,
    claim,
    end_job_for_restart,
    job_may_be_requeued,
    planned_ending,
)
from hpc_classify.cluster.slurm_env import NodeIdentity, job_dir_for, node_cores
from hpc_classify.errors import ClusterError

logger = logging.getLogger(__name__)

SCHEDULER_FILE = "scheduler.json"
# Rank 0 writes it when it is done (or failed): the other nodes then stop their workers at once,
# also those that never reached the scheduler (they would otherwise wait for their death timeout).
SHUTDOWN_FILE = "shutdown"
# The first node that finds rank 0 lost creates it, and only that node ends (requeues) the job.
ENDING_FILE = "ending-after-rank0-loss"
# Written by a node that stopped because rank 0 was lost: its srun output may be lost with rank 0's node.
NODE_EXIT_FILE = "node-exit.json"
# Test hook: a comma-separated list of Slurm node names whose worker command fails at once.
FAIL_WORKERS_ENV = "HPC_CLASSIFY_TEST_FAIL_WORKERS_ON"


@dataclass(frozen=True)
class NodeOptions:
    """Launcher settings (the driver's own settings travel separately, as its command line)."""

    job_root: str  # job-scoped directories are created below it: <job_root>/<job id>[.<restart>]
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
    poll_interval: float = 0.2
    shutdown_poll_interval: float = 1.0  # other ranks: how often to look for rank 0's shutdown file


def run_node(
    options: NodeOptions,
    run_driver: Callable[[str], int],
    *,
    interrupted_code: int,
    identity: NodeIdentity | None = None,
) -> int:
    """Run this node's part of the job; rank 0 returns the driver's exit code."""
    identity = identity or NodeIdentity.from_environment()
    launcher = NodeLauncher(options, identity)
    logger.info(
        "node %s: rank %d of %d, job %s, job dir %s",
        identity.node_name,
        identity.rank,
        identity.num_nodes,
        identity.job_id,
        launcher.job_dir,
    )
    clean = False
    try:
        if identity.rank == 0:
            code = launcher.run_rank0(run_driver, interrupted_code)
        else:
            code = launcher.run_other_rank(interrupted_code)
        clean = True
        return code
    finally:
        if identity.rank == 0 and launcher.job_dir.is_dir():
            write_json(launcher.job_dir / SHUTDOWN_FILE, {"node": identity.node_name, "clean": clean})
        # After rank 0's clean shutdown its children exit by themselves; otherwise nothing waits for them.
        launcher.stop_processes(grace=2.0 if clean and identity.rank == 0 else 0.0)


class NodeLauncher:
    def __init__(self, options: NodeOptions, identity: NodeIdentity):
        self.options = options
        self.identity = identity
        self.job_dir = job_dir_for(options, identity)
        self.scheduler_file = self.job_dir / SCHEDULER_FILE
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.exit_files: dict[str, Path] = {}
        self.deadline = time.monotonic() + options.worker_timeout
        self.workers_per_node = options.workers_per_node or self._gpus() or 1

    # ----- rank 0 ----------------------------------------------------------------------------
    def run_rank0(self, run_driver: Callable[[str], int], interrupted_code: int) -> int:
        stop: list[str] = []
        client = None
        heartbeat = None
        try:
            # Until the driver takes over the signals, a warning signal means: start nothing, requeue.
            with record_signals((signal.SIGUSR1, signal.SIGTERM), stop):
                self.job_dir.mkdir(parents=True, exist_ok=True)
                self.start_scheduler()
                scheduler = self.processes["scheduler"]
                heartbeat = HeartbeatWriter(
                    self.job_dir / HEARTBEAT_FILE,
                    self.identity.node_name,
                    alive=lambda: scheduler.poll() is None,
                    interval=self.options.heartbeat_interval,
                ).start()
                self.start_workers()
                client = self._connect()
                self.wait_for_workers(client, stop)
            if stop:
                logger.warning("%s received before the driver started: stopping", stop[0])
                return interrupted_code
            logger.info("all %d workers joined; running the driver", self.expected_workers)
            return run_driver(str(self.scheduler_file))
        finally:
            if client is not None:
                self._shutdown_cluster(client)
            if heartbeat is not None:
                heartbeat.stop()

    def start_scheduler(self) -> None:
        """Start the scheduler, then publish its file under the final name in one atomic rename."""
        private = self.job_dir / f".{SCHEDULER_FILE}.{os.getpid()}"
        argv = [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(private)]
        argv += ["--protocol", self.options.protocol, "--port", "0", "--dashboard-address", ":0"]
        if self.options.interface:
            argv += ["--interface", self.options.interface]
        self._spawn("scheduler", argv, env={"UCX_WARN_UNUSED_ENV_VARS": "n"})
        info = self._poll(lambda: read_json(private), "the scheduler to write its address", "scheduler")
        os.replace(private, self.scheduler_file)
        logger.info("scheduler at %s (dashboard port %s)", info["address"], info.get("services", {}))

    @property
    def expected_workers(self) -> int:
        return self.identity.num_nodes * self.workers_per_node

    def wait_for_workers(self, client: Any, stop: list[str]) -> None:
        """Poll the scheduler until every node's workers joined; fail fast when a node reports that
        its worker exited, else at the deadline, naming the missing nodes with their log tails."""
        while True:
            names = [w.get("name", "") for w in client.scheduler_info(n_workers=-1)["workers"].values()]
            missing = self._missing_nodes([str(n) for n in names])
            if not missing or stop:
                return
            self._record_exit("worker")
            exited = [n for n in missing if (self._node_dir(n) / "worker-exit.json").exists()]
            if exited or time.monotonic() > self.deadline:
                raise self._missing_error(exited or missing, bool(exited))
            time.sleep(self.options.poll_interval)

    def _missing_nodes(self, worker_names: list[str]) -> list[str]:
        def joined(node: str) -> int:
            prefix = f"{node}-"
            return sum(
                1 for n in worker_names if n == node or (n.startswith(prefix) and n[len(prefix) :].isdigit())
            )

        return [node for node in self.identity.node_names if joined(node) < self.workers_per_node]

    def _missing_error(self, missing: list[str], exited: bool) -> ClusterError:
        parts = []
        for node in missing:
            log = self._node_dir(node) / "worker.log"
            parts.append(f"--- {node}: {log} ---\n{log_tail(log)}")
        why = "its worker exited" if exited else f"not within {self.options.worker_timeout:.0f} s"
        return ClusterError(
            f"no worker from {', '.join(missing)} joined the scheduler ({why}); "
            f"expected {self.workers_per_node} per node on {self.identity.num_nodes} node(s).\n"
            + "\n".join(parts),
            hint="check --interface/--protocol (the workers must reach the scheduler), that the Python "
            "environment is the same on every node, and the node logs in " + str(self.job_dir),
        )

    def _shutdown_cluster(self, client: Any) -> None:
        """Retire the workers and stop the scheduler, so that every node's entry returns."""
        try:
            client.retire_workers(close_workers=True)
        except Exception as exc:  # shutting down: a lost worker must not hide the driver's result
            logger.warning("retiring workers: %s", exc)
        with contextlib.suppress(Exception):
            client.shutdown()
        client.close()

    # ----- other ranks -----------------------------------------------------------------------
    def run_other_rank(self, interrupted_code: int) -> int:
        """Run this node's workers until rank 0 writes the shutdown file; if rank 0's heartbeat stops
        (its node or its scheduler lost), stop them and return `interrupted_code`, ending the job."""
        # The warning signal is for the driver on rank 0 (srun forwards it to every task): ignore it here.
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        self._poll(lambda: read_json(self.scheduler_file), f"the scheduler file {self.scheduler_file}")
        rank0 = HeartbeatWatch(self.job_dir / HEARTBEAT_FILE, self.options.death_timeout)
        self.start_workers()
        worker = self.processes["worker"]
        shutdown = self.job_dir / SHUTDOWN_FILE
        # A worker that exits (retired by rank 0 at the end, or failed) does not end the wait: rank 0
        # writes the shutdown file right after retiring the workers, or its heartbeat stops.
        while not shutdown.exists():
            if worker.poll() is not None:
                self._record_exit("worker")  # rank 0 fails at once if it still waits for our worker
            if rank0.stale():
                return self._rank0_lost(rank0, interrupted_code)
            time.sleep(self.options.shutdown_poll_interval)
        if (read_json(shutdown) or {}).get("clean"):
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=2.0)  # a worker the scheduler closed is exiting already
        self._record_exit("worker")
        return worker.returncode or 0

    def _rank0_lost(self, rank0: HeartbeatWatch, interrupted_code: int) -> int:
        """Rank 0 is gone: stop our workers, say so where it survives rank 0's node (the job's output may
        not), end the job once for all nodes so it restarts, and leave with the resumable code."""
        name = self.identity.node_name
        first = rank0.node() or (self.identity.node_names or ("rank 0",))[0]
        address = (read_json(self.scheduler_file) or {}).get("address", "?")
        reason = (
            f"node {name}: rank 0 ({first}) and its scheduler at {address} are gone: "
            f"{self.job_dir / HEARTBEAT_FILE} unchanged for {self.options.death_timeout:.0f} s "
            f"({rank0.last_beat()}); stopping this node's workers and exiting with {interrupted_code} "
            f"(resumable). Rank 0's logs: {self._node_dir(first)}; the markers keep every finished file"
        )
        logger.error("%s", reason)
        self.stop_processes(grace=0.0)
        record = {"node": name, "exit_code": interrupted_code, "reason": reason}
        write_json(self._node_dir(name) / NODE_EXIT_FILE, record)
        if self.identity.job_id.startswith("local-") or not claim(self.job_dir / ENDING_FILE):
            return interrupted_code
        # With --no-kill, Slurm keeps a job whose batch host failed running on the other nodes until
        # its time limit: end it here, once. A requeue also ends this process, so log first.
        job = self.identity.job_id
        requeue = job_may_be_requeued(job)
        ending = planned_ending(job, requeue)
        logger.error("%s", ending)
        write_json(self._node_dir(name) / NODE_EXIT_FILE, {**record, "job": ending})
        done = end_job_for_restart(job, requeue)
        logger.error("%s", done)  # if we are still here: the requeue or cancel ends this task too
        write_json(self._node_dir(name) / NODE_EXIT_FILE, {**record, "job": done})
        return interrupted_code

    # ----- workers ---------------------------------------------------------------------------
    def start_workers(self) -> None:
        node_dir = self._node_dir(self.identity.node_name)
        node_dir.mkdir(parents=True, exist_ok=True)
        argv = self.worker_command()
        env = {"UCX_WARN_UNUSED_ENV_VARS": "n"}
        if not self._gpus():
            env[TORCH_THREADS_ENV] = str(max(1, node_cores() // self.workers_per_node))
        self._spawn(
            "worker", argv, env=env, log=node_dir / "worker.log", exit_file=node_dir / "worker-exit.json"
        )

    def worker_command(self) -> list[str]:
        opts = self.options
        name = self.identity.node_name
        if name in os.environ.get(FAIL_WORKERS_ENV, "").split(","):
            return [
                sys.executable,
                "-c",
                f"raise SystemExit('worker disabled on {name} by ${FAIL_WORKERS_ENV}')",
            ]
        common = ["--scheduler-file", str(self.scheduler_file), "--nthreads", str(opts.threads_per_worker)]
        common += ["--protocol", opts.protocol, "--death-timeout", str(opts.death_timeout)]
        if opts.interface:
            common += ["--interface", opts.interface]
        else:
            common += ["--host", self._address_towards_scheduler()]
        if opts.local_directory:
            common += ["--local-directory", opts.local_directory]
        if self._gpus():
            # dask-cuda: one worker per visible GPU, named <node>-<i> (or <node> with one GPU).
            argv = [sys.executable, "-m", "dask", "cuda", "worker", *common, "--name", name]
            if opts.rmm_pool_size:
                argv += ["--rmm-pool-size", opts.rmm_pool_size]
            if opts.enable_cudf_spill:
                argv.append("--enable-cudf-spill")
            return argv
        argv = [sys.executable, "-m", "distributed.cli.dask_worker", *common, "--no-dashboard"]
        return argv + [
            "--nworkers",
            str(self.workers_per_node),
            "--name",
            f"{name}-0" if self.workers_per_node == 1 else name,
        ]

    def _gpus(self) -> int:
        return 0 if self.options.device == "cpu" else visible_gpu_count()

    def _address_towards_scheduler(self) -> str:
        """The local IP of the route to the scheduler (no packet is sent: UDP connect only picks a route)."""
        address = str(read_json(self.scheduler_file)["address"])
        host = address.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect((host, 9))
            return probe.getsockname()[0]

    # ----- processes -------------------------------------------------------------------------
    def _node_dir(self, node: str) -> Path:
        return self.job_dir / node

    def _spawn(
        self,
        label: str,
        argv: list[str],
        *,
        env: dict[str, str] | None = None,
        log: Path | None = None,
        exit_file: Path | None = None,
    ) -> None:
        log = log or self._node_dir(self.identity.node_name) / f"{label}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        logger.info("starting %s: %s (log %s)", label, " ".join(argv), log)
        with open(log, "ab") as out, signal_ignored(signal.SIGUSR1):
            # Children inherit the ignored USR1: the warning signal must not kill scheduler or workers.
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
                # Own process group: a Ctrl-C typed where `hpc-classify node` runs in a terminal (salloc)
                # reaches only the launcher; the driver then retires the workers and the scheduler itself.
                process_group=0,
            )
        self.processes[label] = proc
        if exit_file is not None:
            self.exit_files[label] = exit_file

    def _record_exit(self, label: str) -> None:
        """Tell rank 0, through the shared job dir, that our process failed (it then fails at once)."""
        proc = self.processes.get(label)
        path = self.exit_files.get(label)
        if proc is not None and path is not None and proc.poll() and not path.exists():
            write_json(path, {"node": self.identity.node_name, "returncode": proc.returncode})

    def _poll(self, read: Callable[[], Any], what: str, watch: str | None = None) -> Any:
        """Poll `read()` until it returns a value; fail at the deadline or if process `watch` exits."""
        while (value := read()) is None:
            proc = self.processes.get(watch or "")
            if proc is not None and proc.poll() is not None:
                log = self._node_dir(self.identity.node_name) / f"{watch}.log"
                raise ClusterError(
                    f"the {watch} on {self.identity.node_name} exited with {proc.returncode} "
                    f"while waiting for {what}; its log ends:\n{log_tail(log)}",
                    hint="check --protocol/--interface and the Python environment",
                )
            if time.monotonic() > self.deadline:
                raise ClusterError(
                    f"node {self.identity.node_name}: no {what} within {self.options.worker_timeout:.0f} s",
                    hint=f"check rank 0's log and {self.job_dir}",
                )
            time.sleep(self.options.poll_interval)
        return value

    def _connect(self) -> Any:
        from distributed import Client

        return Client(
            scheduler_file=str(self.scheduler_file), timeout=self.options.worker_timeout, set_as_default=False
        )

    def stop_processes(self, grace: float, kill_after: float = 5.0) -> None:
        """Give our children `grace` seconds to exit (they do once the scheduler closes them), then
        SIGTERM the rest together, and SIGKILL what is left after `kill_after` seconds."""
        for sig_deadline, action in ((grace, None), (kill_after, "terminate"), (None, "kill")):
            alive = [proc for proc in self.processes.values() if proc.poll() is None]
            for proc in alive:
                if action is not None:
                    logger.info("%s pid %d: %s", action, proc.pid, " ".join(map(str, proc.args[:4])))
                    getattr(proc, action)()
            deadline = time.monotonic() + (sig_deadline or 0.0)
            for proc in alive:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=None if sig_deadline is None else max(0.0, deadline - time.monotonic()))
        for label in self.processes:
            self._record_exit(label)
