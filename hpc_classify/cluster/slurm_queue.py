"""What Slurm's queue says of the worker jobs of `--cluster jobqueue`: `squeue`'s state of each job, and what
that state means for a job whose worker is not connected (the one place of that decision, for the keeper of
worker_jobs.py): it has ended, it runs (its workers should be there), or it waits (queued, requeued,
suspended: its workers may come later)."""

from __future__ import annotations

import asyncio
import getpass
import logging
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

SQUEUE_TIMEOUT = 60.0  # a slurmctld too busy to answer: no answer, nothing concluded
# squeue's states (%T) of a job that has ended, or is ending (COMPLETING): its worker will never connect.
ENDED_STATES = frozenset(
    {
        "BOOT_FAIL",
        "CANCELLED",
        "COMPLETED",
        "COMPLETING",
        "DEADLINE",
        "FAILED",
        "NODE_FAIL",
        "OUT_OF_MEMORY",
        "PREEMPTED",
        "TIMEOUT",
    }
)
# States of a job whose allocation is live and whose script runs: its workers should be connected. Any other
# state that is not ended (PENDING, REQUEUED after a node failure, CONFIGURING, SUSPENDED...) is a job that
# waits, and may still start its workers.
RUNNING_STATES = frozenset({"RUNNING", "RESIZING", "SIGNALING", "STAGE_OUT"})
NOT_LISTED = "no longer listed by squeue"  # Slurm forgets an ended job MinJobAge after its end

ENDED, RUNNING, WAITING = "ended", "running", "waiting"


def job_fate(state: str) -> str:
    """ENDED, RUNNING or WAITING, for squeue's `state` of a job (NOT_LISTED: it has ended)."""
    if state == NOT_LISTED or state in ENDED_STATES:
        return ENDED
    return RUNNING if state in RUNNING_STATES else WAITING


@dataclass(frozen=True)
class QueueAnswer:
    """One `squeue` answer: `states` (job id -> state; None where squeue failed) and the jobs it may judge,
    those submitted before it was asked (a job submitted since is missing from it, and has not ended)."""

    states: dict[str, str] | None
    jobs: frozenset[Any]

    def state(self, job: Any) -> str | None:
        """squeue's state of `job` (NOT_LISTED where it lists it no longer), or None: no answer about it."""
        if self.states is None or job not in self.jobs:
            return None
        return self.states.get(str(job.job_id), NOT_LISTED)


async def slurm_job_states() -> dict[str, str] | None:
    """squeue's state of each job of this user (job id -> state, e.g. "PENDING"), ended ones it still keeps
    included; None when squeue gave no answer (then nothing may be concluded from a job missing)."""
    try:
        user = getpass.getuser()  # KeyError where this uid has no passwd entry and no $USER
        command = ["squeue", "--noheader", "--states=all", f"--user={user}", "--format=%i %T"]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except (OSError, KeyError) as exc:
        logger.warning("jobqueue: could not run squeue to find worker jobs that ended: %r", exc)
        return None
    try:
        out, err = await asyncio.wait_for(process.communicate(), SQUEUE_TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        logger.warning("jobqueue: squeue did not answer within %.0f s", SQUEUE_TIMEOUT)
        return None
    if process.returncode != 0:
        logger.warning("jobqueue: %s failed: %s", " ".join(command), err.decode(errors="replace").strip())
        return None
    return dict(line.split(None, 1) for line in out.decode().splitlines() if len(line.split(None, 1)) == 2)
