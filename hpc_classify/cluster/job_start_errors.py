"""What a worker job of `--cluster jobqueue` that could not start leaves to tell why, for the keeper's log
(worker_jobs.py): the error of a failed submission (sbatch's), and where Slurm writes a job's output."""

from __future__ import annotations

import os
from typing import Any


def record_start_errors(cluster: Any) -> None:
    """Have the jobs `cluster` starts from now keep the error of a failed submission as `start_error`:
    SpecCluster raises it in a task of its own, which neither it nor the keeper can read afterwards."""
    spec = getattr(cluster, "new_spec", None)
    if not spec or getattr(spec.get("cls"), "_records_start_error", False):
        return
    job_class = spec["cls"]
    if isinstance(job_class, str):
        from distributed.utils import import_term

        job_class = import_term(job_class)

    async def start(self: Any) -> None:
        from distributed.core import Status

        try:
            await job_class.start(self)
        except Exception as exc:
            # Its text, not the exception: its traceback would hold the job (SpecCluster's close asserts that
            # the jobs still alive are closed or failed, as this one now is).
            self.start_error = str(exc) or repr(exc)
            self.status = Status.failed
            raise

    # In place: the plan's entries are this very dict (SpecCluster's new_worker_spec hands it out).
    spec["cls"] = type(job_class.__name__, (job_class,), {"start": start, "_records_start_error": True})


def submission_error(job: Any) -> str:
    """The error of a job's failed submission, for a log line: sbatch's own message where it gave one
    (dask-jobqueue's error holds the command, its stdout and its stderr)."""
    error = getattr(job, "start_error", None)
    if error is None:
        return "its error is in the log of the cluster's loop"
    text = str(error)
    stderr = text.partition("stderr:\n")[2].strip()
    return " ".join((stderr or text).split())


def job_output_files(job: Any) -> str:
    """Where Slurm writes a worker job's output (dask-jobqueue's -o/-e with a log directory)."""
    if getattr(job, "log_directory", None):
        stem = os.path.join(job.log_directory, f"{getattr(job, 'job_name', None) or 'worker'}-{job.job_id}")
        return f"{stem}.err and {stem}.out"
    return f"slurm-{job.job_id}.out in the directory the run was started from"


def why_ended(job: Any) -> str:
    """Where to look for why a job that never connected ended (or was never submitted)."""
    if getattr(job, "job_id", None) is None:
        return (
            f"Its submission failed: {submission_error(job)} (check the site's jobqueue.slurm settings, or "
            "whether slurmctld answers)"
        )
    return (
        f"Its output: {job_output_files(job)}; `sacct -j {job.job_id}` tells why it ended (check the job "
        "script's prologue, the worker command and the site's jobqueue.slurm settings)"
    )
