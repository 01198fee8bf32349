"""Rank 0's heartbeat in the shared job directory, and how the other nodes tell that rank 0 is gone.

Rank 0 (the scheduler and the driver) rewrites `<job dir>/heartbeat.json` every few seconds while its
scheduler process runs. Another node that sees the file unchanged for `death_timeout` seconds of its own
clock (no clock skew between nodes matters), and rank 0's scheduler not answering (rank0_liveness.py: a file
system stall on rank 0's node alone silences the heartbeat too), concludes that rank 0's node was lost:
it stops its workers and leaves with the resumable exit code, so that the job ends instead of idling until
its time limit. With `sbatch --no-kill` Slurm keeps a job whose batch host (rank 0's node) failed running
on the other nodes, with nothing left to end it: `end_job_for_restart` requeues it (or cancels it when it
may not be requeued: slurm_job.py), and the markers make the restart or a resubmission resume exactly once.

Rank 0's end is told through the same file: its last write is an ended beat (`"ended": true`), once the
driver has returned and before the writes stop. The other nodes read the heartbeat by content every poll,
which a shared file system revalidates on each open (NFS close-to-open consistency), so they see the end at
their next look. The `shutdown` file is written too, but it is a new name: an NFS client that looked for it
every second caches its absence (lookupcache=all) for up to acdirmax (60 s by default), as long as the
default --death-timeout, which counts from the last beat. Without the ended beat a node could take a run
that ended cleanly for rank 0's loss and requeue it.

Each beat also carries how many files and pieces rank 0's driver has finished in this run of the job
(`"finished"`). A rank 0 lost before it finished any (its driver killed for memory while it plans, a crash) is
not requeued but cancelled: one that dies the same way at every start would otherwise be requeued for ever,
each time at the cost of the allocation's start-up (as the batch script does not requeue the driver's exit 5).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hpc_classify.cluster.job_incarnation import UNCHECKED, Incarnation
from hpc_classify.cluster.slurm_job import RANK0_LOST, end_job_for_restart, job_may_be_requeued

logger = logging.getLogger(__name__)


class HeartbeatWriter:
    """A daemon thread that rewrites the heartbeat file every `interval` seconds while `alive()`, until
    `end()` writes the ended beat (no beat of the thread follows it). Each beat says `finished()`: the files
    and pieces that the driver has finished so far."""

    def __init__(
        self,
        path: Path,
        node: str,
        alive: Callable[[], bool],
        interval: float = 5.0,
        incarnation: Incarnation = UNCHECKED,
        finished: Callable[[], int] = lambda: 0,
    ):
        self.path = path
        self.node = node
        self.alive = alive
        self.finished = finished
        self.interval = interval
        self.incarnation = incarnation
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rank0-heartbeat", daemon=True)
        self._beats = 0
        self._lock = threading.Lock()  # a beat of the thread never comes between end() and its write
        self._ended = False
        self._scheduler_ending = False

    def start(self) -> HeartbeatWriter:
        self.beat()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def scheduler_ends(self) -> None:
        """Rank 0 shuts its scheduler down: beat on while it lives, and stop without a warning once it exits."""
        self._scheduler_ending = True

    def end(self, clean: bool) -> None:
        """Write the last beat, which says that rank 0's run ended (`clean`: without an error), and stop.
        Only once the driver has returned: the other nodes then stop their workers and exit 0."""
        self._stop.set()
        with self._lock:
            self._ended = True
            self._write({"ended": True, "clean": clean})

    def beat(self) -> None:
        with self._lock:
            if not self._ended:
                self._write({})

    def _write(self, extra: dict[str, Any]) -> None:
        self._beats += 1
        beat = {"node": self.node, "beat": self._beats, "time": time.time(), "finished": self.finished()}
        data = self.incarnation.stamp({**beat, **extra})
        # Rewritten in place, no temp file (none can be left behind when rank 0's node dies mid-write):
        # a reader that catches it half-written only sees one more change, which it counts as alive.
        try:
            self.path.write_text(json.dumps(data))
        except OSError as exc:  # a shared file system hiccup: the next beat tries again
            logger.warning("could not write the heartbeat %s: %s", self.path, exc)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if not self.alive():
                if not self._scheduler_ending:
                    logger.warning("the scheduler exited: no more heartbeats in %s", self.path)
                return
            self.beat()


class HeartbeatWatch:
    """Another node's view of rank 0: stale once the heartbeat file has not changed for `timeout` s of the
    time this process ran. A heartbeat of another run with the same job id (its token) is no heartbeat.

    Two looks more than `pause_gap` s apart mean this process was not running in between: the job was
    suspended (`scontrol suspend`, preemption by suspension: SIGSTOP, while the monotonic clock runs on), or
    the node stalled. Rank 0 was stopped too, so that time is not silence; counted, every resumed job
    would be taken for one whose rank 0 was lost, and requeued or cancelled. The caller looks more often (every
    file_looks.rank0_watch_gap at most, 5 s; the heartbeat is rewritten every `interval`, 5 s too)."""

    def __init__(
        self, path: Path, timeout: float, incarnation: Incarnation = UNCHECKED, *, pause_gap: float = 10.0
    ):
        self.path = path
        self.timeout = timeout
        self.incarnation = incarnation
        self.pause_gap = pause_gap
        self._last: bytes | None = None
        self._finished = 0  # the most that rank 0's beats said its driver had finished
        self._changed_at = self._looked_at = time.monotonic()

    def seconds_silent(self) -> float:
        try:
            content: bytes | None = self.path.read_bytes()
        except OSError:
            content = None
        now = time.monotonic()
        if now - self._looked_at > self.pause_gap:
            logger.info(
                "no look at %s for %.0f s (job suspended?): not counted as rank 0's silence",
                self.path,
                now - self._looked_at,
            )
            self._changed_at += now - self._looked_at
        self._looked_at = now
        if content is not None and content != self._last and self._take(content):
            self._last, self._changed_at = content, now
        return now - self._changed_at

    def _take(self, content: bytes) -> bool:
        """Whether `content` is a beat of this run's rank 0 (noting how much its driver had finished)."""
        try:
            data = json.loads(content)
        except ValueError:
            return True  # caught half-written: a change, so alive (see HeartbeatWriter.beat)
        if not (isinstance(data, dict) and self.incarnation.owns(data)):
            return False
        if isinstance(finished := data.get("finished"), int):
            self._finished = max(self._finished, finished)
        return True

    def finished(self) -> int:
        """Files and pieces that rank 0's driver had finished in this run of the job, as its beats said
        (0 if none said more): whether the run made progress since the job (re)started."""
        return self._finished

    def stale(self, silent: float) -> bool:
        """Whether `silent` s of silence (what `seconds_silent` just said) are long enough to take rank 0
        for lost: `timeout` s. Never after its ended beat (rank 0 ended, it was not lost)."""
        return silent >= self.timeout and self.ending() is None

    def ending(self) -> dict[str, Any] | None:
        """Rank 0's ended beat (see HeartbeatWriter.end) if that is what the last look read, else None."""
        try:
            data = json.loads(self._last or b"")
        except ValueError:
            return None
        return data if isinstance(data, dict) and data.get("ended") is True else None

    def node(self) -> str | None:
        """The node that wrote the last complete heartbeat read, if any."""
        try:
            return str(json.loads(self._last or b"")["node"])
        except (ValueError, KeyError, TypeError):
            return None

    def last_beat(self) -> str:
        """The last heartbeat as read (node and wall-clock time), for messages."""
        try:
            data = json.loads(self._last or b"")
        except ValueError:
            return "no heartbeat was ever read"
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(float(data.get("time", 0))))
        return f"last heartbeat from {data.get('node', '?')} at {stamp}"


