"""Get a Dask client for a run: join an existing scheduler (--scheduler-file / --scheduler-address, what the
Slurm launcher uses), start a jobqueue cluster, or start a local one. Never imports torch."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

from hpc_classify.cluster.worker_processes import close_or_kill_workers
from hpc_classify.config import RunConfig
from hpc_classify.errors import ClusterError
from hpc_classify.worker_env import quiet_ucx_here

logger = logging.getLogger(__name__)

DEFAULT_CONNECT_TIMEOUT = 120.0
CLOSE_TIMEOUT = 60.0  # seconds a client or a cluster of ours may take to close
# The same after a stop signal, less once a SIGTERM's deadline is near (StopRequest.within): KillWait runs from the
# SIGTERM; after the warning the margin of 60 s also holds the summary and the requeue (warning_grace.py).
STOP_CLOSE_TIMEOUT = 5.0


def connect(
    config: RunConfig,
    *,
    timeout: float = DEFAULT_CONNECT_TIMEOUT,
    stopped: Callable[[], bool] = lambda: False,
) -> tuple[Any, Any | None]:
    """Return `(client, cluster)`; `cluster` is None when joining a scheduler someone else runs (then the
    caller must not shut it down). `timeout` bounds the connection to a scheduler; a cluster whose workers
    may wait in Slurm's queue (a scheduler file or address to join, a jobqueue cluster) is waited for, its
    scheduler file (or address not accepting yet) and first worker, under --worker-wait and until `stopped()`
    (first_worker.py: raises ConnectStopped); a local cluster's workers have started when it returns."""
    from distributed import Client

    from hpc_classify.cluster.first_worker import (
        ConnectStopped,
        WorkerWait,
        wait_for_first_worker,
        wait_for_scheduler_address,
        wait_for_scheduler_file,
    )
    from hpc_classify.cluster.scheduler_handshake import answers_as_scheduler, check_answers_as_scheduler

    wait = WorkerWait(config.worker_wait, stopped)
    if config.scheduler_file:
        wait_for_scheduler_file(config.scheduler_file, wait)
    known_address = _known_scheduler_address(config)
    if "ucxx" in (config.protocol, protocol_of(known_address)):
        quiet_ucx_here()
    cluster = None
    if config.scheduler_file:
        target = f"scheduler file {config.scheduler_file}"
        make = lambda: Client(scheduler_file=config.scheduler_file, timeout=timeout)  # noqa: E731
        check_answers_as_scheduler(None, timeout, config.scheduler_file)
        client = _join(make, target, config.scheduler_file)
        check_client_protocol(client, config.protocol, target)
    elif config.scheduler_address:
        target = f"scheduler {known_address}"
        check_protocol(config.protocol, known_address, target)
        # A scheduler submitted as a job of its own may start after this one, as get_client waits for it too.
        wait_for_scheduler_address(
            known_address, wait, answers=lambda address: answers_as_scheduler(address, timeout)
        )
        check_answers_as_scheduler(known_address, timeout)
        client = _join(lambda: Client(known_address, timeout=timeout), target)
    elif config.cluster == "jobqueue":
        from hpc_classify.cluster import jobqueue  # lazily: dask-jobqueue is only needed here

        cluster = jobqueue.start_jobqueue_cluster(config)
        target = "the jobqueue cluster"
        client = Client(cluster)
    else:  # "local": RunConfig refuses any other kind
        from hpc_classify.cluster.local import start_local_cluster

        try:
            cluster = start_local_cluster(
                workers=config.workers,
                threads_per_worker=config.threads_per_worker,
                protocol=config.cluster_protocol,
                device=config.device,
                worker_wait=config.worker_wait,
            )
        except ClusterError:
            # A start that fails after a stop signal (the workers ignore it from their start on: worker_signals.py,
            # but not a process of theirs, nor a worker of a cluster made otherwise) is the stop (exit 5), not a
            # cluster that cannot start (exit 2).
            if stopped():
                raise ConnectStopped("the local cluster's start was cut short") from None
            raise
        client = Client(cluster)
        return client, cluster  # its workers have started (within --worker-wait)
    try:
        wait_for_first_worker(client, cluster, wait, target)
    except BaseException:
        close_quietly(client, cluster)
        raise
    return client, cluster


def close_quietly(client: Any, cluster: Any | None, timeout: float | None = None) -> None:
    """Close the client, and the cluster when we started it; errors on the way down are only logged. Each
    close has a deadline: a local cluster's close was once seen waiting for ever on a nanny whose worker had
    just been restarted, and a finished run must still return. The worker processes of a cluster whose close
    failed or timed out are killed: they would otherwise run as long as this process (a notebook, a long
    Python session calling `run`), not only until a CLI run exits. `timeout`: each close's (after a stop signal, what
    the stop's deadline leaves of STOP_CLOSE_TIMEOUT: StopRequest.within; default CLOSE_TIMEOUT)."""
    # A close past a stop's deadline still gets a moment: a live scheduler answers in one.
    timeout = CLOSE_TIMEOUT if timeout is None else max(0.1, timeout)
    if client is not None:
        _close_logging_errors(client, lambda: client.close(timeout=timeout), timeout)
    if cluster is not None:
        _close_logging_errors(cluster, lambda: close_or_kill_workers(cluster, timeout), timeout)


