"""Where the launchers keep their files: every path under `<output>/_jobs/` is named here and only here
(as submitit's JobPaths does for its own folder).

    <output>/_jobs/                     the job root (`--job-dir` replaces it)
      <job id>[.<restart>]/             one Slurm launcher job; a requeued job gets one per restart
        incarnation.json                which run of the job id owns the directory (rank 0 writes it first)
        scheduler.json                  rank 0's scheduler, published by an atomic rename
        heartbeat.json                  rank 0 rewrites it while its scheduler runs; its last write says it ended
        shutdown                        rank 0 is done: the other nodes stop their workers (also told by the heartbeat)
        ending-after-rank0-loss         claimed by the one node that ends the job after rank 0's loss
        <node>/scheduler.log, <node>/worker.log
        <node>/workers.json             how many workers this node starts (rank 0 waits for that many)
        <node>/worker-exit.json         this node's worker command failed (rank 0 then fails at once)
        <node>/node-exit.json           why this node stopped: rank 0's loss, or it refused its options
      <job id>[.<restart>].replaced-<time>-<pid>/   another run's directory with the same job id, set aside
      submitit/                         `hpc-classify submit`: submitit's job files and logs (`--submitit-dir`)
        <job id>-<time>-<random>/       one submission: <job id>_<task>_log.out|err, its pickles
        local-<time>-<random>/          one `submit --local` (the same files)
      jobqueue/                         `--cluster jobqueue`: the worker jobs' logs

Job ids are reused (a slurmctld state reset, two clusters on one file system), so the directory keeps its
name but every shared file in it carries the run's incarnation token: see job_incarnation.py. submitit's
folder cannot do that (a task's result pickle there is the job's result), so each submission gets its own.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

JOBS_DIR = "_jobs"
SCHEDULER_FILE = "scheduler.json"


def default_job_root(output: str) -> str:
    return os.path.join(output, JOBS_DIR)


def submitit_dir(output: str) -> str:
    return os.path.join(output, JOBS_DIR, "submitit")


def submitit_job_folder(submitit_root: str, local: bool = False) -> str:
    """submitit's folder for the job of one submission (submitit puts the job id in place of `%j`): the id
    first, to find it by, then a stamp of this submission. submitit takes a job as done, with its result, as
    soon as `<job id>_<task>_result.pkl` exists in that folder, and the job loads `<job id>_submitted.pkl`
    from it: a folder of the id alone would hand an earlier job with the same id (a slurmctld state reset,
    two clusters on one output) both to `submit` and to the new job. A requeue keeps the folder.

    `local` (submitit's local executor): its job controller makes the folder exactly as given, `%j` unresolved,
    and leaves it empty beside the real one; so a local job's folder is `local-<stamp>` (unique by itself;
    its job id, the controller's pid, is in the file names)."""
    stamp = f"{time.strftime('%Y%m%dT%H%M%S')}-{uuid.uuid4().hex[:8]}"
    return os.path.join(os.path.abspath(submitit_root), f"local-{stamp}" if local else f"%j-{stamp}")


def jobqueue_log_dir(output: str) -> str:
    return os.path.join(output, JOBS_DIR, "jobqueue")


@dataclass(frozen=True)
class JobPaths:
    """The files of one launcher job (one Slurm job id and restart), shared by its nodes."""

    job_dir: Path

    @classmethod
    def for_job(cls, job_root: str | os.PathLike[str], job_id: str, restart_count: int = 0) -> JobPaths:
        """Job-scoped: a requeued job keeps its id, so each restart gets its own directory (no stale file)."""
        suffix = f".{restart_count}" if restart_count else ""
        return cls(Path(job_root) / f"{job_id}{suffix}")

    @property
    def incarnation_file(self) -> Path:
        return self.job_dir / "incarnation.json"

    def set_aside(self, stamp: str) -> Path:
        """Where rank 0 moves a directory that another run with the same job id left."""
        return self.job_dir.with_name(f"{self.job_dir.name}.replaced-{stamp}")

    @property
    def scheduler_file(self) -> Path:
        return self.job_dir / SCHEDULER_FILE

    def private_scheduler_file(self, pid: int) -> Path:
        """Where the scheduler writes its file before rank 0 publishes it under the final name."""
        return self.job_dir / f".{SCHEDULER_FILE}.{pid}"

    @property
    def heartbeat(self) -> Path:
        return self.job_dir / "heartbeat.json"

    @property
    def shutdown(self) -> Path:
        return self.job_dir / "shutdown"

    @property
    def ending_claim(self) -> Path:
        return self.job_dir / "ending-after-rank0-loss"

    def node_dir(self, node: str) -> Path:
        return self.job_dir / node

    def node_workers(self, node: str) -> Path:
        """`{"workers": n}`: the workers `node` starts (GPU counts may differ between nodes)."""
        return self.node_dir(node) / "workers.json"

    def log(self, node: str, process: str) -> Path:
        """The log of `process` ("scheduler" or "worker") on `node`."""
        return self.node_dir(node) / f"{process}.log"

    def node_logs(self) -> list[Path]:
        """Every node's logs, sorted."""
        return sorted(self.job_dir.glob("*/*.log"))

    def exit_record(self, node: str, process: str) -> Path:
        """Written when `process` on `node` failed; `process` "node" is the launcher itself."""
        return self.node_dir(node) / f"{process}-exit.json"
