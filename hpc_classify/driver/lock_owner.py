"""The owner recorded in `<output>/_lock`, and when its lock is stale.

The lock file holds the host, pid, pid space and start time of the run that owns the directory; that run
refreshes the file's mtime (a heartbeat) from a background thread. A lock is stale, and may be taken over, when
- it was written in this pid space (this host, this boot, this pid namespace) and its pid is dead (a driver
  killed with SIGKILL), or
- it was written by an earlier run of the same Slurm job (a requeue: Slurm ended that run first), or
- it was written elsewhere and its heartbeat is older than `stale_after` seconds (we cannot see those
  processes; a live driver refreshes the heartbeat every `heartbeat_interval` seconds), and has not beaten
  while we watched it for two of its heartbeat intervals: its age compares our clock with an mtime the file
  server (NFS) or the other node (Lustre) set, and a node whose clock runs minutes ahead would otherwise take
  a live run's lock over at once. Elsewhere includes
  this host in another pid namespace (per-job containers, e.g. enroot/pyxis or `apptainer --pid`, share the
  node's host name but not its pids) and this host before a reboot.
  A younger heartbeat from elsewhere is watched, not trusted: a job restarted on another node soon after
  its driver's node died (a requeue, a resubmission) would otherwise be refused. The lock is refused as
  soon as the heartbeat beats, and taken over once it is `stale_after` old.
"""

from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

DEFAULT_HEARTBEAT_INTERVAL = 30.0
CORRUPT_GRACE = 10.0


@dataclass(frozen=True)
class LockOwner:
    host: str
    pid: int
    started: float
    token: str
    pid_space: str = ""  # see pid_space(); "" in locks written before it was recorded
    # The Slurm job run that holds it (slurm_env.job_run: "<cluster>:<job id>" and its restart count); "" and
    # -1 outside Slurm and in locks written before it was recorded.
    job: str = ""
    job_restart: int = -1
    heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL  # the holder's; locks written before: the default


def ended_before_us(owner: LockOwner, job: str, job_restart: int) -> bool:
    """Whether `owner` is an earlier run of our own Slurm job: Slurm ends every process of a job before it
    starts the requeued one, so that owner is dead wherever it ran (another node, another pid namespace),
    without waiting out its heartbeat (a driver SIGKILLed at the time limit while planning or reporting)."""
    return bool(job) and owner.job == job and 0 <= owner.job_restart < job_restart


def pid_space() -> str:
    """The machine's boot and this process's pid namespace: processes with the same value see each other's
    pids. "" where Linux does not say."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""
    return f"{boot}/{namespace}"


def shares_pids(owner: LockOwner, host: str, space: str) -> bool:
    """Whether `owner`'s pid can be looked up from here (host `host`, pid space `space`)."""
    return owner.host == host and (not owner.pid_space or not space or owner.pid_space == space)


def read_lock(path: str) -> LockOwner | None:
    """The owner recorded in `path`, None if there is no lock; a corrupt lock reads as a dead owner."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        return LockOwner(
            str(data["host"]),
            int(data["pid"]),
            float(data["started"]),
            str(data["token"]),
            str(data.get("pid_space", "")),
            str(data.get("job", "")),
            int(data.get("job_restart", -1)),
            float(data.get("heartbeat_interval", DEFAULT_HEARTBEAT_INTERVAL)),
        )
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        # A driver killed between O_EXCL creation and the write leaves an empty file: treat as stale.
        return LockOwner(host="?", pid=-1, started=0.0, token="corrupt")


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def is_stale(
    owner: LockOwner,
    heartbeat_age: float,
    *,
    stale_after: float,
    host: str | None = None,
    space: str | None = None,
    job: tuple[str, int] = ("", -1),
) -> bool:
    """`job`: ours, as LockOwner.job and .job_restart."""
    if ended_before_us(owner, *job):
        return True
    if owner.token == "corrupt":
        # Empty or partial: either a driver died right after creating it, or one is writing it this instant.
        return heartbeat_age > min(stale_after, CORRUPT_GRACE)
    if shares_pids(owner, host or socket.gethostname(), pid_space() if space is None else space):
        return not pid_alive(owner.pid)
    return heartbeat_age > stale_after
