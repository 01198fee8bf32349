"""Once its workers started, a node other than rank 0 watches rank 0 for the rest of the job (days): its heartbeat
and its `shutdown` file, two lookups on the shared file system per look. It looked every second (200 lookups a
second at 100 nodes, for the whole job: a day, 17 million); now its looks back off to every 5 s (file_looks.rank0_watch_gap), or a
tenth of --death-timeout where that is less. Rank 0's end is still seen within a gap, and its loss declared at
most a gap after --death-timeout of silence. Simulated time (a fake clock in the watching modules), counted reads.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hpc_classify.cluster import job_incarnation, other_rank
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWriter
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions

TOKEN = "c1:42.0:1714557010:step 0"
NODES = ("node1", "node2")
INTERRUPTED, STOPPED_BEFORE_PROGRESS = 3, 5
BEAT = 5.0  # rank 0's heartbeat interval (NodeOptions.heartbeat_interval's default)
SLEEPER = [sys.executable, "-c", "import signal; signal.pause()"]


class Clock:
    """The `time` of the watching modules: `sleep` moves the time on and writes rank 0's beats that fell due."""

    strftime, localtime = staticmethod(time.strftime), staticmethod(time.localtime)

    def __init__(self) -> None:
        self.now = 0.0
        self._due: list[tuple[float, object]] = []

    def monotonic(self) -> float:
        return self.now

    def time(self) -> float:
        return 1_714_557_010.0 + self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        while due := sorted((d for d in self._due if d[0] <= self.now), key=lambda d: d[0]):
            self._due.remove(due[0])
            due[0][1]()  # type: ignore[operator]

    def at(self, when: float, action) -> None:
        self._due.append((when, action))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    for module in ("other_rank", "file_looks", "rank0_heartbeat", "rank0_liveness"):
        monkeypatch.setattr(f"hpc_classify.cluster.{module}.time", clock, raising=False)
    return clock


@pytest.fixture
def refused_address() -> Iterator[str]:
    """A scheduler address whose port is bound but not listened on: a connect is refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"tcp://127.0.0.1:{sock.getsockname()[1]}"


class Watched:
    """node2 serving its worker, and what it read of rank 0's files once the worker started."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, **options) -> None:
        self.clock = clock
        opts = NodeOptions(job_root=str(tmp_path), device="cpu", poll_interval=0.25, **options)
        self.node2 = node2 = NodeLauncher(opts, NodeIdentity(1, 2, "node2", NODES, "42", 0, TOKEN))
        node2.incarnation.take_job_dir(node2.paths, "node1")  # what rank 0 does first
        self.writer = HeartbeatWriter(
            node2.paths.heartbeat, "node1", lambda: True, incarnation=node2.incarnation
        )
        self.reads: list[tuple[float, str]] | None = None  # from the workers' start on
        self.ended_job: list[tuple] = []
        monkeypatch.setattr(other_rank, "end_job_once", lambda *args, **kwargs: self.ended_job.append(args))
        monkeypatch.setattr(node2, "start_workers", self._start_workers)
        read_json, read_bytes = job_incarnation.read_json, Path.read_bytes

        def counted_json(path: Path):
            if self.reads is not None:
                self.reads.append((clock.now, Path(path).name))
            return read_json(path)

        def counted_bytes(path: Path) -> bytes:
            if self.reads is not None:
                self.reads.append((clock.now, path.name))
            return read_bytes(path)

        monkeypatch.setattr(job_incarnation, "read_json", counted_json)
        monkeypatch.setattr(Path, "read_bytes", counted_bytes)

    def _start_workers(self) -> None:
        self.node2.processes.spawn("worker", SLEEPER, {})
        self.reads = []

    def beat_until(self, last: float, then=None) -> None:
        """Rank 0 beats every BEAT s from now up to `last`, then does `then` (nothing: falls silent)."""

        def beat(at: float) -> None:
            if at < last or then is None:
                self.writer.beat()
            if at < last:
                self.clock.at(at + BEAT, lambda: beat(at + BEAT))
            elif then is not None:
                then()

        beat(self.clock.now)

    def serve(self, address: str) -> int:
        self.node2.incarnation.write(self.node2.scheduler_file, {"address": address})
        try:
            return self.node2._serve_workers()
        finally:
            self.node2.processes.stop(grace=0.0)

    def looks(self, name: str) -> list[float]:
        return [at for at, read in self.reads or [] if read == name]


