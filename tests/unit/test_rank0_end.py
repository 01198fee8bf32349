"""Rank 0's end reaches the other nodes through its heartbeat (cluster/rank0_heartbeat.py, slurm_node.py): a
new `shutdown` file can stay invisible to them on NFS (a name looked for as missing is cached so for up to
acdirmax, 60 s), as long as --death-timeout; a node must then not take a run that ended for rank 0's loss and
requeue it. Plain processes and a temporary directory: no cluster, no Slurm."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from hpc_classify.cluster import other_rank, slurm_node
from hpc_classify.cluster.job_incarnation import Incarnation
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch, HeartbeatWriter
from hpc_classify.cluster.rank0_liveness import Rank0Verdict
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions, run_node
from hpc_classify.stop_request import StopRequest

TOKEN = "c1:42.0:1714557010:step 0"
NODES = ("node1", "node2")
INTERRUPTED, STOPPED_BEFORE_PROGRESS = 3, 5
# A process that runs until stopped, and exits 0 when told to (as a retired worker does).
SLEEPER = [
    sys.executable,
    "-c",
    "import signal, sys; signal.signal(15, lambda *_: sys.exit(0)); signal.pause()",
]


def _heartbeat(path: Path) -> dict:
    """The heartbeat as written (it is rewritten in place: a read can catch it half-written)."""
    while True:
        try:
            return json.loads(path.read_text())
        except ValueError:
            time.sleep(0.001)


class _NewNamesCachedMissing(Incarnation):
    """What a node's NFS client shows after a second of looking for `shutdown`: its absence, cached (the
    negative lookup cache), while an existing file's content is read anew at each open."""

    def read(self, path: Path):
        return None if path.name == "shutdown" else super().read(path)


def test_other_nodes_see_rank0s_clean_end_through_its_heartbeat_and_requeue_nothing(
    tmp_path: Path, monkeypatch
) -> None:
    """Rank 0 runs its real entry (heartbeat, end of the run) with stand-ins for the scheduler, its client and
    the workers; node2 waits for its end and cannot see the `shutdown` file. It must leave with 0 as soon as
    rank 0 ended, not find rank 0 lost --death-timeout later and end the job for a restart (exit 3)."""
    ended_job = []
    monkeypatch.setattr(other_rank, "end_job_once", lambda *args, **kwargs: ended_job.append(args))
    options = dict(job_root=str(tmp_path), device="cpu", poll_interval=0.01, heartbeat_interval=0.05)
    # A death timeout a stalled test process cannot reach: node2 leaves on the ended beat, long before it.
    node2 = NodeLauncher(
        NodeOptions(**options, death_timeout=30.0, shutdown_poll_interval=0.02),
        NodeIdentity(1, 2, "node2", NODES, "42", 0, TOKEN),
    )
    node2.incarnation = _NewNamesCachedMissing(TOKEN)
    monkeypatch.setattr(node2, "start_workers", lambda: node2.processes.spawn("worker", SLEEPER, {}))
    node2_code: list[int] = []
    heartbeat_while_the_driver_ran: list[dict] = []
    rank0: list[NodeLauncher] = []

    def start_scheduler(self: NodeLauncher) -> None:
        rank0.append(self)
        self.processes.spawn("scheduler", SLEEPER, {})
        self.incarnation.write(self.scheduler_file, {"address": "tcp://127.0.0.1:1"})

    def wait_for_workers(self: NodeLauncher, client: object, stop: StopRequest) -> None:
        deadline = time.monotonic() + 60
        while "worker" not in node2.processes.running:  # node2 serves its workers: the run is going on
            assert time.monotonic() < deadline, "node2 never started its workers"
            time.sleep(0.01)
        for node in NODES:  # what each node's start_workers publishes
            self.paths.node_dir(node).mkdir(parents=True, exist_ok=True)
            self.incarnation.write(self.paths.node_workers(node), {"workers": 1})

    def run_driver(scheduler_file: str, stop: StopRequest) -> int:
        time.sleep(0.2)  # a few of node2's looks at rank 0 while the driver runs
        heartbeat_while_the_driver_ran.append(_heartbeat(node2.paths.heartbeat))
        return 0

    def retire_and_shut_down(client: object, timeout: float) -> None:
        # node2's worker is retired and the scheduler stops (rank 0's heartbeat thread sees that).
        for process in (node2.processes.running["worker"], rank0[0].processes.running["scheduler"]):
            process.terminate()
            process.wait(timeout=60)

    monkeypatch.setattr(NodeLauncher, "start_scheduler", start_scheduler)
    monkeypatch.setattr(NodeLauncher, "start_workers", lambda self: None)
    monkeypatch.setattr(NodeLauncher, "_connect", lambda self: object())
    monkeypatch.setattr(NodeLauncher, "wait_for_workers", wait_for_workers)
    monkeypatch.setattr(slurm_node, "retire_and_shut_down", retire_and_shut_down)
    waiting = threading.Thread(target=lambda: node2_code.append(node2._serve_workers()))
    waiting.start()
    try:
        identity = NodeIdentity(0, 2, "node1", NODES, "42", 0, TOKEN)
        assert (
            run_node(
                NodeOptions(**options),
                run_driver,
                identity=identity,
            )
            == 0
        )
        waiting.join(timeout=30)
    finally:
        node2.processes.stop(grace=0.0)
        waiting.join(timeout=30)
    assert (node2.paths.job_dir / "shutdown").exists()  # still written, only not visible to node2 here
    assert node2_code == [0] and ended_job == []
    assert not node2.paths.exit_record("node2", "node").exists()
    assert "ended" not in heartbeat_while_the_driver_ran[0]  # the end is said only once the driver returned
    last = _heartbeat(node2.paths.heartbeat)
    assert last["ended"] is True and last["clean"] is True and last["incarnation"] == TOKEN


def test_the_ended_beat_is_the_last_and_a_watcher_never_takes_it_for_a_loss(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    writer = HeartbeatWriter(path, "node1", alive=lambda: True, interval=0.01).start()
    watch = HeartbeatWatch(path, timeout=0.3, pause_gap=10.0)
    rank0 = Rank0Verdict(watch, "inproc://")  # a scheduler that cannot be asked: the heartbeat alone decides
    assert not rank0.lost() and watch.ending() is None
    writer.end(clean=False)
    ended = path.read_text()
    time.sleep(0.1)  # the thread's next beats would have come by now
    writer.beat()  # and a late one is refused
    assert path.read_text() == ended
    assert not rank0.lost()
    assert watch.ending() == json.loads(ended) and json.loads(ended)["clean"] is False
    time.sleep(0.4)  # silent for longer than the timeout after the end: still no loss
    assert not rank0.lost() and rank0.silent >= 0.4 and watch.ending() is not None


def test_a_heartbeat_without_the_end_still_goes_stale(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    path.write_text('{"node": "node1", "beat": 1, "time": 0.0}')
    watch = HeartbeatWatch(path, timeout=0.2)
    rank0 = Rank0Verdict(watch, "inproc://")
    assert not rank0.lost()
    time.sleep(0.3)
    assert rank0.lost() and watch.ending() is None