def claim(path: Path) -> bool:
    """True for exactly one caller across the nodes (atomic exclusive create in the shared job dir):
    only one node may end the job, or a second one would cancel the job the first had just requeued."""
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
    except FileExistsError:
        return False
    except OSError as exc:
        # No claim can be made (a full or failing file system): end the job anyway. Another node may too; the
        # instance check in end_job_for_restart keeps a second requeue off the restarted job.
        logger.error("could not create %s (%s): ending the job without the claim", path, exc)
    return True


def planned_ending(job_id: str, requeue: bool | None, progress: bool = True) -> str:
    """What `end_job_for_restart` (slurm_job.py) is about to do, in words (recorded before it runs)."""
    if not progress:
        return (
            f"cancelling job {job_id} (scancel) instead of requeueing it: rank 0 was lost before this run of the "
            "job finished a single file or piece, and a restart would likely end the same way; fix the cause "
            "(rank 0's log), then submit the same command again to resume"
        )
    if requeue:
        return f"requeueing job {job_id} (scontrol requeue): it restarts and resumes from the markers"
    if requeue is None:
        return (
            f"requeueing job {job_id} (scontrol requeue; Slurm did not say whether it was submitted with "
            "--requeue), or cancelling it if the requeue is refused"
        )
    return (
        f"cancelling job {job_id} (scancel; it was submitted with --no-requeue): "
        "submit the same command again to resume"
    )


def end_job_once(
    job_id: str, restart_count: int, claim_path: Path, report: Callable[[str], None], *, progress: bool = True
) -> None:
    """Rank 0 is lost: the first node that finds it so ends the job, once. With --no-kill, Slurm keeps a job
    whose batch host failed running on the other nodes until its time limit. Requeued only after `progress`
    (this run of the job finished a file or piece), else cancelled. `report(ending)` records each step before
    the next: a requeue or cancel also ends this process. Not the stop path: this node has time, so Slurm gets
    RANK0_LOST's patience (slurm_job.py)."""
    if job_id.startswith("local-") or not claim(claim_path):
        return
    requeue = job_may_be_requeued(job_id, RANK0_LOST) if progress else False
    ending = planned_ending(job_id, requeue, progress)
    logger.error("%s", ending)
    report(ending)
    done = end_job_for_restart(job_id, requeue, restart_count, RANK0_LOST)
    logger.error("%s", done)  # if we are still here: the requeue or cancel ends this task too
    report(done)
