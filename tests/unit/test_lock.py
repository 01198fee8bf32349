"""The output directory's run lock: exclusive, stale-lock take-over, heartbeat."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hpc_classify.driver.lock import RunLock
from hpc_classify.driver.lock_owner import LockOwner, is_stale, pid_space, read_lock
from hpc_classify.errors import OutputDirectoryError


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_lock(
    tmp_path, *, host: str, pid: int, age: float = 0.0, heartbeat_interval: float | None = None
) -> None:
    path = tmp_path / "_lock"
    owner = {"host": host, "pid": pid, "started": time.time() - age, "token": "other"}
    if heartbeat_interval is not None:  # else as a lock written before the interval was recorded
        owner["heartbeat_interval"] = heartbeat_interval
    path.write_text(json.dumps(owner))
    os.utime(path, (time.time() - age, time.time() - age))


def test_lock_records_owner_and_is_removed_on_release(tmp_path):
    with RunLock(str(tmp_path)) as lock:
        owner = read_lock(str(tmp_path / "_lock"))
        assert owner == lock.owner
        assert (owner.host, owner.pid) == (socket.gethostname(), os.getpid())
    assert not (tmp_path / "_lock").exists()


def test_second_lock_is_refused_while_the_first_is_held(tmp_path):
    with RunLock(str(tmp_path)):
        with pytest.raises(OutputDirectoryError, match=f"in use by another run .*pid {os.getpid()}"):
            RunLock(str(tmp_path)).acquire()
    RunLock(str(tmp_path)).acquire()  # free again


def test_lock_of_a_dead_pid_on_this_host_is_taken_over(tmp_path):
    write_lock(tmp_path, host=socket.gethostname(), pid=dead_pid())
    with RunLock(str(tmp_path)) as lock:
        assert read_lock(str(tmp_path / "_lock")).token == lock.owner.token


def test_release_does_not_remove_a_lock_taken_over_by_another_run(tmp_path):
    lock = RunLock(str(tmp_path))
    lock.acquire()
    write_lock(tmp_path, host="elsewhere", pid=1)
    lock.release()
    assert read_lock(str(tmp_path / "_lock")).host == "elsewhere"


def _after(seconds: float, action) -> threading.Thread:
    thread = threading.Timer(seconds, action)
    thread.start()
    return thread


def test_another_hosts_lock_that_beats_is_refused(tmp_path):
    """A live run elsewhere refreshes its heartbeat: the watcher refuses as soon as it sees a beat."""
    write_lock(tmp_path, host="other-node", pid=1, age=10)
    beat = _after(1.5, lambda: os.utime(tmp_path / "_lock"))
    # Refused at the beat: a watcher that waited for staleness (120 s) would take the lock over instead.
    with pytest.raises(OutputDirectoryError, match="host other-node"):
        RunLock(str(tmp_path), stale_after=120).acquire()
    beat.join()


def _waits(caplog) -> list[str]:
    """How long each watch of another host's lock said it would wait ("waiting up to N s")."""
    return [
        r.getMessage().split("waiting up to ")[1].split(" ")[0]
        for r in caplog.records
        if "waiting up to" in r.getMessage()
    ]


def test_another_hosts_lock_whose_heartbeat_stops_is_taken_over(tmp_path, caplog):
    """A driver whose node died: its job restarted on another node soon after is not refused (the lock is
    taken over once its heartbeat is stale_after old), nor is a run whose predecessor released meanwhile."""
    caplog.set_level(logging.WARNING, logger="hpc_classify.driver.lock")
    # Its short heartbeat interval leaves what stale_after has left of the lock's age (2 s) to decide the watch.
    write_lock(tmp_path, host="other-node", pid=1, age=10, heartbeat_interval=0.25)
    with RunLock(str(tmp_path), stale_after=12) as lock:  # watched for about 2 s, no beat
        assert read_lock(str(tmp_path / "_lock")).token == lock.owner.token
    assert _waits(caplog) == ["2"]
    write_lock(tmp_path, host="other-node", pid=1, age=10)
    released = _after(1.5, lambda: os.remove(tmp_path / "_lock"))
    with RunLock(str(tmp_path), stale_after=120) as lock:
        assert read_lock(str(tmp_path / "_lock")).token == lock.owner.token
    released.join()
    # Already stale by its age: taken over once two of its heartbeat intervals passed without a beat.
    caplog.clear()
    write_lock(tmp_path, host="other-node", pid=1, age=120, heartbeat_interval=0.5)
    with RunLock(str(tmp_path), stale_after=60) as lock:
        assert read_lock(str(tmp_path / "_lock")).token == lock.owner.token
    assert _waits(caplog) == ["2"]  # 2 * 0.5 s + one look, not the whole stale_after
    assert "taking over the stale lock of host other-node pid 1" in caplog.text


def test_another_hosts_live_lock_is_not_taken_over_when_our_clock_runs_ahead(tmp_path):
    """Its mtime (set by the file server, or the other node's clock) looks older than stale_after by ours: a
    node whose clock runs minutes ahead took a live run's lock over at once."""
    # Watched for 2 * 5 s + one look: its beat at 2 s is seen whatever this machine's load.
    write_lock(tmp_path, host="other-node", pid=1, age=600, heartbeat_interval=5.0)
    beat = _after(2.0, lambda: os.utime(tmp_path / "_lock", (time.time() - 590, time.time() - 590)))
    with pytest.raises(OutputDirectoryError, match="host other-node"):
        RunLock(str(tmp_path), stale_after=300).acquire()
    beat.join()
    assert read_lock(str(tmp_path / "_lock")).token == "other"


