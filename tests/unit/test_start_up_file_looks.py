"""While a multi-node job starts, the nodes look at the shared job directory with a backoff (cluster/file_looks.py):
rank 0 still asks its scheduler every poll_interval, but reads the nodes' files (refusal, worker exit,
workers.json) ever less often, up to every 5 s; the other ranks' waits for rank 0's files the same. A record that
appears is still seen within 5 s. Simulated time (a fake clock in the waiting modules), counted file reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from hpc_classify.cluster import job_incarnation, node_refusal
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions
from hpc_classify.errors import ClusterError, ConfigError

TOKEN = "c1:42.0:1714557010:step 0"
NODES = tuple(f"n{i}" for i in range(10))
POLL = 0.25  # exact in binary: simulated times add up without rounding
LONGEST_GAP = 5.0  # the documented bound on seeing a file that appeared (docs/slurm.md)
WAITED = 60.0  # the workers' imports from a cold shared file system
# Looks at t = 0, .25, .75, 1.75, 3.75, 7.75 (gaps doubling from POLL), then every 5 s: 12.75 ... 57.75.
LOOKS_IN_WAIT = 6 + 10


class Clock:
    """time.monotonic and time.sleep of the waiting modules: `sleep` moves the time on and does what was due."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps = 0
        self._due: list[tuple[float, object]] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        for at, action in [d for d in self._due if d[0] <= self.now]:
            self._due.remove((at, action))
            action()  # type: ignore[operator]

    def at(self, when: float, action) -> None:
        self._due.append((when, action))


@pytest.fixture
def clock(monkeypatch) -> Clock:
    clock = Clock()
    for module in ("slurm_node", "worker_roster", "node_refusal", "file_looks"):
        monkeypatch.setattr(f"hpc_classify.cluster.{module}.time", clock, raising=False)
    return clock


@pytest.fixture
def reads(monkeypatch, clock: Clock) -> list[tuple[float, str]]:
    """Every read of a job directory file: (simulated time, path below the job directory)."""
    seen: list[tuple[float, str]] = []
    read_json = job_incarnation.read_json

    def counted(path: Path):
        seen.append((clock.now, "/".join(Path(path).parts[-2:])))
        return read_json(path)

    monkeypatch.setattr(job_incarnation, "read_json", counted)
    return seen


def _launcher(root: Path, rank: int) -> NodeLauncher:
    identity = NodeIdentity(rank, len(NODES), NODES[rank], NODES, "42", 0, TOKEN)
    options = NodeOptions(job_root=str(root), device="cpu", worker_timeout=600.0, poll_interval=POLL)
    launcher = NodeLauncher(options, identity)
    launcher.paths.job_dir.mkdir(parents=True)
    return launcher


class Scheduler:
    """A client whose scheduler has n0's worker, and every node's from `all_at` on."""

    def __init__(self, clock: Clock, all_at: float = float("inf")) -> None:
        self.clock, self.all_at, self.questions = clock, all_at, []

    def scheduler_info(self, n_workers: int = -1) -> dict:
        self.questions.append(self.clock.now)
        nodes = NODES if self.clock.now >= self.all_at else NODES[:1]
        return {"workers": {f"tcp://{node}": {"name": f"{node}-0"} for node in nodes}}


class _NoStop:
    requested = False


def _write_later(clock: Clock, launcher: NodeLauncher, when: float, path: Path, record: dict) -> None:
    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        launcher.incarnation.write(path, record)

    clock.at(when, write)


def test_rank0_reads_the_nodes_files_with_a_backoff_and_still_sees_a_refusal_within_5_s(
    tmp_path: Path, clock: Clock, reads
) -> None:
    """9 nodes whose workers have not joined after a minute: the old wait read 3 files of each every 0.25 s
    (6,481 reads); now 2 files of each at every look (16 looks), and n0's count once."""
    launcher = _launcher(tmp_path, rank=0)
    paths = launcher.paths
    paths.node_dir("n0").mkdir()
    launcher.incarnation.write(paths.node_workers("n0"), {"workers": 1})
    refusal = {"node": "n5", "exit_code": 2, "reason": "--rmm-pool-size given with --device cpu"}
    _write_later(clock, launcher, WAITED, paths.exit_record("n5", "node"), refusal)
    scheduler = Scheduler(clock)

    with pytest.raises(
        ConfigError, match="node n5 refused its options: --rmm-pool-size given with --device cpu"
    ):
        launcher.wait_for_workers(scheduler, _NoStop())

    before = [path for at, path in reads if at < WAITED]
    assert len(before) == 1 + LOOKS_IN_WAIT * 2 * 9
    assert before.count("n0/workers.json") == 1 and not [p for p in before if p.endswith("workers.json")][1:]
    assert before.count("n5/node-exit.json") == before.count("n5/worker-exit.json") == LOOKS_IN_WAIT
    # The scheduler is still asked every poll_interval, and the refusal seen within the longest gap.
    assert len([q for q in scheduler.questions if q < WAITED]) == WAITED / POLL
    assert 1 <= len([q for q in scheduler.questions if q >= WAITED]) <= LONGEST_GAP / POLL + 1


