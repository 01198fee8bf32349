"""Slurm commands on the stop path within the time Slurm leaves (cluster/slurm_job.py), against a fake `scontrol`
and `scancel` first on PATH: they record their calls, and hang, fail or requeue as a test tells them. A busy
slurmctld must not keep rank 0 past KillWait, and a requeue whose answer never came must not be followed by a
cancel that would end the requeued job."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import pytest

from hpc_classify.cluster import slurm_job
from hpc_classify.cluster.slurm_job import (
    RANK0_LOST,
    STOP_PATH_MAX_S,
    STOP_PATH_MIN_S,
    SlurmPatience,
    end_job_for_restart,
    job_preempted,
    stop_path_patience,
)
from hpc_classify.cluster.stop_report import requeue_verdict

# How long a hanging fake command sleeps: a call that hangs on one returns in under HANG_S / 2 only if its
# deadline (a few seconds below) cut it, however busy the machine.
HANG_S = 60
# Commands that answer must answer in time on a loaded machine too (a bash fake forks several times).
QUICK = SlurmPatience(timeout=5.0)

SCONTROL = r"""#!/bin/bash
echo "scontrol $*" >> "$FAKE/calls"
if [[ "$1" == show ]]; then
    [[ -e "$FAKE/show-hangs" ]] && sleep {hang}
    echo "JobId=42 JobName=x JobState=$(cat "$FAKE/state") Requeue=1 Restarts=$(cat "$FAKE/restarts") PreemptTime=None"
    exit 0
fi
if [[ "$1" == requeue ]]; then
    case "$(cat "$FAKE/requeue")" in
    ok) echo $(($(cat "$FAKE/restarts") + 1)) > "$FAKE/restarts"; echo PENDING > "$FAKE/state"; exit 0 ;;
    refuse) echo "Requested operation is presently disabled for job 42" >&2; exit 1 ;;
    done-then-hang)  # slurmctld requeued the job, but its answer does not come back in time
        echo $(($(cat "$FAKE/restarts") + 1)) > "$FAKE/restarts"; echo PENDING > "$FAKE/state"
        sleep {hang}; echo "Socket timed out on send/recv operation" >&2; exit 1 ;;
    done-then-socket-timeout)  # scontrol's own MessageTimeout, after slurmctld acted on it
        echo $(($(cat "$FAKE/restarts") + 1)) > "$FAKE/restarts"; echo PENDING > "$FAKE/state"
        echo "Socket timed out on send/recv operation" >&2; exit 1 ;;
    hang) sleep {hang}; exit 1 ;;
    esac
