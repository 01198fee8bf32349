"""A stall of rank 0's file system is not rank 0's loss (cluster/rank0_liveness.py, other_rank.py): while its
heartbeat is stale but its scheduler still accepts a TCP connection, the other nodes warn once and watch on;
rank 0 is lost when the scheduler does not answer too (as before), or when the stall outlasts the bound. Real
heartbeat files and real sockets in a temporary directory: no cluster, no Slurm."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from test_rank0_end import NODES, SLEEPER, STOPPED_BEFORE_PROGRESS, TOKEN

from hpc_classify.cluster import other_rank, rank0_liveness
from hpc_classify.cluster.node_files import read_json
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch, HeartbeatWriter
from hpc_classify.cluster.rank0_liveness import Rank0Verdict, scheduler_answers, scheduler_host_port
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions

DEADLINE = 30.0


class Scheduler:
    """A listening socket in place of rank 0's scheduler, counting the connections it accepted."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.address = f"tcp://127.0.0.1:{self.server.getsockname()[1]}"
        self.accepted = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:  # closed
                return
            connection.close()
            self.accepted += 1

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
        self.server.close()
        self._thread.join(timeout=DEADLINE)


@pytest.fixture
def scheduler() -> Iterator[Scheduler]:
    listening = Scheduler()
    yield listening
    listening.close()


def _closed_port_address() -> str:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
    return f"tcp://127.0.0.1:{port}"  # nothing listens there now


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        time.sleep(0.01)


def _stall_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "still answers" in r.getMessage()
    ]


def test_scheduler_answers_only_where_a_scheduler_listens(scheduler: Scheduler) -> None:
    assert scheduler_answers(scheduler.address)
    assert scheduler_answers(scheduler.address.replace("tcp://", "ucxx://"))  # host:port all the same
    assert not scheduler_answers(_closed_port_address())
    assert not scheduler_answers("inproc://127.0.0.1/42/1") and not scheduler_answers("")
    assert scheduler_host_port("ucxx://[fe80::1]:8786") == ("fe80::1", 8786)
    assert scheduler_host_port("tcp://node1:8786") == ("node1", 8786)
    assert scheduler_host_port("tcp://node1") is None and scheduler_host_port("node1:8786") is None


def _silent_verdict(tmp_path: Path, address: str, timeout: float = 0.2) -> Rank0Verdict:
    """A verdict on a heartbeat written once, which asks the scheduler at every look."""
    path = tmp_path / "heartbeat.json"
    HeartbeatWriter(path, "node1", lambda: True).beat()
    verdict = Rank0Verdict(HeartbeatWatch(path, timeout=timeout), address)
    verdict.probe_every = 0.0
    return verdict