def _close_logging_errors(thing: Any, close: Any, timeout: float) -> None:
    try:
        with _reconnect_cancel_unlogged(thing):
            close()
    except Exception as exc:  # shutting down after a failure must not hide the original error
        logger.warning("error while closing %s: %s", type(thing).__name__, _why(exc, timeout))


def _why(exc: Exception, timeout: float) -> str:
    """A close step's failure in words. A timeout says so with the deadline, whichever of distributed's nested
    timeouts fired (some raise a TimeoutError with no message: the log said only "TimeoutError")."""
    if (
        isinstance(exc, TimeoutError) and exc.errno is None
    ):  # not an OS error such as ETIMEDOUT: its words stay
        return f"timed out after {timeout:g} s"
    return str(exc) or type(exc).__name__


class _ReconnectCancelled(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


@contextlib.contextmanager
def _reconnect_cancel_unlogged(thing: Any) -> Iterator[None]:
    """A client that lost its scheduler is trying to reconnect when it is closed; distributed logs the end of
    that attempt as an ERROR with a CancelledError traceback. The driver has said what happened (the lost
    scheduler): that traceback is dropped, and nothing else."""
    if getattr(thing, "status", "running") != "connecting":
        yield
        return
    client_logger = logging.getLogger("distributed.client")
    quiet = _ReconnectCancelled()
    client_logger.addFilter(quiet)
    try:
        yield
    finally:
        client_logger.removeFilter(quiet)


def retire_and_shut_down(client: Any, timeout: float | None = None) -> None:
    """Retire the workers, stop the scheduler and close the client: the end of a cluster we own, within `timeout`
    s in all (default CLOSE_TIMEOUT; each step gets what the ones before it left): a scheduler that no longer
    answers (stopped, its node swapping) must not hold the job's end past what a stop leaves. A client that lost
    its scheduler only closes: each request would wait out its reconnect timeout (minutes) in vain, and the
    workers end on their own without their scheduler. Errors and timeouts are only logged: the run's result is
    decided already."""
    deadline = time.monotonic() + (CLOSE_TIMEOUT if timeout is None else timeout)

    def left() -> float:  # a step past the deadline still gets a moment: a live scheduler answers in one
        return max(0.1, deadline - time.monotonic())

    if getattr(client, "status", "running") != "running":
        logger.warning("the scheduler is gone (the client is %s): no workers to retire", client.status)
    else:
        try:
            # callback_timeout: Client.sync's own bound (retire_workers passes it on; shutdown() takes none).
            client.retire_workers(close_workers=True, callback_timeout=(allowed := left()))
        except Exception as exc:  # shutting down: a lost worker must not hide the driver's result
            logger.warning("retiring workers: %s", _why(exc, allowed))
        try:
            client.sync(client._shutdown, callback_timeout=(allowed := left()))
        except Exception as exc:
            logger.warning("stopping the scheduler: %s", _why(exc, allowed))
    allowed = left()
    _close_logging_errors(client, lambda: client.close(timeout=allowed), allowed)


def _join(make_client: Any, target: str, scheduler_file: str | None = None) -> Any:
    from hpc_classify.cluster.first_worker import join_error

    try:
        return make_client()
    except (OSError, TimeoutError) as exc:
        hint = "is the scheduler running, and reachable over this protocol and interface?"
        raise join_error(target, exc, scheduler_file, hint) from exc


def protocol_of(address: str | None) -> str | None:
    """The scheme of a Dask address ("tcp", "ucxx", ...), None when it has none."""
    return address.split("://", 1)[0] if address and "://" in address else None


def check_protocol(wanted: str | None, address: str, target: str) -> None:
    """A protocol asked for must be the one a joined scheduler speaks: its address decides, and a `--protocol
    ucxx` that silently ran over tcp would hide a slower interconnect from the user."""
    spoken = protocol_of(address)
    if wanted is None or spoken == wanted:
        return
    raise ClusterError(
        f"protocol {wanted} given, but {target} speaks {spoken} ({address})",
        hint="drop --protocol (a scheduler you join decides it), or start that scheduler with the protocol you want",
    )


def check_client_protocol(client: Any, wanted: str | None, target: str) -> None:
    """`check_protocol` on a connected client's scheduler; the client is closed if it fails."""
    try:
        check_protocol(wanted, client.scheduler.address, target)
    except ClusterError:
        client.close()
        raise


def _known_scheduler_address(config: RunConfig) -> str | None:
    """The address of the scheduler to join where it is known before connecting: --scheduler-address (tcp
    unless it names its scheme or --protocol does), or a scheduler file that exists already."""
    if config.scheduler_address:
        address = config.scheduler_address
        return address if "://" in address else f"{config.cluster_protocol}://{address}"
    if config.scheduler_file:
        try:
            with open(config.scheduler_file) as f:
                return json.load(f).get("address")
        except (OSError, ValueError, AttributeError):
            return None  # not written yet (Client waits for it) or not ours to judge here
    return None
