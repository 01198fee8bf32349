"""Whether rank 0 is lost, as another node judges it: a silent heartbeat and a scheduler that does not answer.

A stale heartbeat (rank0_heartbeat.HeartbeatWatch) alone cannot tell rank 0's loss from a stall of the shared
file system on rank 0's node only: its heartbeat writes block (an NFS server's failover, a Lustre recovery: a
minute and more) while rank 0, its scheduler and its driver are alive. Taken for a loss, a healthy job would be
requeued or cancelled. So before it declares rank 0 lost, a node asks whether rank 0's scheduler still accepts a
TCP connection at the address of the scheduler file (`scheduler_answers`, a few seconds at most). If it does,
rank 0's node and scheduler live: the node logs a warning once per stall (the heartbeat file, how long it is
silent) and watches on. The verdict takes a stale heartbeat and a scheduler that does not answer; a dead node
answers nothing (the connect times out), a dead scheduler's port refuses it at once.

For `ucxx` the scheduler's address is host:port too: UCX opens its listener on every connection manager it has,
the TCP one (a kernel socket that accepts a plain connect) included, on the same port. Where UCX runs without
its TCP connection manager (only rdmacm: a port of the RDMA CM's own space), the connect is refused and the
verdict falls back to the heartbeat alone, as for an address that names no host and port (`inproc://`).

Policy: a scheduler that answers defers the verdict by at most `STALL_GRACE` seconds (15 minutes) past
--death-timeout, not for ever. The heartbeat is written by rank 0's launcher, and the scheduler is its child:
a launcher killed outright takes its scheduler with it (die_with_parent.py), but a launcher or driver that hangs
while its scheduler serves would, deferred for ever, keep every node of the allocation idle until the job's
time limit, which is what the heartbeat is there to prevent. A stall that long keeps rank 0 from writing its markers too: the run makes no
progress, and a requeue (which resumes from the markers) loses nothing.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable

from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch

logger = logging.getLogger(__name__)

PROBE_TIMEOUT = 3.0  # s to wait for the scheduler's accept; below HeartbeatWatch's pause_gap (10 s)
# s during a stall before a scheduler that answered is asked again (each ask is a log line)
PROBE_EVERY = 10.0
STALL_GRACE = 900.0  # s past --death-timeout that a scheduler which answers defers the verdict
PROBED_PROTOCOLS = frozenset({"tcp", "tls", "ucx", "ucxx"})


def scheduler_host_port(address: str) -> tuple[str, int] | None:
    """The host and port of a Dask address (`tcp://10.0.0.1:8786`, `ucxx://[fe80::1]:8786`), None for one that
    names none (`inproc://`, an empty or unknown address)."""
    protocol, separator, rest = address.partition("://")
    host, colon, port = rest.rpartition(":")
    if not separator or protocol not in PROBED_PROTOCOLS or not colon or not port.isdigit():
        return None
    host = host.removeprefix("[").removesuffix("]")
    return (host, int(port)) if host else None


def scheduler_answers(address: str, timeout: float = PROBE_TIMEOUT) -> bool:
    """Whether the scheduler at `address` accepts a TCP connection within `timeout` s (closed at once, nothing
    sent): its node and process live. False for an address that cannot be asked (see scheduler_host_port)."""
    where = scheduler_host_port(address)
    if where is None:
        return False
    try:
        with socket.create_connection(where, timeout=timeout):
            return True
    except OSError:  # refused (no scheduler on the port), timed out (no node), unknown host
        return False


class Rank0Verdict:
    """Whether rank 0 is lost: its heartbeat (`watch`) silent for --death-timeout and its scheduler at
    `address` not answering, or silent for `STALL_GRACE` s longer even though the scheduler answers."""

    def __init__(
        self,
        watch: HeartbeatWatch,
        address: str,
        answers: Callable[[str], bool] = scheduler_answers,
    ):
        self.watch = watch
        self.address = address
        self.answers = answers
        self.grace = STALL_GRACE
        self.probe_every = PROBE_EVERY
        self.answered_at: float | None = None  # when the scheduler last answered in this stall
        self.silent = 0.0  # seconds the heartbeat was silent at the last look

    def lost(self) -> bool:
        """One look at the heartbeat (and, when it is stale, at the scheduler). Never after rank 0's ended beat."""
        self.silent = self.watch.seconds_silent()
        if not self.watch.stale(self.silent):
            if self.answered_at is not None:
                logger.info("%s changed again: rank 0 was not lost", self.watch.path)
            self.answered_at = None
            return False
        if self.silent >= self.watch.timeout + self.grace:
            return True  # the scheduler answered all along (else lost before): see the module's policy
        now = time.monotonic()
        if self.answered_at is not None and now - self.answered_at < self.probe_every:
            return False
        if not self.answers(self.address):
            return True
        if self.answered_at is None:  # once per stall
            logger.warning(
                "%s unchanged for %.0f s, but rank 0's scheduler at %s still answers: taken for a stall of rank "
                "0's file system, not its loss; rank 0 is taken for lost if its scheduler stops answering, or "
                "if the heartbeat stays silent for %.0f s",
                self.watch.path,
                self.silent,
                self.address,
                self.watch.timeout + self.grace,
            )
        self.answered_at = now
        return False

    def scheduler_answered(self) -> bool:
        """Whether the scheduler still answered in this stall (rank 0 lost by the bound, not by silence)."""
        return self.answered_at is not None
