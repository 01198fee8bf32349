"""Stand-ins for the keeper of `--cluster jobqueue` worker jobs (cluster/worker_jobs.py): a dask-jobqueue
cluster, its jobs, and squeue's answers. The real cluster is in tests/slurm."""

from __future__ import annotations

import itertools

from distributed.core import Status

_JOB_IDS = itertools.count(100)


class StandInJob:
    """A submitted worker job as the keeper sees it: its Slurm job id, where dask-jobqueue has Slurm write
    its output, and its close (scancel)."""

    def __init__(self, sbatch_error: str | None = None):
        self.closed = False
        self.job_id = None if sbatch_error else str(next(_JOB_IDS))
        # As a dask-jobqueue Job after its start: running once submitted, still created if sbatch failed.
        self.status = Status.created if sbatch_error else Status.running
        if sbatch_error:  # dask-jobqueue's error of a failed command, kept by record_start_errors
            self.start_error = (
                f"Command exited with non-zero exit code.\nExit code: 1\nCommand:\nsbatch /tmp/x.sh\nstdout:\n"
                f"\nstderr:\n{sbatch_error}\n"
            )
        self.log_directory = "/out/_jobs/jobqueue"
        self.job_name = "dask-worker"

    async def close(self):
        self.closed = True


class StandInCluster:
    """What JobKeeper reads of a dask-jobqueue cluster: its plan, its jobs and the scheduler's workers. (A
    stand-in: dask-cuda's per-GPU workers cannot start here; the real cluster is in tests/slurm.)"""

    def __init__(self, jobs, connected):
        self.status = Status.running
        self.worker_spec = {job: {} for job in jobs}
        self.workers = {job: StandInJob() for job in jobs}
        self.connected = connected
        self.scaled = []
        self.sbatch_errors: list[str] = []  # the errors of the next submissions to fail, in turn

    @property
    def scheduler_info(self):
        return {"workers": {f"tcp://h:{i}": {"name": name} for i, name in enumerate(self.connected)}}

    def scale(self, jobs):
        self.scaled.append(jobs)
        for job in self.worker_spec:
            if job not in self.workers:
                self.workers[job] = StandInJob(self.sbatch_errors.pop(0) if self.sbatch_errors else None)


class StandInSqueue:
    """squeue's answer, set by the test (job id -> state; None: squeue failed), and how often it was asked."""

    def __init__(self):
        self.states: dict[str, str] | None = {}
        self.asked = 0

    async def __call__(self):
        self.asked += 1
        return self.states
