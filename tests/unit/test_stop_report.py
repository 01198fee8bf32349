"""Rank 0's word to slurm/classify.sbatch on a resumable stop (cluster/stop_report.py): `scancel -s TERM <job>`
(or INT) signals the job's steps, not the batch script, and the driver drains and exits 3 as it does after the
time-limit warning; the script used to requeue the job the user had just stopped. No Slurm: `scontrol` is a
stub (tests/unit/test_sbatch_script.py runs the script against what rank 0 writes)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hpc_classify.cluster import slurm_job
from hpc_classify.cluster.stop_report import STOP_REPORT_VARIABLE, report_stop, requeue_verdict

INTERRUPTED = 3


def _never_asked(job_id: str) -> bool:
    raise AssertionError(f"Slurm was asked about job {job_id}")


@pytest.mark.parametrize("stop", ["SIGUSR1", "SIGUSR2", None])
def test_the_warning_and_a_stop_without_signal_are_requeued(stop: str | None) -> None:
    # None: no worker left for --worker-wait (nodes lost); the job restarts on the nodes Slurm gives it.
    requeue, why = requeue_verdict(stop, "42", _never_asked)
    assert requeue, why
    assert ("warning" if stop else "--worker-wait") in why


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_users_term_or_int_is_not_requeued(stop: str) -> None:
    requeue, why = requeue_verdict(stop, "42", lambda job: False)
    assert not requeue
    assert f"{stop} stopped the run (scancel -s {stop[3:]})" in why
    assert "submit the same command again to resume" in why


def test_the_sigterm_of_a_preemption_with_grace_time_is_requeued() -> None:
    """Slurm tells the tasks of a job it preempts with SIGTERM (the batch script only at the grace time's end)."""
    asked = []
    requeue, why = requeue_verdict("SIGTERM", "42", lambda job: asked.append(job) or True)
    assert requeue and asked == ["42"] and "preempting job 42" in why
    # Slurm never sends SIGINT for a preemption: not asked.
    assert requeue_verdict("SIGINT", "42", _never_asked)[0] is False


def test_a_sigterm_when_slurm_does_not_answer_is_taken_as_the_users_stop() -> None:
    requeue, why = requeue_verdict("SIGTERM", "42", lambda job: None)
    assert not requeue and "Slurm did not say whether it is preempting the job" in why


def _scontrol(tmp_path: Path, monkeypatch, shown: str) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    stub = bin_dir / "scontrol"
    stub.write_text(f"#!/bin/bash\necho '{shown}'\n")
    stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")


@pytest.mark.parametrize(("preempt_time", "preempted"), [("None", False), ("2026-12-05T10:00:00", True)])
def test_slurm_says_a_preemption_by_the_jobs_preempt_time(
    tmp_path: Path, monkeypatch, preempt_time: str, preempted: bool
) -> None:
    shown = f"JobId=42 JobName=x JobState=RUNNING PreemptEligibleTime=2026-12-05T09:00:00 PreemptTime={preempt_time}"
    _scontrol(tmp_path, monkeypatch, shown)
    assert slurm_job.job_preempted("42") is preempted


def test_report_is_written_for_the_resumable_code_only_and_only_for_the_script(
    tmp_path: Path, monkeypatch
) -> None:
    report = tmp_path / "report"
    report_stop(INTERRUPTED, "SIGTERM", "42", preempted=lambda job: False)
    assert not report.exists()  # no HPC_CLASSIFY_STOP_REPORT: `hpc-classify node` from a script of one's own
    monkeypatch.setenv(STOP_REPORT_VARIABLE, str(report))
    report_stop(0, "SIGTERM", "42", preempted=_never_asked)
    assert not report.exists()  # the files in flight were the last: nothing to requeue anyway
    report_stop(INTERRUPTED, "SIGTERM", "42", preempted=lambda job: False)
    verdict, why = report.read_text().rstrip("\n").split(" ", 1)
    assert verdict == "stop" and why.startswith("SIGTERM stopped the run")
    report_stop(INTERRUPTED, "SIGUSR1", "42")
    assert report.read_text() == "requeue SIGUSR1: the time-limit or preemption warning\n"


def test_a_report_that_cannot_be_written_is_logged(tmp_path: Path, monkeypatch, caplog) -> None:
    monkeypatch.setenv(STOP_REPORT_VARIABLE, str(tmp_path / "missing" / "report"))
    report_stop(INTERRUPTED, "SIGINT", "42")
    assert "the batch script will requeue the job" in caplog.text
