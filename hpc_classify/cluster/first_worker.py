"""Waiting for a cluster the driver does not start itself: a scheduler file still to be written, a scheduler
address not yet answering (each look a Dask handshake: a plain connect made a live scheduler log a "closed before
handshake completed" line), and a first worker still to join. Their workers (jobqueue's worker jobs, workers submitted as jobs of their own for a
`--scheduler-file`) wait in Slurm's queue for as long as the cluster is busy (minutes to hours), so the driver
waits under `--worker-wait` (0: as long as it takes), as it waits for workers later in the run, not under a
fixed connect timeout (two minutes once: a queue wait longer than that failed the run), and never in a call
that nothing interrupts (distributed's wait for a scheduler file has no deadline and ignores signals). A stop
request ends the wait (ConnectStopped: the driver ends the run as it ends any stopped before it began), and
so does a jobqueue keeper that gave up on every worker job (`worker_jobs.why_no_worker_can_start`): no worker
can come, and waiting would never end under --worker-wait 0. NeMo's `get_client` joins through the same waits
(its `worker_wait=` the budget, no stop request: Ctrl-C ends them). A wait still going after NOTICE_AFTER
seconds says so once as a warning naming what it waits for: a mistyped path or a scheduler that never started
is seen there, also where INFO is not logged (a notebook).

A scheduler file can outlive its scheduler (a previous job's, a scheduler killed outright). Scheduler and driver
started as jobs of their own start in either order, and the driver's may find last week's file: one whose tcp
or tls address refuses (or times out) a plain TCP connect is waited over like a missing one, until the new
scheduler overwrites it, and named as such when the wait ends. (A ucx address is not judged so: UCX without its
TCP connection manager refuses that connect while it serves.) A connection that fails anyway says the same.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from hpc_classify.cluster.rank0_liveness import scheduler_answers, scheduler_host_port
from hpc_classify.cluster.worker_jobs import why_no_worker_can_start
from hpc_classify.errors import ClusterError, ConfigError

logger = logging.getLogger(__name__)

POLL_SECONDS = 2.0  # each look waits this long: stops and the keeper's verdict are seen this soon
NOTICE_AFTER = 30.0  # seconds a wait goes on before it warns, once, that it still waits


class ConnectStopped(Exception):
    """A stop request ended the wait for the cluster: nothing was submitted."""


class WorkerWait:
    """One --worker-wait budget (`seconds`, 0: none) shared by the waits of one connection. `knob` names the
    setting in messages: "--worker-wait" (the CLI, where nothing was classified yet when it runs out) or
    "worker_wait" (get_client's keyword)."""

    def __init__(self, seconds: float, stopped: Callable[[], bool], knob: str = "--worker-wait"):
        self.seconds = seconds
        self.stopped = stopped
        self.knob = knob
        self.started = time.monotonic()

    def over(self) -> bool:
        return bool(self.seconds) and time.monotonic() - self.started >= self.seconds

    def zero(self) -> str:
        return f"{self.knob} 0" if self.knob.startswith("--") else f"{self.knob}=0"

    def describe(self) -> str:
        return (
            f"up to {self.seconds:g} s ({self.knob})"
            if self.seconds
            else f"as long as it takes ({self.zero()})"
        )

    def hint(self) -> str:
        cli = "; nothing was classified" if self.knob.startswith("--") else ""
        return f"give {self.zero()} to wait as long as the queue takes{cli}"

    def notice(self, since: float, what: str, advice: str) -> float | None:
        """Warn once, NOTICE_AFTER s after `since`, that the wait for `what` goes on; returns the new `since`
        (None once warned)."""
        if time.monotonic() - since < NOTICE_AFTER:
            return since
        logger.warning("still waiting for %s after %g s, %s: %s", what, NOTICE_AFTER, self.describe(), advice)
        return None

    def check_stop(self, what: str) -> None:
        if self.stopped():
            raise ConnectStopped(f"stopped while waiting for {what}")


def scheduler_file_names(path: str) -> str | None:
    """ "the scheduler file F (written at <mtime>) names <address>", None where it cannot be read."""
    try:
        written = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(os.stat(path).st_mtime))
        with open(path) as f:
            address = json.load(f)["address"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return f"the scheduler file {path} (written at {written}) names {address}"


def dead_scheduler_file(path: str) -> str | None:
    """Why the scheduler file at `path` is likely a dead scheduler's (its tcp or tls address does not answer),
    None when it answers, cannot be read or cannot be judged (see the module's docstring)."""
    names = scheduler_file_names(path)
    if names is None:
        return None
    address = names.rpartition(" names ")[2]
    if address.partition("://")[0] not in ("tcp", "tls") or scheduler_answers(address):
        return None
    return f"{names}, which does not answer: its scheduler may have ended (a previous job's file?)"


REMOVE_OR_START = "remove the file or start the scheduler (`dask scheduler --scheduler-file ...`)"


def wait_for_scheduler_file(path: str, wait: WorkerWait) -> None:
    """Return once `path` exists and names a scheduler that answers (or one that cannot be asked); a
    ClusterError past the wait, ConnectStopped on a stop."""
    since: float | None = time.monotonic()
    told: str | None = ""  # the reason for the wait last logged (None: the file is missing)
    while True:
        exists = os.path.exists(path)
        dead = dead_scheduler_file(path) if exists else None
        if exists and dead is None:
            return
        if dead != told:
            told = dead
            if dead is None:
                logger.info("waiting %s for the scheduler file %s to be written", wait.describe(), path)
            else:
                logger.warning("%s; waiting %s for a new scheduler to overwrite it", dead, wait.describe())
        wait.check_stop(f"the scheduler file {path}")
        if wait.over():
            if dead is not None:
                raise ClusterError(
                    f"{dead}, and no scheduler overwrote it within {wait.seconds:g} s ({wait.knob})",
                    hint=f"{REMOVE_OR_START}; {wait.hint()}",
                )
            raise ClusterError(
                f"the scheduler file {path} was not written within {wait.seconds:g} s ({wait.knob})",
                hint="check the path, and that the scheduler that writes it (`dask scheduler --scheduler-file "
                f"...`, a job of its own) runs or waits in the queue; {wait.hint()}",
            )
        if since is not None:
            since = wait.notice(
                since,
                f"the scheduler file {path}",
                "check the path, and that its scheduler runs or is queued",
            )
        time.sleep(POLL_SECONDS)  # a file appearing has no event to wait on: looked for again


def wait_for_scheduler_address(address: str, wait: WorkerWait, *, answers: Callable[[str], bool]) -> None:
    """Return once `answers(address)` (scheduler_handshake.answers_as_scheduler: a Dask handshake, a ClusterError
    for a port that accepts and never speaks Dask) says the scheduler is up (at once where that cannot be judged: a
    ucx address); a ClusterError past the wait, ConnectStopped on a stop. A scheduler started as a job of its own,
    at an address known beforehand, may start after the client's job."""
    if address.partition("://")[0] not in ("tcp", "tls"):
        return
    if (
        scheduler_host_port(address) is None
    ):  # no port: no scheduler could ever answer, so waiting is pointless
        raise ConfigError(
            f"the scheduler address {address} names no host and port",
            hint="give the scheduler's address as its log or scheduler file says, e.g. tcp://10.0.0.5:8786",
        )
    since: float | None = time.monotonic()
    told = False
    while not answers(address):
        if not told:
            told = True
            logger.info("waiting %s for the scheduler %s to accept connections", wait.describe(), address)
        wait.check_stop(f"the scheduler {address}")
        if wait.over():
            raise ClusterError(
                f"the scheduler {address} did not accept a connection within {wait.seconds:g} s ({wait.knob})",
                hint=f"check the address, and that its scheduler runs or waits in the queue; {wait.hint()}",
            )
        if since is not None:
            since = wait.notice(
                since,
                f"the scheduler {address}",
                "check the address, and that its scheduler runs or is queued",
            )
        time.sleep(POLL_SECONDS)  # a scheduler starting has no event to wait on: asked again


def join_error(target: str, exc: BaseException, scheduler_file: str | None, hint: str) -> ClusterError:
    """The error of a failed connection to `target`: for a scheduler file, what it names and since when."""
    names = scheduler_file_names(scheduler_file) if scheduler_file else None
    if names is None:
        return ClusterError(f"could not connect to {target}: {exc}", hint=hint)
    return ClusterError(
        f"could not connect to {names}: {exc}; its scheduler may have ended (a previous job's file?)",
        hint=f"{REMOVE_OR_START}; if it runs: {hint}",
    )


def wait_for_first_worker(client: Any, cluster: Any, wait: WorkerWait, target: str) -> None:
    """Return once a worker has joined `client`'s scheduler (`target`, for messages); a ClusterError when no
    worker of `cluster` can start (a jobqueue cluster's keeper says so) or none joined within the wait,
    ConnectStopped on a stop."""
    if client.nthreads():
        return
    logger.info("waiting %s for the first worker of %s", wait.describe(), target)
    since: float | None = time.monotonic()
    while True:
        wait.check_stop(f"the first worker of {target}")
        try:
            client.wait_for_workers(1, timeout=POLL_SECONDS)
            return
        except TimeoutError:
            pass
        hopeless = why_no_worker_can_start(cluster)
        if hopeless:
            raise ClusterError(
                hopeless, hint="fix the cause named in that output, then run the same command again"
            )
        if wait.over():
            raise ClusterError(
                f"no worker joined {target} within {wait.seconds:g} s ({wait.knob})",
                hint=f"squeue shows whether its workers' jobs still wait for resources or why they cannot "
                f"start; {wait.hint()}",
            )
        if since is not None:
            since = wait.notice(
                since, f"the first worker of {target}", "squeue shows whether its workers' jobs are queued"
            )
