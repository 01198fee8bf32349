"""Rank 0's heartbeat (cluster/rank0_heartbeat.py) and the driver's record of workers that left
(driver/liveness.py), as plain functions: no cluster, no Slurm."""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from types import SimpleNamespace

from hpc_classify.cluster import rank0_heartbeat
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch, HeartbeatWriter, claim
from hpc_classify.driver import liveness
from hpc_classify.driver.liveness import WorkerWatch


def _fake_monotonic(monkeypatch) -> list[float]:
    """The heartbeat module's monotonic clock, moved on by hand: `now[0] += seconds`."""
    now = [1000.0]
    monkeypatch.setattr(rank0_heartbeat.time, "monotonic", lambda: now[0])
    return now


def _poll(condition, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.01)


def test_heartbeat_goes_stale_only_when_it_stops_changing(tmp_path: Path, monkeypatch) -> None:
    now = _fake_monotonic(monkeypatch)
    path = tmp_path / "heartbeat.json"
    writer = HeartbeatWriter(path, "node1", alive=lambda: True)  # beats by hand: no thread, no timing
    watch = HeartbeatWatch(path, timeout=1.0)

    def stale_after(seconds: float) -> bool:
        now[0] += seconds
        return watch.stale(watch.seconds_silent())

    # A beat, then four looks 0.25 s apart: the first sees the change, the last 0.75 s of silence; the next
    # look is 1 s after that change, and only the next beat keeps it from being stale.
    for _ in range(20):
        writer.beat()
        assert [stale_after(0.25) for _ in range(4)] == [False] * 4
    assert stale_after(0.25)  # no beat this time (the scheduler exited): 1 s of silence
    assert watch.last_beat().startswith("last heartbeat from node1 at ")
    assert watch.node() == "node1"
    assert [p.name for p in tmp_path.iterdir()] == ["heartbeat.json"]  # written in place: no temp file


def test_the_heartbeat_thread_beats_while_alive_and_stops_after(tmp_path: Path, caplog) -> None:
    path = tmp_path / "heartbeat.json"
    alive = threading.Event()
    alive.set()

    def beats() -> int:
        try:
            return int(json.loads(path.read_text())["beat"])
        except (OSError, ValueError):  # read while rewritten in place
            return 0

    with caplog.at_level(logging.WARNING, logger=rank0_heartbeat.__name__):
        writer = HeartbeatWriter(path, "node1", alive=alive.is_set, interval=0.01).start()
        try:
            _poll(lambda: beats() >= 3, "three heartbeats")
            alive.clear()  # the scheduler exited: the thread notices at its next beat and ends
            _poll(lambda: "the scheduler exited: no more heartbeats" in caplog.text, "the writer to stop")
        finally:
            writer.stop()
    assert json.loads(path.read_text())["node"] == "node1"
    assert [p.name for p in tmp_path.iterdir()] == ["heartbeat.json"]  # written in place: no temp file


def test_a_scheduler_shut_down_on_purpose_ends_the_beats_without_a_warning(tmp_path: Path, caplog) -> None:
    # Rank 0 retires its workers and scheduler before the ended beat: that exit is no failure to report.
    alive = threading.Event()
    alive.set()
    with caplog.at_level(logging.WARNING, logger=rank0_heartbeat.__name__):
        writer = HeartbeatWriter(
            tmp_path / "heartbeat.json", "node1", alive=alive.is_set, interval=0.01
        ).start()
        try:
            writer.scheduler_ends()
            alive.clear()
            _poll(lambda: not writer._thread.is_alive(), "the writer to stop")
        finally:
            writer.stop()
    assert "no more heartbeats" not in caplog.text


def test_a_missing_heartbeat_is_stale_after_the_timeout(tmp_path: Path, monkeypatch) -> None:
    now = _fake_monotonic(monkeypatch)
    watch = HeartbeatWatch(tmp_path / "heartbeat.json", timeout=2.0)
    assert watch.seconds_silent() == 0.0 and not watch.stale(0.0)
    now[0] += 1.0
    assert watch.seconds_silent() == 1.0 and not watch.stale(1.0)
    now[0] += 1.0
    assert watch.seconds_silent() == 2.0 and watch.stale(2.0)
    assert watch.last_beat() == "no heartbeat was ever read" and watch.node() is None


def test_time_the_watcher_did_not_run_is_not_counted_as_rank0_silence(tmp_path: Path, monkeypatch) -> None:
    """A suspended job (SIGSTOP on every node) resumes with the monotonic clock 60 s on: the watcher must not
    take rank 0 for lost; silence it looked at goes on counting from where it was."""
    now = _fake_monotonic(monkeypatch)
    path = tmp_path / "heartbeat.json"
    path.write_text('{"node": "node1", "beat": 1}')
    watch = HeartbeatWatch(path, timeout=20.0, pause_gap=10.0)

    def look_after(seconds: float) -> float:
        now[0] += seconds
        return watch.seconds_silent()

    assert look_after(1.0) == 0.0  # the first beat read
    assert look_after(3.0) == 3.0
    assert look_after(60.0) == 3.0  # suspended for 60 s: not silence
    silences = [look_after(1.0) for _ in range(17)]
    assert silences == [float(s) for s in range(4, 21)]  # 20 s of looked-at silence
    assert [watch.stale(s) for s in silences] == [False] * 16 + [True]
    path.write_text('{"node": "node1", "beat": 2}')
    assert look_after(1.0) == 0.0
    assert look_after(9.0) == 9.0  # a gap up to pause_gap is silence