def test_rank0_sees_a_nodes_worker_exit_within_5_s(tmp_path: Path, clock: Clock, reads) -> None:
    launcher = _launcher(tmp_path, rank=0)
    _write_later(
        clock, launcher, 30.0, launcher.paths.exit_record("n3", "worker"), {"node": "n3", "returncode": 1}
    )
    scheduler = Scheduler(clock)
    with pytest.raises(ClusterError, match=r"no worker from n3 joined the scheduler \(its worker exited\)"):
        launcher.wait_for_workers(scheduler, _NoStop())
    assert 1 <= len([q for q in scheduler.questions if q >= 30.0]) <= LONGEST_GAP / POLL + 1
    # 10 looks in 30 s, each: 2 files of every node (n0 too: its count is not there) and n0's workers.json.
    assert len([r for r in reads if r[0] < 30.0]) == 10 * (2 * 10 + 1)  # the old wait: 120 passes of 30


def test_rank0_starts_the_driver_at_the_pass_where_the_last_workers_joined(
    tmp_path: Path, clock: Clock, reads
) -> None:
    """Workers that join reset the backoff: their nodes' counts are read at once, and the wait ends at that
    pass, not at the next look. Each node's workers.json is read once."""
    launcher = _launcher(tmp_path, rank=0)
    for node in NODES:
        launcher.paths.node_dir(node).mkdir()
        launcher.incarnation.write(launcher.paths.node_workers(node), {"workers": 1})
    scheduler = Scheduler(clock, all_at=41.0)
    launcher.wait_for_workers(scheduler, _NoStop())
    assert scheduler.questions[-1] == 41.0 and len(scheduler.questions) == 41.0 / POLL + 1
    assert sorted(path for _, path in reads if path.endswith("workers.json")) == [
        f"{node}/workers.json" for node in NODES
    ]


def test_another_rank_looks_for_rank0s_files_with_a_backoff_and_joins_within_5_s(
    tmp_path: Path, clock: Clock, reads, monkeypatch
) -> None:
    """Two files (shutdown, scheduler.json) per look: 32 reads in a minute, where it read 480."""
    launcher = _launcher(tmp_path, rank=1)
    scheduler_file = {"address": "tcp://10.0.0.1:8786"}
    _write_later(clock, launcher, WAITED, launcher.paths.scheduler_file, scheduler_file)
    started: list[float] = []

    class Started(Exception):
        pass

    def start_workers() -> None:
        started.append(clock.now)
        raise Started

    monkeypatch.setattr(launcher, "start_workers", start_workers)
    with pytest.raises(Started):
        launcher.run_other_rank()
    assert [path for at, path in reads if at < WAITED] == ["42/shutdown", "42/scheduler.json"] * LOOKS_IN_WAIT
    assert WAITED <= started[0] <= WAITED + LONGEST_GAP


def test_a_refusing_node_waits_for_rank0_with_a_backoff_and_records_within_5_s(
    tmp_path: Path, clock: Clock, reads
) -> None:
    launcher = _launcher(tmp_path, rank=1)
    _write_later(clock, launcher, WAITED, launcher.paths.scheduler_file, {"address": "tcp://10.0.0.1:8786"})
    record = launcher.paths.exit_record("n1", "node")
    clock.at(WAITED + LONGEST_GAP + 0.01, lambda: pytest.fail("no refusal recorded within 5 s"))
    node_refusal.report_refusal(
        launcher.identity,
        ConfigError("--rmm-pool-size on CPU"),
        str(tmp_path),
        wait=600.0,
        poll_interval=POLL,
    )
    assert launcher.incarnation.read(record)["reason"] == "--rmm-pool-size on CPU"
    assert [path for at, path in reads if at < WAITED] == ["42/shutdown", "42/scheduler.json"] * LOOKS_IN_WAIT


def test_the_gaps_double_up_to_the_longest_and_start_over_after_a_change(clock: Clock) -> None:
    from hpc_classify.cluster.file_looks import LONGEST_GAP as documented
    from hpc_classify.cluster.file_looks import Backoff

    assert documented == LONGEST_GAP
    looks = Backoff(POLL)
    gaps = []
    for _ in range(7):
        before = clock.now
        looks.sleep()
        gaps.append(clock.now - before)
    assert gaps == [0.25, 0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    looks.reset()
    due = []
    for _ in range(8):  # a wait asking its scheduler every 0.25 s
        due.append(looks.due())
        clock.sleep(POLL)
    assert due == [True, True, False, True, False, False, False, True]  # t = 0, .25, .75, 1.75
    assert Backoff(POLL, longest=0.0).longest == POLL  # rank 0's wait for its own scheduler: no backoff
