"""A reused Slurm job id: files that another run left in the job directory are never taken as this run's
(cluster/job_incarnation.py), as plain functions on a temporary directory: no cluster, no Slurm."""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hpc_classify.cluster.job_incarnation import KEEP_REPLACED, STAMP, Incarnation
from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_files import read_json, write_json
from hpc_classify.cluster.node_processes import NodeProcesses
from hpc_classify.cluster.rank0_heartbeat import HeartbeatWatch
from hpc_classify.cluster.slurm_env import JOB_TOKEN_EXPORT, NodeIdentity, incarnation_token
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions
from hpc_classify.errors import ClusterError

REPO = Path(__file__).resolve().parents[2]
OURS, THEIRS = "c1:42.0:1714557010:step 0", "c2:42.0:1714550000:step 0"
NODES = ("node1", "node2")
INTERRUPTED, STOPPED_BEFORE_PROGRESS = 3, 5


def _launcher(root: Path, rank: int, job: str = "42", **options) -> NodeLauncher:
    identity = NodeIdentity(rank, 2, NODES[rank], NODES, job, 0, OURS)
    return NodeLauncher(NodeOptions(job_root=str(root), device="cpu", **options), identity)


def _left_by_another_run(paths: JobPaths) -> None:
    """What an earlier job with the same id left: every shared file, stamped with its token."""
    theirs = Incarnation(THEIRS)
    for node in NODES:
        paths.node_dir(node).mkdir(parents=True, exist_ok=True)
        theirs.write(paths.node_workers(node), {"workers": 4})
        theirs.write(paths.exit_record(node, "worker"), {"node": node, "returncode": 1})
    theirs.write(paths.incarnation_file, {"node": "node1"})
    theirs.write(paths.scheduler_file, {"address": "tcp://10.9.9.9:8786"})
    theirs.write(paths.shutdown, {"node": "node1", "clean": True})
    theirs.write(paths.heartbeat, {"node": "node1", "beat": 7, "time": 0.0})


def test_every_task_of_a_run_derives_the_same_token_and_other_runs_another(monkeypatch) -> None:
    for name in ("SLURM_JOB_START_TIME", "HPC_CLASSIFY_JOB_TOKEN", "SLURM_CLUSTER_NAME", "SLURM_STEP_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HPC_CLASSIFY_JOB_TOKEN", "1714557010.123-991")
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "c1")
    monkeypatch.setenv("SLURM_STEP_ID", "0")
    token = incarnation_token("42", 0)
    assert token == "c1:42.0:1714557010.123-991:step 0"
    assert incarnation_token("42", 1) != token  # a requeue
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "c2")
    assert incarnation_token("42", 0) != token  # another cluster on the same file system
    monkeypatch.setenv("SLURM_JOB_START_TIME", "1714557000")  # Slurm >= 23.02: its own start time first
    assert incarnation_token("42", 0) == "c2:42.0:1714557000:step 0"


def _no_start(monkeypatch, step: str) -> None:
    """A step of `salloc`, or of a batch script of one's own without the token's export, on Slurm < 23.02."""
    for name in ("SLURM_JOB_START_TIME", "HPC_CLASSIFY_JOB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SLURM_CLUSTER_NAME", "c1")
    monkeypatch.setenv("SLURM_STEP_ID", step)


def test_without_a_start_the_steps_of_one_allocation_still_have_tokens_of_their_own(monkeypatch) -> None:
    _no_start(monkeypatch, "0")
    first = incarnation_token("42", 0)
    assert first == "c1:42.0:no start:step 0" and incarnation_token("42", 0) == first  # every task alike
    _no_start(monkeypatch, "1")
    assert incarnation_token("42", 0) not in (None, first)


