"""A SIGTERM's stop path fits in Slurm's KillWait (stop_request.StopDeadline, cluster/kill_wait.py): Slurm sends
SIGKILL KillWait (30 s by default) after the SIGTERM, and the steps of the stop took up to 37 s: the files' grace
(--stop-grace, 20 s), the driver's close (5 s), the preemption question (5 s), the cluster's end (5 s) and the
node's processes' kill (2 s). Now one deadline is taken at the signal, and each step takes what it leaves.
The real driver's loop, stop report and node end, on a clock of the test's own: no sleeps, no timed assertions."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from hpc_classify.cli import node
from hpc_classify.cluster import stop_report
from hpc_classify.cluster.connect import STOP_CLOSE_TIMEOUT
from hpc_classify.cluster.kill_wait import DEFAULT_KILL_WAIT_S, kill_wait_here, read_kill_wait
from hpc_classify.cluster.node_end import end_node
from hpc_classify.cluster.stop_report import STOP_REPORT_VARIABLE
from hpc_classify.config import RunConfig
from hpc_classify.driver.dispatch import Dispatcher
from hpc_classify.driver.failures import FailureLog
from hpc_classify.driver.grouping import FileQueue
from hpc_classify.driver.progress import Progress
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.summary import RunStats
from hpc_classify.stop_request import KILL_WAIT_MARGIN_S, StopRequest

DEFAULT_STOP_GRACE = RunConfig.__dataclass_fields__["stop_grace"].default


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Future:
    key = "classify-a.jsonl-1-1-x"

    def done(self) -> bool:  # a piece that takes minutes: it never finishes within the grace
        return False


def _grace(tmp_path: Path, stop: StopRequest, clock: Clock, stop_grace: float) -> None:
    """The driver's loop with one task in flight, a second a look on `clock`, until it abandons the task."""
    cancelled: list[float] = []
    config = RunConfig(
        inputs=(str(tmp_path),), output=str(tmp_path), classifiers=("stored only",), stop_grace=stop_grace
    )
    client = SimpleNamespace(cancel=lambda futures: cancelled.append(clock.now))
    failures = FailureLog(str(tmp_path))
    context = RunContext(
        config=config,
        output_dir=str(tmp_path),
        fingerprint="f",
        stats=RunStats(),
        failures=failures,
        stop=stop,
    )
    dispatcher = Dispatcher(client, context, progress=Progress(0, interval=60))
    dispatcher.watch.check = lambda: None
    dispatcher.in_flight = {_Future(): [SimpleNamespace(relpath="a.jsonl", path="a.jsonl")]}

    def wait(futures: list, timeout: float, return_when: str) -> None:
        clock.now += timeout

    dispatcher._loop(FileQueue([]), wait)
    assert cancelled == [clock.now] and dispatcher.unfinished


def _stop_path(tmp_path: Path, monkeypatch, kill_wait: float | None, stop_grace: float) -> tuple[float, dict]:
    """A SIGTERM on rank 0 whose every step takes all it is given: (seconds from the SIGTERM to the end of the
    last step, each step's seconds)."""
    clock = Clock()
    stop = StopRequest((), kill_wait=kill_wait)
    stop.clock = clock
    stop.request("SIGTERM")
    term_at = clock.now
    steps: dict[str, float] = {}

    def take(step: str, seconds: float) -> None:
        steps[step] = seconds
        clock.now += seconds

    _grace(tmp_path, stop, clock, stop_grace)
    steps["grace"] = clock.now - term_at
    take("driver close", stop.within(STOP_CLOSE_TIMEOUT))  # driver/run.py's close_quietly
    # The stop report: is Slurm preempting the job? Asked within what is left.
    monkeypatch.setenv(STOP_REPORT_VARIABLE, str(tmp_path / "report"))
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setattr(
        stop_report, "job_preempted", lambda job, patience: take("question", patience.timeout)
    )
    node._report_stop(3, stop)
    launcher = SimpleNamespace(
        identity=SimpleNamespace(rank=0),
        end_cluster=lambda timeout: take("cluster end", timeout),
        heartbeat=None,
        job_dir=tmp_path / "no job dir",
        processes=SimpleNamespace(stop=lambda grace, kill_after: take("kill after", grace + kill_after)),
    )
    end_node(launcher, False, stopping=True, within=stop.within)
    return clock.now - term_at, steps


