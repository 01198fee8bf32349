"""Rank 0's stop report (cluster/stop_report.py) is on disk before rank 0 ends its cluster, and that end is cut
short after a stop signal: Slurm's KillWait (30 s by default) runs from a SIGTERM and --stop-grace took 20 s of
it, the time-limit warning leaves 60 s after its grace for the summary and the requeue. The end used to come
first, with no deadline on retiring the workers and up to twice --worker-timeout (600 s) on closing the client.

`hpc-classify node` runs for real on rank 0 (its signals, its driver's code, its report, its end), with stand-ins
for the scheduler process, the workers and the client: a client whose scheduler no longer answers (stopped, its
node swapping). No Slurm, no cluster."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path

import pytest

from hpc_classify.cli import node
from hpc_classify.cli.main import main
from hpc_classify.cluster import slurm_node, stop_report
from hpc_classify.cluster.connect import CLOSE_TIMEOUT, STOP_CLOSE_TIMEOUT
from hpc_classify.cluster.node_end import STOP_KILL_AFTER
from hpc_classify.cluster.node_processes import NodeProcesses
from hpc_classify.cluster.slurm_env import NodeIdentity
from hpc_classify.cluster.slurm_node import NodeLauncher
from hpc_classify.cluster.stop_report import STOP_REPORT_VARIABLE

INTERRUPTED = 3
SLEEPER = [sys.executable, "-c", "import signal; signal.pause()"]  # the scheduler: runs until stopped


class _SchedulerNoLongerAnswers:
    """A client whose scheduler no longer answers: each call blocks until the deadline it is given, where
    distributed cuts it (Client.sync's callback_timeout, close(timeout=)), and for ever without one (the test's
    timeout mark ends it then). Each call records what the stop report said when it began."""

    status = "running"

    def __init__(self, report: Path, events: list[tuple]):
        self.report = report
        self.events = events

    def _hang(self, what: str, timeout: float | None) -> None:
        self.events.append((what, self.report.read_text() if self.report.exists() else None, timeout))
        if timeout is None:
            threading.Event().wait()
        raise TimeoutError(f"timed out after {timeout} s.")

    def retire_workers(self, close_workers: bool = True, callback_timeout: float | None = None) -> None:
        self._hang("retire_workers", callback_timeout)

    def _shutdown(self) -> None:  # what Client.shutdown() runs (through sync, without a deadline)
        raise AssertionError("run only through sync")

    def sync(self, func, callback_timeout: float | None = None) -> None:
        self._hang(f"sync {func.__name__}", callback_timeout)

    def shutdown(self) -> None:
        self._hang("shutdown", None)

    def close(self, timeout: float | None = None) -> None:
        self._hang("close", timeout)


def _run_rank0(tmp_path: Path, monkeypatch, stop_signal: str | None, code: int) -> tuple[int, Path, list]:
    """`hpc-classify node` on rank 0 of job 42 (one node), whose driver gets `stop_signal` (None: none) and
    returns `code`; the events: the client's calls and the stop of the node's processes, in order."""
    report = tmp_path / "report"
    events: list[tuple] = []
    identity = NodeIdentity(0, 1, "node1", ("node1",), "42", 0, "c1:42.0:1714557010:step 0")
    for name, value in {STOP_REPORT_VARIABLE: str(report), "SLURM_PROCID": "0", "SLURM_JOB_ID": "42"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(slurm_node, "refuse_several_tasks_per_node", lambda: None)
    monkeypatch.setattr(NodeIdentity, "from_environment", classmethod(lambda cls: identity))

    def start_scheduler(self: NodeLauncher) -> None:
        self.processes.spawn("scheduler", SLEEPER, {})
        self.incarnation.write(self.scheduler_file, {"address": "tcp://127.0.0.1:1"})

    def start_workers(self: NodeLauncher) -> None:  # what the real one publishes; no process
        self.paths.node_dir("node1").mkdir(parents=True, exist_ok=True)
        self.incarnation.write(self.paths.node_workers("node1"), {"workers": 1})

    def run_driver(config, scheduler_file: str, stop) -> int:
        if stop_signal is not None:
            signal.raise_signal(getattr(signal, stop_signal))  # reaches the StopRequest rank 0 holds
        return code

    real_stop = NodeProcesses.stop

    def stop_processes(self: NodeProcesses, grace: float, kill_after: float = 5.0) -> None:
        events.append(("stop processes", grace, kill_after))
        real_stop(self, grace, kill_after)

    monkeypatch.setattr(NodeLauncher, "start_scheduler", start_scheduler)
    monkeypatch.setattr(NodeLauncher, "start_workers", start_workers)
    monkeypatch.setattr(NodeLauncher, "_connect", lambda self: _SchedulerNoLongerAnswers(report, events))
    monkeypatch.setattr(NodeLauncher, "wait_for_workers", lambda self, client, stop: None)
    monkeypatch.setattr(NodeProcesses, "stop", stop_processes)
    monkeypatch.setattr(node, "run_driver", run_driver)
    # Asked about a SIGTERM only: not preempting (a user's `scancel -s TERM`).
    monkeypatch.setattr(stop_report, "job_preempted", lambda job, patience: False)
    argv = ["node", "--", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--device", "cpu"]
    return main(argv), report, events


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("stop_signal", "verdict"),
    [
        (
            "SIGTERM",
            "stop SIGTERM stopped the run (scancel -s TERM): a deliberate stop, not requeued; submit ",
        ),
        ("SIGUSR1", "requeue SIGUSR1: the time-limit or preemption warning\n"),
    ],
)
def test_the_stop_report_is_written_before_a_hung_cluster_end_which_is_cut_short(
    tmp_path: Path, monkeypatch, stop_signal: str, verdict: str
) -> None:
    code, report, events = _run_rank0(tmp_path, monkeypatch, stop_signal, INTERRUPTED)
    assert code == INTERRUPTED
    assert report.read_text().startswith(verdict)
    calls = [event for event in events if event[0] != "stop processes"]
    # Each step of the end began with the report on disk, and each had a deadline within what the stop leaves.
    assert [what for what, _, _ in calls] == ["retire_workers", "sync _shutdown", "close"]
    assert all(said == report.read_text() for _, said, _ in calls)
    assert all(timeout is not None and 0 < timeout <= STOP_CLOSE_TIMEOUT for _, _, timeout in calls), calls
    # Then the scheduler and workers are stopped at once (the stop signal reached them too).
    assert events[len(calls) :] == [("stop processes", 0.0, STOP_KILL_AFTER)]


@pytest.mark.timeout(120)
def test_a_finished_run_writes_no_report_and_ends_its_cluster_within_the_close_timeout(
    tmp_path: Path, monkeypatch
) -> None:
    code, report, events = _run_rank0(tmp_path, monkeypatch, None, 0)
    assert code == 0 and not report.exists()
    calls = [event for event in events if event[0] != "stop processes"]
    assert [what for what, _, _ in calls] == ["retire_workers", "sync _shutdown", "close"]
    # No stop: the usual deadline, in all (the first step gets nearly all of it).
    assert STOP_CLOSE_TIMEOUT < calls[0][2] <= CLOSE_TIMEOUT
    assert all(timeout is not None and timeout <= CLOSE_TIMEOUT for _, _, timeout in calls)
    assert events[len(calls) :] == [("stop processes", 2.0, 5.0)]  # the retired children exit by themselves
