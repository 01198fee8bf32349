"""Slurm commands about this job (`scontrol show job`, `scontrol requeue`, `scancel`), each within a deadline.

One place decides how long each may take (`SlurmPatience`), for two kinds of caller:
- the stop path (`stop_path_patience`): rank 0 ending on a stop signal asks whether Slurm is preempting the job.
  A SIGTERM leaves KillWait (30 s by default) before SIGKILL and the driver used most of it (--stop-grace, 20 s):
  one try, no pause, a few seconds at most and never past what the stop's deadline leaves (stop_request.py), so
  that rank 0 still writes its report and the batch script still requeues the job. A command that does not answer in time answers None ("Slurm did
  not say"), as one that fails does.
- the other nodes after rank 0's loss (`RANK0_LOST`): the job runs on (--no-kill) until its time limit, and
  slurmctld may be busy with the very node failure that brought us here: longer, and tried again after a pause.

A requeue is never tried again nor followed blindly by a cancel: one that did not answer in time may have been
done. `end_job_for_restart` then reads the job's instance again and cancels only one that was not requeued.
A command runs in its own process group, killed whole at its deadline (a site's wrapper script around scontrol
would otherwise keep the pipes open, and us waiting, after its shell was killed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
import shutil
import signal
import subprocess
import time

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SlurmPatience:
    """How long one Slurm command may take (`timeout` s), and how often a read (`scontrol show job`) is tried,
    with `pause * try` s between tries. A requeue or a cancel is tried once whatever `tries` says."""

    timeout: float
    tries: int = 1
    pause: float = 0.0


# Rank 0 lost, seen from another node: the job runs on until its time limit.
RANK0_LOST = SlurmPatience(timeout=60.0, tries=3, pause=2.0)
# The stop path: the most one command may take there, and the least (a short look is still worth more than none).
STOP_PATH_MAX_S = 5.0
STOP_PATH_MIN_S = 1.0


def stop_path_patience(time_left: float | None = None) -> SlurmPatience:
    """One try within what the stop path has left: `time_left` s before the stop's deadline (StopDeadline.left;
    None: no deadline), at most STOP_PATH_MAX_S and never under STOP_PATH_MIN_S."""
    left = STOP_PATH_MAX_S if time_left is None else time_left
    return SlurmPatience(timeout=max(STOP_PATH_MIN_S, min(STOP_PATH_MAX_S, left)))


TIMED_OUT = "timed out"


def run_slurm(argv: list[str], timeout: float) -> tuple[str | None, str]:
    """Run `argv` for at most `timeout` s: (None, its output) if it succeeded, else (its error, its output),
    where the error is TIMED_OUT when it did not end in time (what it did is then unknown)."""
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
    except OSError as exc:
        return f"{argv[0]} did not run: {exc}", ""
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.kill()
        proc.communicate()
        return TIMED_OUT, ""
    if proc.returncode == 0:
        return None, out
    return (err or out).strip() or f"exit status {proc.returncode}", out


def show_job(job_id: str, patience: SlurmPatience = RANK0_LOST) -> str | None:
    """`scontrol show job -o` of the job, None if Slurm did not answer within `patience`."""
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        return None
    for attempt in range(1, patience.tries + 1):
        error, shown = run_slurm([scontrol, "show", "job", "-o", job_id], patience.timeout)
        if error is None and "JobId=" in shown:
            return shown
        logger.warning(
            "scontrol show job %s (try %d, within %g s): %s",
            job_id,
            attempt,
            patience.timeout,
            error or shown,
        )
        if attempt < patience.tries and patience.pause > 0:
            time.sleep(patience.pause * attempt)  # a back-off before asking a busy slurmctld again
    return None


def job_may_be_requeued(job_id: str, patience: SlurmPatience = RANK0_LOST) -> bool | None:
    """Whether Slurm would requeue the job (`Requeue=1` in `scontrol show job`; submitted with --requeue),
    None if Slurm did not say."""
    shown = show_job(job_id, patience)
    return None if shown is None else re.search(r"\bRequeue=1\b", shown) is not None


def job_preempted(job_id: str, patience: SlurmPatience | None = None) -> bool | None:
    """Whether Slurm has selected the job for preemption (`PreemptTime` set in `scontrol show job`: with a
    GraceTime its tasks get SIGTERM then), None if Slurm did not say. Asked on the stop path: within
    `patience`, by default `stop_path_patience()`."""
    found = re.search(r"\bPreemptTime=(\S+)", show_job(job_id, patience or stop_path_patience()) or "")
    return None if found is None else found.group(1) not in ("None", "Unknown")


def job_instance(job_id: str, patience: SlurmPatience = RANK0_LOST) -> tuple[str, int] | None:
    """The job's state and how often it was requeued so far (`JobState=`, `Restarts=` from one
    `scontrol show job`), None if unknown."""
    shown = show_job(job_id, patience) or ""
    state, restarts = re.search(r"\bJobState=(\S+)", shown), re.search(r"\bRestarts=(\d+)\b", shown)
    return (state.group(1), int(restarts.group(1))) if state and restarts else None


# Job states in which the instance that lost rank 0 still holds its nodes (`scontrol show job`).
STILL_RUNNING = frozenset({"RUNNING", "CONFIGURING", "SUSPENDED", "STOPPED"})


def end_job_for_restart(
    job_id: str, requeue: bool | None, restart_count: int = 0, patience: SlurmPatience = RANK0_LOST
) -> str:
    """End Slurm job `job_id` so that it restarts or can be resubmitted: `scontrol requeue` (the job
    restarts and resumes), or `scancel` (it may not be requeued, or the requeue was refused). Returns what
    was done, in words. Ending the job ends this process too (one of its tasks): say what you do first.

    `restart_count` is the caller's instance of the job: Slurm itself requeues a --requeue job whose batch
    host it declares DOWN (after SlurmdTimeout), and a requeue or cancel sent after that would end the
    restarted instance instead. So nothing is sent unless the job still runs as that instance; what is
    left is the milliseconds between that check and the command (scontrol cannot requeue one instance).
    If Slurm does not say (`requeue` None, or no instance read), the job is taken as still ours (we run in
    it: Slurm ending our instance would have ended us) and a requeue is tried first, the launcher's default:
    Slurm refuses it for a job submitted with --no-requeue ("presently disabled"), which is then cancelled.
    A requeue that does not answer within `patience.timeout` (or whose message to slurmctld timed out) may have
    been done: the instance is read again, and the job is cancelled only if it still runs as `restart_count`;
    if Slurm does not say, nothing is sent. A requeue refused outright is followed by the cancel.
    """
    scontrol, scancel = shutil.which("scontrol"), shutil.which("scancel")
    if scontrol is None or scancel is None:
        return "scontrol/scancel not found: the job stays until Slurm ends it"
    instance = job_instance(job_id, patience)
    if instance is not None:
        state, restarts = instance
        if restarts > restart_count:
            return f"job {job_id} was requeued already (restart {restarts}; this was restart {restart_count})"
        if state not in STILL_RUNNING:
            # Slurm requeued or ended it already: a requeue now would end the instance it starts next.
            return f"job {job_id} is {state} already: nothing to end"
    refused = ""
    if requeue is not False:  # True, or not known: the launcher's default
        error, _ = run_slurm([scontrol, "requeue", job_id], patience.timeout)
        if error is None:
            return f"requeued job {job_id}: it restarts and resumes from the markers"
        if _unanswered(error):
            waited = _waited(error, patience)
            unanswered = _requeue_unanswered(job_id, restart_count, patience, waited)
            if unanswered is not None:
                return unanswered
            refused = (
                f" ({waited}, and Slurm shows it still running as restart {restart_count}: not requeued)"
            )
        else:
            refused = f" (the requeue was refused: {error})"
    error, _ = run_slurm([scancel, job_id], patience.timeout)
    if error is None:
        return f"cancelled job {job_id}{refused}; submit the same command again to resume"
    if _unanswered(error):
        error = f"{_waited(error, patience)} (the job may or may not be cancelled: squeue -j {job_id})"
    return f"could not end job {job_id}{refused}; scancel: {error}"


def _unanswered(error: str) -> bool:
    """Whether a command's `error` leaves its outcome unknown: it timed out here, or scontrol's own message to
    slurmctld did ("Socket timed out on send/recv operation"), which slurmctld may have acted on all the same."""
    return error == TIMED_OUT or re.search(r"timed out|timeout", error, re.IGNORECASE) is not None


def _waited(error: str, patience: SlurmPatience) -> str:
    """An unanswered command's `error` in words."""
    return (
        f"no answer within {patience.timeout:g} s"
        if error == TIMED_OUT
        else f"no answer from Slurm ({error})"
    )


def _requeue_unanswered(job_id: str, restart_count: int, patience: SlurmPatience, waited: str) -> str | None:
    """After a requeue that got `waited` (no answer): what happened, in words, if it was requeued or that cannot
    be told (nothing more is sent: a cancel could end the restarted job); None if the job still runs as
    `restart_count` (not requeued: it may be cancelled)."""
    waited = f"scontrol requeue got {waited}"
    instance = job_instance(job_id, patience)
    if instance is None:
        return (
            f"{waited} and Slurm did not say what became of job {job_id}: outcome unknown, not cancelled "
            f"(a cancel could end the requeued job); if `squeue -j {job_id}` does not show it, submit the same "
            "command again"
        )
    state, restarts = instance
    if restarts > restart_count:
        shown = f"Slurm shows restart {restarts}, {state}"
        return f"requeued job {job_id} ({waited}, but {shown}): it resumes from the markers"
    if state not in STILL_RUNNING:
        now = f"{state} now, no longer running as restart {restart_count}"
        return f"{waited}; job {job_id} is {now}: nothing more sent"
    return None