fi
""".replace("{hang}", str(HANG_S))
SCANCEL = '#!/bin/bash\necho "scancel $*" >> "$FAKE/calls"\n'


class FakeSlurm:
    def __init__(self, root: Path):
        self.root = root
        self.set(state="RUNNING", restarts="0", requeue="ok")

    def set(self, **files: str) -> None:
        for name, text in files.items():
            (self.root / name).write_text(f"{text}\n")

    def show_hangs(self, hangs: bool = True) -> None:
        (self.root / "show-hangs").unlink(missing_ok=True)
        if hangs:
            (self.root / "show-hangs").touch()

    def calls(self) -> list[str]:
        path = self.root / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def restarts(self) -> int:
        return int((self.root / "restarts").read_text())


@pytest.fixture
def fake_slurm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSlurm:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in {"scontrol": SCONTROL, "scancel": SCANCEL}.items():
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE", str(tmp_path))
    return FakeSlurm(tmp_path)


def _cut_short(call):
    """`call()`'s result, failing the test if it waited for a hanging fake command to end (run in a thread, so
    that such a call fails the test in time instead of holding it)."""
    result: list = []
    thread = threading.Thread(target=lambda: result.append(call()), daemon=True)
    thread.start()
    thread.join(HANG_S / 2)
    assert not thread.is_alive(), f"still waiting for Slurm after {HANG_S / 2:g} s: a hang was not cut"
    return result[0]


def _deadlines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The deadlines that timed-out `scontrol show` calls were given, as their warnings say."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == slurm_job.__name__ and r.getMessage().startswith("scontrol show job")
    ]


def test_the_stop_path_gets_a_few_seconds_never_past_kill_wait() -> None:
    assert stop_path_patience().timeout == STOP_PATH_MAX_S <= 5
    assert stop_path_patience(time_left=27).timeout == STOP_PATH_MAX_S
    assert stop_path_patience(time_left=2).timeout == 2.0  # never past the stop's deadline
    assert stop_path_patience(time_left=0).timeout == STOP_PATH_MIN_S
    for since in (None, 0, 25, 40):
        assert stop_path_patience(since).tries == 1  # no retry, no pause
    assert RANK0_LOST.timeout > STOP_PATH_MAX_S and RANK0_LOST.tries > 1  # the other nodes have time


def test_the_preemption_verdict_comes_within_its_deadline_when_scontrol_hangs(
    fake_slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=slurm_job.__name__)
    fake_slurm.show_hangs()
    monkeypatch.setattr(slurm_job, "STOP_PATH_MAX_S", 1.5)  # a quicker test; the rule is the same
    assert _cut_short(lambda: job_preempted("42")) is None  # Slurm did not say
    # 26 s after the SIGTERM: KillWait leaves 4 s, less the margin (StopDeadline.left), so one second.
    requeue, why = _cut_short(lambda: requeue_verdict("SIGTERM", "42", time_left=1.0))
    assert not requeue and "Slurm did not say whether it is preempting the job" in why
    assert fake_slurm.calls() == ["scontrol show job -o 42"] * 2  # one try each
    assert _deadlines(caplog) == [
        "scontrol show job 42 (try 1, within 1.5 s): timed out",
        f"scontrol show job 42 (try 1, within {STOP_PATH_MIN_S:g} s): timed out",
    ]


def test_a_requeue_that_timed_out_but_happened_is_not_followed_by_a_cancel(fake_slurm: FakeSlurm) -> None:
    fake_slurm.set(requeue="done-then-hang")
    done = _cut_short(lambda: end_job_for_restart("42", True, 0, QUICK))
    assert fake_slurm.restarts() == 1
    assert not [call for call in fake_slurm.calls() if call.startswith("scancel")], done
    assert done.startswith(
        "requeued job 42 (scontrol requeue got no answer within 5 s, but Slurm shows restart 1"
    )


def test_a_requeue_whose_message_timed_out_in_scontrol_but_happened_is_not_followed_by_a_cancel(
    fake_slurm: FakeSlurm,
) -> None:
    fake_slurm.set(requeue="done-then-socket-timeout")
    done = end_job_for_restart("42", True, 0, QUICK)
    assert fake_slurm.calls() == ["scontrol show job -o 42", "scontrol requeue 42", "scontrol show job -o 42"]
    assert done.startswith("requeued job 42 (scontrol requeue got no answer from Slurm (Socket timed out")


def test_a_requeue_without_answer_and_without_news_of_the_job_cancels_nothing(
    fake_slurm: FakeSlurm, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_slurm.set(requeue="hang")
    show = slurm_job.show_job

    def show_then_hang(job_id: str, patience: SlurmPatience) -> str | None:
        shown = show(job_id, patience)
        fake_slurm.show_hangs()  # slurmctld is busy from here on
        return shown

    monkeypatch.setattr(slurm_job, "show_job", show_then_hang)
    done = _cut_short(lambda: end_job_for_restart("42", True, 0, QUICK))
    assert not [call for call in fake_slurm.calls() if call.startswith("scancel")], done
    assert "outcome unknown, not cancelled" in done and "squeue -j 42" in done


def test_a_requeue_without_answer_that_did_not_happen_is_cancelled_saying_so(fake_slurm: FakeSlurm) -> None:
    fake_slurm.set(requeue="hang")
    done = _cut_short(lambda: end_job_for_restart("42", True, 0, QUICK))
    assert fake_slurm.calls()[-1] == "scancel 42"
    assert done == (
        "cancelled job 42 (no answer within 5 s, and Slurm shows it still running as restart 0: not requeued); "
        "submit the same command again to resume"
    )


def test_a_requeue_refused_at_once_is_followed_by_a_cancel_as_before(fake_slurm: FakeSlurm) -> None:
    fake_slurm.set(requeue="refuse")
    done = end_job_for_restart("42", None, 0, QUICK)
    assert fake_slurm.calls() == ["scontrol show job -o 42", "scontrol requeue 42", "scancel 42"]
    assert done == (
        "cancelled job 42 (the requeue was refused: Requested operation is presently disabled for job 42); "
        "submit the same command again to resume"
    )