def test_the_second_step_of_an_allocation_does_not_take_the_first_steps_shutdown(
    tmp_path: Path, monkeypatch
) -> None:
    """`srun ... hpc-classify node` twice in one allocation, no start time: both steps use OUT/_jobs/42/. The
    second step's other rank must wait for its own rank 0's scheduler file, not leave at the first's
    `shutdown` (its rank 0 would then wait for its workers until --worker-timeout, and fail)."""
    _no_start(monkeypatch, "0")
    first = Incarnation(incarnation_token("42", 0))
    paths = JobPaths.for_job(tmp_path, "42")
    first.take_job_dir(paths, "node1")
    first.write(paths.scheduler_file, {"address": "tcp://10.9.9.9:8786"})
    first.write(paths.shutdown, {"node": "node1", "clean": True})

    _no_start(monkeypatch, "1")
    identity = NodeIdentity(1, 2, "node2", NODES, "42", 0, incarnation_token("42", 0))
    options = NodeOptions(job_root=str(tmp_path), device="cpu", worker_timeout=0.3, poll_interval=0.05)
    launcher = NodeLauncher(options, identity)
    monkeypatch.setattr(
        launcher, "start_workers", lambda: pytest.fail("workers for the first step's scheduler")
    )
    with pytest.raises(
        ClusterError, match="for the scheduler file .* in vain"
    ):  # its own rank 0 never started here
        launcher.run_other_rank()
    launcher.incarnation.take_job_dir(paths, "node1")  # the second step's rank 0 sets the first's aside
    assert sorted(p.name for p in paths.job_dir.iterdir()) == ["incarnation.json"]
    assert len(list(tmp_path.glob("42.replaced-*"))) == 1


def test_the_batch_script_exports_the_token_before_srun() -> None:
    lines = (REPO / "slurm" / "classify.sbatch").read_text().splitlines()
    srun = next(i for i, line in enumerate(lines) if line.lstrip().startswith("srun "))
    assert JOB_TOKEN_EXPORT in lines[:srun]  # the same line that submit.py hands to submitit


def test_another_runs_files_are_read_as_missing_and_this_runs_as_written(tmp_path: Path) -> None:
    ours, unchecked = Incarnation(OURS), Incarnation(None)
    Incarnation(THEIRS).write(tmp_path / "theirs.json", {"clean": True})
    write_json(tmp_path / "unstamped.json", {"clean": True})  # a launcher from before tokens
    ours.write(tmp_path / "ours.json", {"clean": True})
    assert ours.read(tmp_path / "theirs.json") is None and ours.read(tmp_path / "unstamped.json") is None
    assert ours.read(tmp_path / "ours.json") == {"clean": True, STAMP: OURS}
    assert unchecked.read(tmp_path / "theirs.json") is not None  # no token: as before, anything goes


def test_other_ranks_wait_for_this_runs_scheduler_file_not_another_runs(tmp_path: Path, monkeypatch) -> None:
    launcher = _launcher(tmp_path, rank=1, worker_timeout=0.3, poll_interval=0.05)
    _left_by_another_run(launcher.paths)

    def start_workers() -> None:
        raise AssertionError("workers started against another run's scheduler")

    monkeypatch.setattr(launcher, "start_workers", start_workers)
    with pytest.raises(ClusterError, match="for the scheduler file .* in vain"):
        launcher.run_other_rank()


def test_another_runs_shutdown_does_not_stop_this_runs_workers(tmp_path: Path, monkeypatch) -> None:
    """Only this run's rank 0 ends the wait: here it never beats, so the node finds it lost (exit 5: before any
    progress, so the job is not requeued)."""
    launcher = _launcher(tmp_path, rank=1, job="local-42", death_timeout=0.5, shutdown_poll_interval=0.05)
    paths = launcher.paths
    _left_by_another_run(paths)
    launcher.incarnation.write(paths.scheduler_file, {"address": "tcp://127.0.0.1:1"})
    worker = [sys.executable, "-c", "import signal; signal.pause()"]  # a worker that runs until stopped
    monkeypatch.setattr(launcher, "start_workers", lambda: launcher.processes.spawn("worker", worker, {}))
    try:
        assert launcher.run_other_rank() == STOPPED_BEFORE_PROGRESS
    finally:
        launcher.processes.stop(grace=0.0)
    record = read_json(paths.exit_record("node2", "node"))
    assert record[STAMP] == OURS and "are gone" in record["reason"]