def test_heartbeat_refreshes_the_lock_mtime(tmp_path):
    path = tmp_path / "_lock"
    with RunLock(str(tmp_path), heartbeat_interval=0.05):
        old = time.time() - 1000
        os.utime(path, (old, old))
        deadline = time.monotonic() + 10
        while path.stat().st_mtime == old:
            assert time.monotonic() < deadline, "heartbeat never refreshed the lock"
            time.sleep(0.01)


def test_is_stale_rules():
    here = socket.gethostname()
    alive = LockOwner(here, os.getpid(), 0.0, "t")
    assert not is_stale(alive, 1e9, stale_after=60, host=here)  # same host: the pid decides, not the age
    assert is_stale(LockOwner(here, dead_pid(), 0.0, "t"), 0.0, stale_after=60, host=here)
    assert not is_stale(LockOwner("b", 1, 0.0, "t"), 59.0, stale_after=60, host=here)
    assert is_stale(LockOwner("b", 1, 0.0, "t"), 61.0, stale_after=60, host=here)


def test_a_lock_from_another_pid_space_of_this_host_goes_by_its_heartbeat(tmp_path):
    """Per-job pid namespaces (enroot/pyxis, apptainer --pid) share the host name, not the pids; a reboot
    reuses them. Such a lock is judged by its heartbeat, as another host's."""
    here, ours = socket.gethostname(), pid_space()
    assert ours  # Linux says: boot id and pid namespace
    elsewhere = "another-boot/pid:[4026531836]"
    invisible = LockOwner(here, dead_pid(), 0.0, "t", elsewhere)  # a live driver whose pid we cannot see
    assert not is_stale(invisible, 59.0, stale_after=60, host=here, space=ours)
    assert is_stale(invisible, 61.0, stale_after=60, host=here, space=ours)
    reused = LockOwner(here, os.getpid(), 0.0, "t", elsewhere)  # its pid is another process's here
    assert is_stale(reused, 61.0, stale_after=60, host=here, space=ours)
    # In our pid space, or from a lock written before pid spaces were recorded: the pid decides.
    for space in (ours, ""):
        assert is_stale(
            LockOwner(here, dead_pid(), 0.0, "t", space), 0.0, stale_after=60, host=here, space=ours
        )
    with RunLock(str(tmp_path)) as lock:
        assert read_lock(lock.path) == lock.owner and lock.owner.pid_space == ours


def test_empty_lock_file_is_stale_only_after_a_grace(tmp_path):
    path = tmp_path / "_lock"
    path.write_text("")  # a driver killed between creating and writing it, or one writing it right now
    with pytest.raises(OutputDirectoryError):
        RunLock(str(tmp_path)).acquire()
    os.utime(path, (time.time() - 100, time.time() - 100))
    with RunLock(str(tmp_path)):
        pass


def test_a_lock_taken_over_while_held_stops_the_run_and_its_heartbeat(tmp_path):
    """A run that did not beat for stale_after (suspended, stalled) finds its lock taken over: it is told to
    stop, and its heartbeat no longer refreshes the other run's lock."""
    lost = threading.Event()
    with RunLock(str(tmp_path), heartbeat_interval=0.02, on_lost=lost.set) as lock:
        other = LockOwner("other-host", 4242, time.time(), "theirs", "")
        Path(lock.path).write_text(json.dumps(dataclasses.asdict(other)))
        os.utime(lock.path, (1000.0, 1000.0))  # their lock, with a heartbeat we can tell from ours
        assert lost.wait(10), "the run was never told its lock was lost"
        lock._thread.join(10)
        assert not lock._thread.is_alive() and os.stat(lock.path).st_mtime == 1000.0
    assert read_lock(lock.path) == other  # released: theirs is left alone


def test_the_requeued_job_takes_over_its_own_killed_runs_lock_at_once(tmp_path, monkeypatch):
    """Rank 0 SIGKILLed at the time limit while planning, requeued onto another node: the lock's heartbeat
    is fresh but its run is over (Slurm ended it before the requeue): no wait of stale_after."""
    killed = LockOwner("node7", 4242, time.time(), "theirs", "elsewhere", "c1:42", 0)
    (tmp_path / "_lock").write_text(json.dumps(dataclasses.asdict(killed)))
    watched = []
    monkeypatch.setattr(RunLock, "_watch", lambda self, holder, age: watched.append(holder) or "alive")
    with RunLock(str(tmp_path), stale_after=3600, job=("c1:42", 1)) as lock:
        assert read_lock(str(tmp_path / "_lock")) == lock.owner
        assert (lock.owner.job, lock.owner.job_restart) == ("c1:42", 1)
    assert watched == []
    # Another job, or the same run (its other step), is not ended by our start: their lock is watched.
    for job in (("c1:43", 1), ("c2:42", 1), ("c1:42", 0)):
        assert not is_stale(killed, 0.0, stale_after=3600, host="here", job=job)
    assert is_stale(killed, 0.0, stale_after=3600, host="here", job=("c1:42", 1))
