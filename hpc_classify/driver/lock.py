"""`<output>/_lock`: one driver per output directory.

The lock file holds the owner of the run (`lock_owner.LockOwner`), whose heartbeat, the file's mtime, that run
refreshes from a background thread; `lock_owner.is_stale` says when another run may take it over (a dead pid in
our pid space, an earlier run of our own Slurm job, or an old heartbeat from elsewhere that does not beat while
we watch it: `RunLock._watch`).

Creation uses O_CREAT|O_EXCL, which is atomic on local file systems and on NFSv3+/Lustre/GPFS. The
take-over re-reads the stale lock just before removing it, so two drivers taking over the same stale lock
at once can only both succeed in the tiny window between that read and the unlink.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from types import TracebackType

from hpc_classify.driver.lock_owner import (
    DEFAULT_HEARTBEAT_INTERVAL,
    LockOwner,
    ended_before_us,
    is_stale,
    pid_space,
    read_lock,
    shares_pids,
)
from hpc_classify.errors import OutputDirectoryError, OutputWriteError

logger = logging.getLogger(__name__)

LOCK_FILE = "_lock"
DEFAULT_STALE_AFTER = 300.0
# What stops a driver whose lock was taken over (StopRequest's name for it, as a signal's): the summary's
# interrupted_by and the log say it.
LOCK_LOST = "LOCK_LOST"
LOCK_POLL_SECONDS = 1.0  # how often another host's heartbeat is looked at while it is watched


def lock_path(output_dir: str) -> str:
    return os.path.join(output_dir, LOCK_FILE)


class RunLock:
    """Context manager holding `<output>/_lock` with a heartbeat; raises OutputDirectoryError when held.

    `on_lost()` is called (from the heartbeat thread) if the lock stops being ours while held: another run
    took it over after this one did not beat for `stale_after` (the job suspended, a stalled file system),
    or it was removed. The heartbeat then stops: refreshing another run's lock would hide this one."""

    def __init__(
        self,
        output_dir: str,
        *,
        heartbeat_interval: float = DEFAULT_HEARTBEAT_INTERVAL,
        stale_after: float = DEFAULT_STALE_AFTER,
        on_lost: Callable[[], None] | None = None,
        job: tuple[str, int] = ("", -1),
    ):
        """`job`: the Slurm job run this driver is in (slurm_env.job_run()), recorded so that the requeued
        job takes over the lock of its own killed run at once."""
        self.path = lock_path(output_dir)
        self.heartbeat_interval = heartbeat_interval
        self.stale_after = stale_after
        self.on_lost = on_lost
        self.owner = LockOwner(
            socket.gethostname(),
            os.getpid(),
            time.time(),
            uuid.uuid4().hex,
            pid_space(),
            *job,
            heartbeat_interval,
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        # Two attempts: the second follows the removal of a stale lock.
        for _ in range(2):
            if self._try_create():
                self._start_heartbeat()
                return
            holder = read_lock(self.path)
            if holder is None:
                continue  # released between our attempt and the read
            age = self._heartbeat_age()
            stale = is_stale(
                holder, age, stale_after=self.stale_after, job=(self.owner.job, self.owner.job_restart)
            )
            # Stale by its age alone (another host's): confirmed by watching, as a fresh one is.
            verdict = "stale" if stale and not self._judged_by_age(holder) else self._watch(holder, age)
            if verdict == "gone":
                continue
            if verdict == "alive":
                age = self._heartbeat_age()
                raise OutputDirectoryError(
                    f"{os.path.dirname(self.path)} is in use by another run (host {holder.host}, pid "
                    f"{holder.pid}, started {time.ctime(holder.started)}, heartbeat {age:.0f} s ago)",
                    hint="wait for that run to finish, or stop it; a lock whose run died is taken over "
                    f"automatically (same host and pid space: dead pid; elsewhere: no heartbeat for {self.stale_after:.0f} s)",
                )
            self._remove_stale(holder, age)
        raise OutputDirectoryError(
            f"could not take the lock {self.path}: another run keeps taking it",
            hint="check for concurrent runs on this output directory",
        )

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        holder = read_lock(self.path)
        if holder is not None and holder.token == self.owner.token:
            try:
                os.remove(self.path)
            except OSError as exc:  # e.g. remounted read-only: the next run takes the stale lock over
                logger.warning("could not remove the lock %s: %s", self.path, exc)

    def __enter__(self) -> RunLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def _try_create(self) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        except OSError as exc:  # read-only, no permission
            raise OutputWriteError(self.path, exc.strerror or str(exc), errno=exc.errno) from exc
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(asdict(self.owner), f)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # disk full: an empty lock left behind would block every later run
            with contextlib.suppress(OSError):
                os.remove(self.path)
            raise OutputWriteError(self.path, exc.strerror or str(exc), errno=exc.errno) from exc
        return True

    def _judged_by_age(self, holder: LockOwner) -> bool:
        """Whether `holder`'s lock can only be judged by its heartbeat's age (another host or pid space)."""
        return not (
            ended_before_us(holder, self.owner.job, self.owner.job_restart)
            or holder.token == "corrupt"
            or shares_pids(holder, self.owner.host, self.owner.pid_space)
        )

    def _watch(self, holder: LockOwner, age: float) -> str:
        """Whether a lock's run is alive: one in our pid space is ("alive"); another's heartbeat is watched
        until it is "stale", beats ("alive") or the lock is "gone". Stale: no beat for what `stale_after` leaves
        of its `age`, and for two of the holder's heartbeat intervals at least, by our monotonic clock (the age
        compares clocks that may disagree)."""
        if shares_pids(holder, self.owner.host, self.owner.pid_space) or holder.token == "corrupt":
            return "alive"
        confirm = min(self.stale_after, 2 * holder.heartbeat_interval + LOCK_POLL_SECONDS)
        wait = max(confirm, self.stale_after - min(age, self.stale_after))
        logger.warning(
            "the lock %s is held by host %s (pid %d, heartbeat %.0f s ago by our clock): waiting up to %.0f s "
            "to see whether that run is alive",
            self.path,
            holder.host,
            holder.pid,
            age,
            wait,
        )
        beat, since = self._mtime(), time.monotonic()
        while (now := self._mtime()) == beat and beat is not None:
            if time.monotonic() - since >= wait:
                return "stale"
            time.sleep(LOCK_POLL_SECONDS)  # another host's beat has no event to wait on
        return "gone" if now is None else "alive"

    def _mtime(self) -> float | None:
        try:
            return os.stat(self.path).st_mtime
        except FileNotFoundError:
            return None

    def _heartbeat_age(self) -> float:
        mtime = self._mtime()
        return float("inf") if mtime is None else max(0.0, time.time() - mtime)

    def _remove_stale(self, holder: LockOwner, age: float) -> None:
        if read_lock(self.path) != holder:
            return  # someone else took it over meanwhile; the next attempt will see their lock
        logger.warning(
            "taking over the stale lock of host %s pid %d (heartbeat %.0f s ago)",
            holder.host,
            holder.pid,
            age,
        )
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass

    def _start_heartbeat(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._beat, name="hpc-classify-lock-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                holder = read_lock(self.path)
                if holder is not None and holder.token == self.owner.token:
                    with contextlib.suppress(FileNotFoundError):  # removed since: seen at the next beat
                        os.utime(self.path)
                    continue
            except OSError as exc:  # a file system hiccup (EIO, ESTALE): the next beat tries again
                logger.warning("could not refresh the lock %s: %s", self.path, exc)
                continue
            if holder is None:
                logger.error("the lock %s disappeared while this run holds it: this run stops", self.path)
            else:
                logger.error(
                    "the lock %s was taken over by host %s pid %d while this run held it (no heartbeat for "
                    "%.0f s: suspended or stalled?): this run stops; that one goes on",
                    self.path,
                    holder.host,
                    holder.pid,
                    self.stale_after,
                )
            if self.on_lost is not None:
                self.on_lost()
            return