def test_rank0_ignores_another_runs_worker_exit_and_worker_counts(tmp_path: Path) -> None:
    launcher = _launcher(tmp_path, rank=0, worker_timeout=30.0, poll_interval=0.01)
    _left_by_another_run(launcher.paths)
    for node in NODES:
        launcher.incarnation.write(launcher.paths.node_workers(node), {"workers": 1})

    class Client:
        calls = 0

        def scheduler_info(self, n_workers: int = -1) -> dict:
            Client.calls += 1  # node2's worker joins at the second look
            names = ["node1-0", "node2-0"] if Client.calls > 1 else ["node1-0"]
            return {"workers": {f"tcp://w{i}": {"name": n} for i, n in enumerate(names)}}

    launcher.wait_for_workers(Client(), stop=_NoStop())
    assert launcher.roster.expected_workers() == {"node1": 1, "node2": 1}


class _NoStop:
    requested = False


def test_rank0_sets_aside_a_directory_that_another_run_left(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    paths = JobPaths.for_job(tmp_path, "42")
    _left_by_another_run(paths)
    Incarnation(OURS).take_job_dir(paths, "node1")
    assert sorted(p.name for p in paths.job_dir.iterdir()) == ["incarnation.json"]
    (aside,) = tmp_path.glob("42.replaced-*")
    assert Incarnation(THEIRS).read(aside / "scheduler.json") is not None
    assert f"belonged to another run of this job id ({THEIRS}): moved to {aside}" in caplog.text
    Incarnation(OURS).write(paths.scheduler_file, {"address": "tcp://a:1"})
    caplog.clear()
    Incarnation(OURS).take_job_dir(paths, "node1")  # a directory with its own token stays, with a warning
    assert paths.scheduler_file.exists() and len(list(tmp_path.glob("42.replaced-*"))) == 1
    assert f"holds files with this run's token ({OURS}) already, taken as this run's" in caplog.text


def test_only_the_newest_directories_set_aside_stay(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO)
    # Earlier runs' directories set aside, of several reused job ids; their stamps order them (not mtimes).
    stamps = [f"2026010{day}T120000-{pid}" for day in range(1, 8) for pid in (7, 31)][: KEEP_REPLACED + 2]
    for index, stamp in enumerate(stamps):
        (tmp_path / f"{index % 3}.replaced-{stamp}" / "node1").mkdir(parents=True)
    (tmp_path / "7").mkdir()  # a job's own directory, and a file that only looks like one set aside
    (tmp_path / "8.replaced-notes.txt").write_text("x")
    paths = JobPaths.for_job(tmp_path, "42")
    _left_by_another_run(paths)
    Incarnation(OURS).take_job_dir(paths, "node1")
    (newest,) = tmp_path.glob("42.replaced-*")
    kept = sorted(p.name for p in tmp_path.glob("*.replaced-*") if p.is_dir())
    oldest = [f"{index % 3}.replaced-{stamp}" for index, stamp in enumerate(stamps)][:3]
    assert len(kept) == KEEP_REPLACED and newest.name in kept and not set(oldest) & set(kept)
    assert (
        (tmp_path / "7").is_dir() and (tmp_path / "8.replaced-notes.txt").exists() and paths.job_dir.is_dir()
    )
    for name in oldest:
        assert f"removed {tmp_path / name}, set aside by an earlier run (the newest 5 stay)" in caplog.text


def test_without_a_token_the_directory_is_used_as_before_with_a_warning(tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.WARNING)
    paths = JobPaths.for_job(tmp_path, "42")
    _left_by_another_run(paths)
    Incarnation(None).take_job_dir(paths, "node1")
    assert paths.scheduler_file.exists() and list(tmp_path.glob("42.replaced-*")) == []
    assert "export HPC_CLASSIFY_JOB_TOKEN before srun" in caplog.text


def test_a_heartbeat_of_another_run_is_no_heartbeat(tmp_path: Path) -> None:
    path = tmp_path / "heartbeat.json"
    Incarnation(THEIRS).write(path, {"node": "node9", "beat": 3, "time": 0.0})
    watch = HeartbeatWatch(path, timeout=60.0, incarnation=Incarnation(OURS))
    watch.seconds_silent()
    assert watch.node() is None and watch.last_beat() == "no heartbeat was ever read"
    Incarnation(OURS).write(path, {"node": "node1", "beat": 1, "time": 0.0})
    watch.seconds_silent()
    assert watch.node() == "node1"


def test_a_failed_worker_replaces_another_runs_exit_record(tmp_path: Path) -> None:
    paths = JobPaths.for_job(tmp_path, "42")
    paths.node_dir("node2").mkdir(parents=True)
    Incarnation(THEIRS).write(paths.exit_record("node2", "worker"), {"node": "node2", "returncode": 1})
    processes = NodeProcesses(paths, "node2", Incarnation(OURS))
    processes.spawn("worker", [sys.executable, "-c", "raise SystemExit(5)"], {}, record_exit=True)
    processes.running["worker"].wait(timeout=60)
    processes.record_exit("worker")
    assert read_json(paths.exit_record("node2", "worker")) == {"node": "node2", "returncode": 5, STAMP: OURS}


def test_the_sbatch_token_line_is_valid_shell() -> None:
    done = subprocess.run(
        ["bash", "-c", f"{JOB_TOKEN_EXPORT}; echo $HPC_CLASSIFY_JOB_TOKEN"], capture_output=True
    )
    assert done.returncode == 0 and done.stdout.strip()


def test_after_rank0s_shutdown_a_node_exits_0_even_if_its_worker_had_died(
    tmp_path: Path, monkeypatch
) -> None:
    """srun reports the highest code of its tasks: a node's own worker failure (SIGKILL: 137 or 247) must not
    hide rank 0's code, whose 3 makes the batch script requeue the job."""
    launcher = _launcher(tmp_path, rank=1, shutdown_poll_interval=0.05)
    paths = launcher.paths
    paths.node_dir("node2").mkdir(parents=True)
    launcher.incarnation.write(paths.scheduler_file, {"address": "tcp://127.0.0.1:1"})
    worker = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]

    def start_workers() -> None:  # rank 0 ends its run once this node's worker has started (and died)
        launcher.processes.spawn("worker", worker, {})
        launcher.incarnation.write(paths.shutdown, {"node": "node1", "clean": True})

    monkeypatch.setattr(launcher, "start_workers", start_workers)
    launcher.incarnation.write(paths.heartbeat, {"node": "node1", "beat": 1, "time": 0.0})
    usr1 = signal.getsignal(signal.SIGUSR1)
    try:
        assert launcher.run_other_rank() == 0
    finally:
        launcher.processes.stop(grace=0.0)
    assert launcher.processes.running["worker"].returncode == -signal.SIGKILL  # it did start, and die
    assert signal.getsignal(signal.SIGUSR1) == usr1  # the warning signals' handlers are put back


def test_a_node_leaves_at_once_when_rank0_ended_before_publishing_a_scheduler(
    tmp_path: Path, monkeypatch
) -> None:
    """Rank 0 failed to start its scheduler: its shutdown file comes instead of a scheduler file. The other
    nodes leave with 0 (rank 0's code is the job's) instead of waiting for --worker-timeout."""
    launcher = _launcher(tmp_path, rank=1, worker_timeout=600.0, poll_interval=0.01)
    launcher.paths.job_dir.mkdir(parents=True)
    launcher.incarnation.write(launcher.paths.shutdown, {"node": "node1", "clean": False})
    monkeypatch.setattr(launcher, "start_workers", lambda: pytest.fail("no workers without a scheduler"))
    assert launcher.run_other_rank() == 0
