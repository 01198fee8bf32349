"""A job whose rank 0 is lost is requeued only after progress (cluster/other_rank.py, rank0_heartbeat.py): rank 0's
heartbeat says how many files and pieces its driver has finished in this run of the job, and a rank 0 lost before
any (its driver killed for memory while it plans, a crash: the same at every start) is cancelled, not requeued for
ever. Plain processes and a temporary directory: no cluster, no Slurm."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_rank0_end import INTERRUPTED, NODES, SLEEPER, STOPPED_BEFORE_PROGRESS, TOKEN

from hpc_classify.cluster import rank0_heartbeat, slurm_node
from hpc_classify.cluster.job_incarnation import Incarnation
from hpc_classify.cluster.node_files import read_json
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch, HeartbeatWriter
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_job import RANK0_LOST, SlurmPatience
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions, run_node
from hpc_classify.stop_request import StopRequest


def test_each_beat_says_what_the_driver_finished_and_the_watch_keeps_the_most(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    finished = [0]
    writer = HeartbeatWriter(path, "node1", alive=lambda: True, finished=lambda: finished[0])  # beats by hand
    watch = HeartbeatWatch(path, timeout=60.0)
    writer.beat()
    watch.seconds_silent()  # one look
    assert json.loads(path.read_text())["finished"] == 0 and watch.finished() == 0
    finished[0] = 3
    writer.beat()
    watch.seconds_silent()  # one look
    assert watch.finished() == 3
    path.write_text('{"node": "node1", "beat": 9, "fin')  # caught half-written: still alive, nothing said
    watch.seconds_silent()  # one look
    assert watch.finished() == 3
    theirs = HeartbeatWatch(path, timeout=60.0, incarnation=Incarnation(TOKEN))
    Incarnation("another run").write(path, {"node": "node1", "beat": 1, "time": 0.0, "finished": 7})
    theirs.seconds_silent()
    assert theirs.finished() == 0  # another run's heartbeat says nothing about this one


def _node2(tmp_path: Path, monkeypatch) -> NodeLauncher:
    options = NodeOptions(
        job_root=str(tmp_path),
        device="cpu",
        death_timeout=0.5,
        shutdown_poll_interval=0.05,
        poll_interval=0.01,
    )
    node2 = NodeLauncher(options, NodeIdentity(1, 2, "node2", NODES, "42", 0, TOKEN))
    node2.incarnation.take_job_dir(node2.paths, "node1")  # what rank 0 does first
    node2.incarnation.write(node2.scheduler_file, {"address": "tcp://127.0.0.1:1"})
    monkeypatch.setattr(node2, "start_workers", lambda: node2.processes.spawn("worker", SLEEPER, {}))
    return node2


def _rank0_lost_after(tmp_path: Path, monkeypatch, finished: int) -> tuple[int, list, dict]:
    """node2's exit code, what it asked Slurm, and its exit record, when rank 0 beat once (its driver having
    finished `finished` files and pieces) and then went silent."""
    node2 = _node2(tmp_path, monkeypatch)
    HeartbeatWriter(
        node2.paths.heartbeat, "node1", lambda: True, incarnation=node2.incarnation, finished=lambda: finished
    ).beat()
    asked: list = []

    def may_be_requeued(job_id: str, patience: SlurmPatience) -> bool:
        assert patience == RANK0_LOST  # not the stop path: this node has time
        asked.append(("may be requeued?", job_id))
        return True

    def end_job_for_restart(
        job_id: str, requeue: bool | None, restart_count: int, patience: SlurmPatience
    ) -> str:
        assert patience == RANK0_LOST
        asked.append(("end", job_id, requeue, restart_count))
        return f"requeued job {job_id}" if requeue else f"cancelled job {job_id}"

    monkeypatch.setattr(rank0_heartbeat, "job_may_be_requeued", may_be_requeued)
    monkeypatch.setattr(rank0_heartbeat, "end_job_for_restart", end_job_for_restart)
    try:
        code = node2.run_other_rank()
    finally:
        node2.processes.stop(grace=0.0)
    return code, asked, read_json(node2.paths.exit_record("node2", "node"))


def test_rank0_lost_before_its_driver_finished_anything_ends_the_job_without_a_requeue(
    tmp_path: Path, monkeypatch
) -> None:
    code, asked, record = _rank0_lost_after(tmp_path, monkeypatch, finished=0)
    assert code == STOPPED_BEFORE_PROGRESS
    assert asked == [("end", "42", False, 0)]  # cancelled; whether it may be requeued does not matter
    assert record["exit_code"] == STOPPED_BEFORE_PROGRESS and record["job"] == "cancelled job 42"
    reason = record["reason"]
    assert reason.startswith("node node2: rank 0 (node1) and its scheduler at tcp://127.0.0.1:1 are gone: ")
    assert "before its driver had finished a single file or piece in this run of the job" in reason
    assert "not requeued, since a rank 0 that dies the same way at every start" in reason


def test_rank0_lost_after_progress_is_requeued(tmp_path: Path, monkeypatch) -> None:
    code, asked, record = _rank0_lost_after(tmp_path, monkeypatch, finished=2)
    assert code == INTERRUPTED
    assert asked == [("may be requeued?", "42"), ("end", "42", True, 0)]
    assert record["exit_code"] == INTERRUPTED and record["job"] == "requeued job 42"
    assert "exiting with 3 (resumable). Rank 0's logs: " in record["reason"]


def test_the_planned_ending_without_progress_says_why_there_is_no_requeue() -> None:
    assert rank0_heartbeat.planned_ending("42", False, progress=False).startswith(
        "cancelling job 42 (scancel) instead of requeueing it: rank 0 was lost before this run of the job "
        "finished a single file or piece"
    )


def test_rank0s_heartbeat_carries_its_drivers_count(tmp_path: Path, monkeypatch) -> None:
    """Rank 0's real entry, with stand-ins for its scheduler, client and workers: the count the driver keeps in
    its StopRequest reaches the heartbeat that the other nodes read."""
    rank0: list[NodeLauncher] = []

    def start_scheduler(self: NodeLauncher) -> None:
        rank0.append(self)
        self.processes.spawn("scheduler", SLEEPER, {})
        self.incarnation.write(self.scheduler_file, {"address": "tcp://127.0.0.1:1"})

    def run_driver(scheduler_file: str, stop: StopRequest) -> int:
        stop.finished = 4  # as driver/dispatch.py counts what it collected
        watch = HeartbeatWatch(rank0[0].paths.heartbeat, timeout=60.0, incarnation=rank0[0].incarnation)
        deadline = time.monotonic() + 60
        watch.seconds_silent()
        while watch.finished() < 4:  # until a beat says so
            assert time.monotonic() < deadline, "no heartbeat said what the driver finished"
            time.sleep(0.01)
            watch.seconds_silent()
        return 0

    def wait_for_workers(self: NodeLauncher, client: object, stop: StopRequest) -> None:
        self.paths.node_dir("node1").mkdir(parents=True, exist_ok=True)  # what start_workers publishes
        self.incarnation.write(self.paths.node_workers("node1"), {"workers": 1})

    def retire_and_shut_down(client: object, timeout: float) -> None:
        rank0[0].processes.running["scheduler"].terminate()

    monkeypatch.setattr(NodeLauncher, "start_scheduler", start_scheduler)
    monkeypatch.setattr(NodeLauncher, "start_workers", lambda self: None)
    monkeypatch.setattr(NodeLauncher, "_connect", lambda self: object())
    monkeypatch.setattr(NodeLauncher, "wait_for_workers", wait_for_workers)
    monkeypatch.setattr(slurm_node, "retire_and_shut_down", retire_and_shut_down)
    options = NodeOptions(job_root=str(tmp_path), device="cpu", poll_interval=0.01, heartbeat_interval=0.05)
    identity = NodeIdentity(0, 1, "node1", ("node1",), "42", 0, TOKEN)
    code = run_node(
        options,
        run_driver,
        identity=identity,
    )
    assert code == 0
    assert read_json(rank0[0].paths.heartbeat)["finished"] == 4  # the ended beat says it too


def test_the_driver_counts_what_it_finished_for_the_heartbeat(
    tmp_path: Path, tiny_domain_model: Path
) -> None:
    from distributed import Client, LocalCluster

    from hpc_classify.api import classify
    from hpc_classify.classifiers.checkpoint_classifier import DomainClassifier
    from hpc_classify.config import RunConfig

    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("a", "b"):
        (inputs / f"{name}.jsonl").write_text(json.dumps({"text": f"document {name}"}) + "\n")
    config = RunConfig(
        inputs=(str(inputs),),
        output=str(tmp_path / "out"),
        classifiers=(DomainClassifier(model=str(tiny_domain_model), device="cpu"),),
        group_bytes=0,
    )
    with (
        LocalCluster(n_workers=1, threads_per_worker=1, processes=False) as cluster,
        Client(cluster) as client,
        StopRequest(()) as stop,
    ):
        result = classify(config, client=client, stop=stop)
    assert result.exit_code == 0
    assert stop.finished == 2


@pytest.mark.parametrize("finished", [0, 1])
def test_a_watch_that_never_read_a_beat_knows_of_no_progress(tmp_path: Path, finished: int) -> None:
    path = tmp_path / "heartbeat.json"
    watch = HeartbeatWatch(path, timeout=60.0)
    watch.seconds_silent()  # one look
    assert watch.finished() == 0
    HeartbeatWriter(path, "node1", lambda: True, finished=lambda: finished).beat()
    watch.seconds_silent()  # one look
    assert watch.finished() == finished