def test_with_the_default_kill_wait_and_flags_every_step_after_a_sigterm_ends_before_the_sigkill(
    tmp_path: Path, monkeypatch
) -> None:
    took, steps = _stop_path(tmp_path, monkeypatch, DEFAULT_KILL_WAIT_S, DEFAULT_STOP_GRACE)
    assert steps["grace"] == DEFAULT_STOP_GRACE == 20  # the default grace fits whole
    assert sum(steps.values()) == took <= DEFAULT_KILL_WAIT_S - KILL_WAIT_MARGIN_S
    # The steps after it share what is left, in order: the driver's close and the question come first.
    assert steps == {"grace": 20, "driver close": 5, "question": 2, "cluster end": 0, "kill after": 0}


def test_outside_a_slurm_job_no_deadline_cuts_the_steps(tmp_path: Path, monkeypatch) -> None:
    took, steps = _stop_path(tmp_path, monkeypatch, None, 60)
    assert steps == {"grace": 60, "driver close": 5, "question": 5, "cluster end": 5, "kill after": 2}


def test_a_grace_larger_than_kill_wait_leaves_is_warned_at_the_start_and_cut(
    tmp_path: Path, monkeypatch, caplog: pytest.LogCaptureFixture
) -> None:
    stop = StopRequest((), kill_wait=30)
    with caplog.at_level(logging.WARNING):
        stop.warn_if_grace_cut(20)
        assert caplog.messages == []  # the default fits
        stop.warn_if_grace_cut(25)
    assert caplog.messages == [
        "--stop-grace 25 s does not fit in Slurm's KillWait of 30 s (SIGKILL follows a SIGTERM that much later; "
        "7 s of it are kept for the cluster's end and the stop report, 3 s for the batch script): after a "
        "SIGTERM or SIGINT the files in flight get 20 s"
    ]
    took, steps = _stop_path(tmp_path, monkeypatch, 30, 25)
    assert steps["grace"] == 20 and took <= 30 - KILL_WAIT_MARGIN_S


def test_a_short_kill_wait_cuts_the_grace_first(tmp_path: Path, monkeypatch) -> None:
    took, steps = _stop_path(tmp_path, monkeypatch, 15, DEFAULT_STOP_GRACE)
    assert steps == {"grace": 5, "driver close": 5, "question": 2, "cluster end": 0, "kill after": 0}
    assert took == 15 - KILL_WAIT_MARGIN_S


def test_a_warning_starts_no_deadline_and_a_term_after_it_does() -> None:
    clock = Clock()
    stop = StopRequest((), kill_wait=30)
    stop.clock = clock
    stop.request("SIGUSR1")  # the time-limit warning keeps its own grace and margin (warning_grace.py)
    clock.now += 200
    assert stop.deadline is None and stop.within(STOP_CLOSE_TIMEOUT) == STOP_CLOSE_TIMEOUT
    assert not stop.grace_over(20, 240)
    stop.request("SIGTERM")  # the time limit itself: KillWait runs from here
    clock.now += 19
    assert stop.deadline is not None and stop.deadline.left() == 30 - KILL_WAIT_MARGIN_S - 19
    assert not stop.grace_over(20, 240)
    clock.now += 1
    assert stop.grace_over(20, 240)  # 7 s left: kept for the steps after the grace
    assert stop.within(STOP_CLOSE_TIMEOUT) == STOP_CLOSE_TIMEOUT


def test_kill_wait_is_read_from_slurm_conf_and_is_slurms_default_when_unknown(
    tmp_path: Path, monkeypatch
) -> None:
    conf = tmp_path / "slurm.conf"
    conf.write_text(
        "ClusterName=c1\n# KillWait=5\nSlurmctldPort=6817 killwait=45  # site's own\nMinJobAge=10\n"
    )
    assert read_kill_wait(conf) == 45
    conf.write_text("ClusterName=c1\nKillWait = 12\n")
    assert read_kill_wait(conf) == 12  # blanks around "=", as Slurm's parser takes them
    conf.write_text('ClusterName=c1 KillWait="14" MinJobAge = 10\n')
    assert read_kill_wait(conf) == 14  # a quoted value
    conf.write_text("ClusterName=c1\n")
    assert read_kill_wait(conf) == DEFAULT_KILL_WAIT_S == 30  # not set: Slurm's default
    assert read_kill_wait(tmp_path / "missing.conf") is None
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    monkeypatch.setenv("SLURM_CONF", str(conf))
    assert kill_wait_here() is None  # outside a job no SIGKILL follows a stop
    monkeypatch.setenv("SLURM_JOB_ID", "42")
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "missing.conf"))
    assert kill_wait_here() == 30  # unknown: the default
    conf.write_text("KillWait=60\n")
    monkeypatch.setenv("SLURM_CONF", str(conf))
    assert kill_wait_here() == 60