HOUR = 3600.0  # of the days a job lasts (a simulated day: 17,283 looks, not 86,401; slow on a loaded disk)
# Looks 1 s apart at first, each gap twice the last up to 5 s: t = 0, 1, 3, 7, then 12, 17, ... 3602.
LOOKS_IN_AN_HOUR = 4 + (3602 - 12) // 5 + 1


def test_an_hour_of_watching_rank0_takes_a_look_every_5_s_and_sees_its_end_within_5_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, refused_address: str
) -> None:
    watched = Watched(tmp_path, monkeypatch, clock, death_timeout=60.0, shutdown_poll_interval=1.0)
    watched.beat_until(HOUR, then=lambda: watched.writer.end(clean=False))
    assert watched.serve(refused_address) == 0
    assert HOUR <= clock.now <= HOUR + 5.0  # the ended beat seen at the next look
    assert watched.ended_job == [] and not watched.node2.paths.exit_record("node2", "node").exists()
    # One read of the heartbeat and one lookup of `shutdown` per look: 723 each, not 3,601 (a look a second).
    assert len(watched.looks("heartbeat.json")) == len(watched.looks("shutdown")) == LOOKS_IN_AN_HOUR
    assert len(watched.reads or []) == 2 * LOOKS_IN_AN_HOUR


def test_rank0s_shutdown_file_alone_is_seen_within_5_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock: Clock, refused_address: str
) -> None:
    """Rank 0 ended but its ended beat was not written (a failing file system): the `shutdown` file says it."""
    watched = Watched(tmp_path, monkeypatch, clock, death_timeout=60.0, shutdown_poll_interval=1.0)
    watched.beat_until(HOUR)
    shutdown = {"node": "node1", "clean": False}
    clock.at(1800.0, lambda: watched.node2.incarnation.write(watched.node2.paths.shutdown, shutdown))
    assert watched.serve(refused_address) == 0
    assert clock.now == 1802.0  # looks at 1797 and 1802
    assert len(watched.looks("shutdown")) == 4 + (1802 - 12) // 5 + 1  # 363; a look a second: 1,801


@pytest.mark.parametrize(
    ("death_timeout", "declared_at", "looks"),
    [
        # Looks at 0, 1, 3, 7, then every 5 s: the last beat (3600) seen at 3602, silent for 60 s at 3662.
        (60.0, 3662.0, 4 + (3662 - 12) // 5 + 1),
        # A tenth of 20 s: looks at 0, 1, then every 2 s (3, 5, ...): the last beat seen at 3601.
        (20.0, 3621.0, 2 + (3621 - 3) // 2 + 1),
    ],
)
def test_rank0s_loss_is_declared_at_most_a_look_after_death_timeout(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: Clock,
    refused_address: str,
    death_timeout: float,
    declared_at: float,
    looks: int,
) -> None:
    """Rank 0 beat for an hour, then its node was lost (its scheduler's port refuses)."""
    watched = Watched(tmp_path, monkeypatch, clock, death_timeout=death_timeout, shutdown_poll_interval=1.0)
    watched.beat_until(3600.0)
    assert watched.serve(refused_address) == STOPPED_BEFORE_PROGRESS
    assert len(watched.ended_job) == 1
    assert clock.now == declared_at
    assert 3600.0 + death_timeout <= clock.now <= 3600.0 + death_timeout + min(5.0, death_timeout / 10)
    assert len(watched.looks("heartbeat.json")) == looks  # a look a second: 3,661 and 3,621