def test_a_stale_heartbeat_is_no_loss_while_the_scheduler_answers_and_is_warned_once_per_stall(
    tmp_path: Path, scheduler: Scheduler, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    verdict = _silent_verdict(tmp_path, scheduler.address)
    assert not verdict.lost() and scheduler.accepted == 0  # not stale yet: nothing asked
    _until(lambda: not verdict.lost() and verdict.silent >= 0.2, "the heartbeat went stale")
    _until(lambda: not verdict.lost() and scheduler.accepted >= 3, "three answers in one stall")
    warnings = _stall_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert str(verdict.watch.path) in warnings[0] and " unchanged for " in warnings[0]
    HeartbeatWriter(verdict.watch.path, "node1", lambda: True).beat()  # the file system is back
    assert not verdict.lost() and not verdict.scheduler_answered()
    assert any("changed again: rank 0 was not lost" in r.getMessage() for r in caplog.records)
    _until(lambda: not verdict.lost() and verdict.silent >= 0.2, "the second stall")
    assert len(_stall_warnings(caplog)) == 2  # once for each stall
    scheduler.close()  # now rank 0's scheduler is gone too
    assert verdict.lost()


def test_with_nothing_listening_a_stale_heartbeat_is_lost_after_the_timeout_as_before(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    verdict = _silent_verdict(tmp_path, _closed_port_address(), timeout=0.3)
    assert not verdict.lost()
    _until(verdict.lost, "rank 0 lost")
    assert verdict.silent >= 0.3 and not verdict.scheduler_answered()
    assert _stall_warnings(caplog) == []


def test_a_scheduler_that_answers_defers_the_verdict_only_up_to_the_bound(
    tmp_path: Path, scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [
        1000.0
    ]  # the heartbeat's and the verdict's monotonic clock, moved on by hand: no stall can skip a look
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    verdict = _silent_verdict(tmp_path, scheduler.address)
    verdict.grace = 0.5

    def lost_after(seconds: float) -> bool:
        now[0] += seconds
        return verdict.lost()

    # Silent for 0.3 s and 0.6 s (past the 0.2 s timeout) with the scheduler answering, then for 0.75 s.
    assert [lost_after(0.0), lost_after(0.3), lost_after(0.3)] == [False] * 3
    assert verdict.scheduler_answered()
    assert lost_after(0.15) and verdict.silent == pytest.approx(0.75) and verdict.scheduler_answered()


def _node2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, address: str) -> NodeLauncher:
    options = NodeOptions(
        job_root=str(tmp_path),
        device="cpu",
        death_timeout=0.2,
        shutdown_poll_interval=0.02,
        poll_interval=0.01,
    )
    node2 = NodeLauncher(options, NodeIdentity(1, 2, "node2", NODES, "42", 0, TOKEN))
    node2.incarnation.take_job_dir(node2.paths, "node1")  # what rank 0 does first
    node2.incarnation.write(node2.scheduler_file, {"address": address})
    monkeypatch.setattr(node2, "start_workers", lambda: node2.processes.spawn("worker", SLEEPER, {}))
    monkeypatch.setattr(rank0_liveness, "PROBE_EVERY", 0.0)
    return node2


@pytest.mark.parametrize("end", ["ended beat", "shutdown file"])
def test_a_node_serves_on_through_rank0s_file_system_stall_and_still_ends_with_rank0(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    scheduler: Scheduler,
    end: str,
) -> None:
    """Rank 0 beat once, then its file system stalled (no more beats) while its scheduler answered: node2 must
    not end the job, and must still leave with 0 when rank 0 ends its run."""
    ended_job: list = []
    monkeypatch.setattr(other_rank, "end_job_once", lambda *args, **kwargs: ended_job.append(args))
    node2 = _node2(tmp_path, monkeypatch, scheduler.address)
    writer = HeartbeatWriter(node2.paths.heartbeat, "node1", lambda: True, incarnation=node2.incarnation)
    writer.beat()
    code: list[int] = []
    serving = threading.Thread(target=lambda: code.append(node2._serve_workers()))
    serving.start()
    try:
        # Stale for well over --death-timeout, the scheduler asked again and again: node2 still serves.
        _until(lambda: scheduler.accepted >= 5 or not serving.is_alive(), "node2 asked the scheduler 5 times")
        assert serving.is_alive() and code == [] and ended_job == []
        assert len(_stall_warnings(caplog)) == 1
        if end == "ended beat":
            writer.end(clean=False)  # (a clean end waits 2 s for the retired worker)
        else:
            node2.incarnation.write(node2.paths.shutdown, {"node": "node1", "clean": False})
        serving.join(timeout=DEADLINE)
    finally:
        node2.processes.stop(grace=0.0)
        serving.join(timeout=DEADLINE)
    assert code == [0] and ended_job == []
    assert not node2.paths.exit_record("node2", "node").exists()


def test_a_stall_past_the_bound_ends_the_job_and_says_the_scheduler_still_answered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scheduler: Scheduler
) -> None:
    ended_job: list = []
    monkeypatch.setattr(other_rank, "end_job_once", lambda *args, **kwargs: ended_job.append(args))
    monkeypatch.setattr(rank0_liveness, "STALL_GRACE", 0.6)
    node2 = _node2(tmp_path, monkeypatch, scheduler.address)
    HeartbeatWriter(node2.paths.heartbeat, "node1", lambda: True, incarnation=node2.incarnation).beat()
    try:
        code = node2._serve_workers()
    finally:
        node2.processes.stop(grace=0.0)
    assert code == STOPPED_BEFORE_PROGRESS and len(ended_job) == 1 and scheduler.accepted >= 1
    reason = read_json(node2.paths.exit_record("node2", "node"))["reason"]
    assert reason.startswith(
        f"node node2: rank 0 (node1) taken for lost although its scheduler at {scheduler.address} still answers: "
    )
    assert "longer than a file system stall (--death-timeout + 1 s)" in reason