def test_only_one_node_claims_ending_the_job(tmp_path: Path) -> None:
    assert claim(tmp_path / "ending") is True
    assert claim(tmp_path / "ending") is False


class _FakeClient:
    def __init__(self) -> None:
        self.workers: dict[str, dict] = {}
        self.unanswered = 0  # how many of the next calls time out

    def scheduler_info(self, n_workers: int = -1) -> dict:
        if self.unanswered:
            self.unanswered -= 1
            raise TimeoutError("scheduler_info timed out")
        return {"workers": dict(self.workers)}


def test_worker_watch_names_a_worker_that_left_and_forgets_it_when_back(
    tmp_path: Path, monkeypatch, caplog
) -> None:
    caplog.set_level("INFO")
    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.0)
    job_dir = tmp_path / "_jobs" / "42"
    (job_dir / "node3").mkdir(parents=True)
    (job_dir / "node3" / "worker.log").write_text("")
    (job_dir / "scheduler.json").write_text("{}")
    # Only what WorkerWatch reads of a RunConfig.
    config = SimpleNamespace(
        worker_wait=300.0,
        scheduler_file=str(job_dir / "scheduler.json"),
        scheduler_address=None,
        cluster=None,
    )
    client = _FakeClient()
    client.workers = {
        "tcp://a:1": {"name": "node2-0", "host": "10.0.0.2"},
        "tcp://b:1": {"name": "node3-0", "host": "10.0.0.3"},
    }
    watch = WorkerWatch(client, config)
    assert watch.check() is None
    del client.workers["tcp://b:1"]
    assert watch.check() is None  # one worker left: the run goes on
    assert watch.lost == {"node3-0": "node3-0 on 10.0.0.3"}
    assert "worker node3-0 on 10.0.0.3 left the cluster" in caplog.text
    assert f"its log: {job_dir / 'node3' / 'worker.log'}" in caplog.text
    client.workers["tcp://c:2"] = {"name": "node3-0", "host": "10.0.0.3"}  # a restarted worker
    assert watch.check() is None
    assert watch.lost == {}


def test_a_claim_that_cannot_be_made_still_lets_this_node_end_the_job(tmp_path: Path) -> None:
    # A failing shared file system (here: no such directory) must not leave the job running to its limit.
    assert claim(tmp_path / "gone" / "ending") is True


def _watch(client, wait: float = 300.0) -> WorkerWatch:
    config = SimpleNamespace(worker_wait=wait, scheduler_file=None, scheduler_address=None, cluster=None)
    return WorkerWatch(client, config)


def test_a_scheduler_that_does_not_answer_once_loses_no_worker(monkeypatch, caplog) -> None:
    """Over UCX on a busy machine a scheduler_info call timed out once: every worker was reported as having
    left the cluster, and back two seconds later. No answer is not an empty worker list."""
    caplog.set_level("INFO")
    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.0)
    client = _FakeClient()
    client.workers = {
        "ucxx://a:1": {"name": "node1-0", "host": "h1"},
        "ucxx://b:1": {"name": "node2-0", "host": "h2"},
    }
    watch = _watch(client)
    assert watch.check() is None
    client.unanswered = 1
    assert watch.check() is None
    assert watch.lost == {} and "left the cluster" not in caplog.text
    assert "the scheduler did not answer; stopping in 300 s (--worker-wait) unless it answers" in caplog.text
    assert watch.check() is None
    assert "the scheduler answers again: 2 worker(s)" in caplog.text
    assert watch.none_since is None


def test_a_scheduler_that_never_answers_again_ends_the_run_after_the_worker_wait(monkeypatch) -> None:
    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.0)
    clock = [1000.0]
    monkeypatch.setattr(liveness.time, "monotonic", lambda: clock[0])
    client = _FakeClient()
    client.workers = {"ucxx://a:1": {"name": "node1-0", "host": "h1"}}
    watch = _watch(client, wait=30.0)
    assert watch.check() is None
    client.unanswered = 10**6
    assert watch.check() is None
    clock[0] += 29.0
    assert watch.check() is None
    clock[0] += 2.0
    reason = watch.check()
    assert reason is not None and reason.startswith(
        "no Dask worker for 30 s (--worker-wait) (the scheduler did not answer): the workers last seen were "
        "node1-0 on h1"
    )


def test_a_jobqueue_run_whose_worker_jobs_cannot_start_stops_at_once_even_under_worker_wait_0(
    monkeypatch,
) -> None:
    """The keeper gave up on every worker job: waiting (for ever under --worker-wait 0) would never end."""
    from hpc_classify.cluster.worker_jobs import keep_worker_jobs

    monkeypatch.setattr(liveness, "CHECK_INTERVAL", 0.0)
    cluster = SimpleNamespace(loop=SimpleNamespace(add_callback=lambda install: None))  # never installed
    keeper = keep_worker_jobs(cluster)
    client = _FakeClient()
    client.cluster = cluster  # as distributed's Client(cluster) keeps it
    client.workers = {"tcp://a:1": {"name": "SLURMCluster-0", "host": "h1"}}
    watch = _watch(client, wait=0.0)
    keeper.no_worker_can_start = "every worker job ... no worker can start (X.err)"
    assert watch.check() is None  # a worker is connected: the run goes on
    client.workers = {}
    reason = watch.check()
    assert reason is not None and reason.startswith("every worker job ... no worker can start (X.err)")
    keeper.no_worker_can_start = None  # the keeper's verdict alone decides: without it, --worker-wait 0 waits
    assert watch.check() is None
