"""Which run of a Slurm job the files in its shared job directory belong to.

The job directory is named by job id and restart (job_layout.py), and Slurm reuses job ids: after a
slurmctld state reset, or on two clusters that share a file system and an output directory. A new run
would then find the old run's scheduler.json (its other nodes connect to a dead address), its `shutdown`
(they stop at once), its worker-exit.json (rank 0 fails naming a node that is fine) and its heartbeat.

Every task of one run derives the same token without talking to the others (slurm_env.incarnation_token:
cluster, job id and restart, the job's start, the step), and:
- rank 0, before it writes anything else, takes the directory: one that another run left is renamed
  aside (`<job id>.replaced-<time>-<pid>`, with a log line), then incarnation.json records the token; of
  the directories set aside in the job root, the newest KEEP_REPLACED stay and older ones are removed (a
  log line each): after a state reset every job id is reused, and the old runs' logs would pile up;
- every shared file is written with the token (key "incarnation"), and a file with another token, or
  none, is read as missing. The other nodes write nothing before they read a scheduler.json with their
  token, which rank 0 publishes only after it took the directory: no sleep, no race.
The directory keeps its name (`OUT/_jobs/<job id>[.<restart>]/<node>/worker.log`, as documented). Two runs with one id
on one output at the same time are not kept apart: the second's rank 0 moves the first's directory aside
(the stamps keep each from acting on the other's files) and then its driver is refused by the output's lock.

Without a start in the token (a batch script of one's own, or `salloc`, that does not export
HPC_CLASSIFY_JOB_TOKEN, on Slurm < 23.02) the token is the cluster, job id and restart, and step: two steps
of one allocation (`srun ... hpc-classify node` twice) are still told apart, as are two clusters by name.
A job whose id the same cluster reused after a state reset has the same token for the same step: its
files are taken as this run's (the gap of this case), and rank 0 warns when it finds the directory in use
with its own token (no run finds that otherwise). Without a token at all (no Slurm: submitit's local
executor with several tasks) nothing is checked: rank 0 warns when it finds the directory already in use.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hpc_classify.cluster.job_layout import JobPaths
from hpc_classify.cluster.node_files import read_json, write_json
from hpc_classify.cluster.slurm_env import JOB_TOKEN_VARIABLE
from hpc_classify.errors import ClusterError

logger = logging.getLogger(__name__)

STAMP = "incarnation"
KEEP_REPLACED = 5  # directories set aside that stay in a job root, the newest (by their stamp)
_REPLACED = re.compile(r".+\.replaced-(\d{8}T\d{6})-(\d+)")


@dataclass(frozen=True)
class Incarnation:
    """Reads and writes the job directory's shared JSON files as this run's (`token` None: unchecked)."""

    token: str | None

    def owns(self, data: dict[str, Any] | None) -> bool:
        return data is not None and (self.token is None or data.get(STAMP) == self.token)

    def read(self, path: Path) -> dict[str, Any] | None:
        """The file's JSON object if this run wrote it; None while missing, incomplete, or another run's."""
        data = read_json(path)
        return data if self.owns(data) else None

    def write(self, path: Path, data: dict[str, Any]) -> None:
        write_json(path, self.stamp(data))

    def stamp(self, data: dict[str, Any]) -> dict[str, Any]:
        return {**data, STAMP: self.token} if self.token is not None else data

    def take_job_dir(self, paths: JobPaths, node: str) -> None:
        """Rank 0, first: make the job directory this run's, setting aside one that another run left."""
        job_dir = paths.job_dir
        in_use = job_dir.is_dir() and any(job_dir.iterdir())
        if self.token is None:
            if in_use:
                logger.warning(
                    "%s exists already: files that an earlier job with the same id left there would be taken "
                    "as this job's; export %s before srun (see docs/slurm.md) to tell them apart",
                    job_dir,
                    JOB_TOKEN_VARIABLE,
                )
            job_dir.mkdir(parents=True, exist_ok=True)
            return
        found = read_json(paths.incarnation_file)
        if in_use and self.owns(found):
            logger.warning(
                "%s holds files with this run's token (%s) already, taken as this run's: an earlier job with "
                "the same id and step left them (Slurm's state was reset), and no start time tells the two "
                "apart; export %s before srun (see docs/slurm.md)",
                job_dir,
                self.token,
                JOB_TOKEN_VARIABLE,
            )
        elif in_use:
            aside = paths.set_aside(f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
            try:
                os.rename(job_dir, aside)
            except OSError as exc:
                raise ClusterError(
                    f"{job_dir} belongs to another run with job id {job_dir.name} and could not be moved "
                    f"aside: {exc}",
                    hint="move or delete it, or pass --job-dir",
                ) from exc
            owner = (found or {}).get(STAMP) or "no token"
            logger.warning(
                "%s belonged to another run of this job id (%s): moved to %s", job_dir, owner, aside
            )
            remove_old_replaced(job_dir.parent)
        job_dir.mkdir(parents=True, exist_ok=True)
        self.write(paths.incarnation_file, {"node": node, "time": time.time()})


def remove_old_replaced(job_root: Path, keep: int = KEEP_REPLACED) -> None:
    """Remove the directories set aside in `job_root` (`*.replaced-<time>-<pid>`) but the newest `keep`: the
    logs of earlier runs with reused job ids, kept a while to look at. A failed removal is only logged."""
    aside = []
    for path in job_root.iterdir():
        match = _REPLACED.fullmatch(path.name)
        if match and path.is_dir():
            aside.append(((match[1], int(match[2])), path))
    for _, path in sorted(aside, reverse=True)[keep:]:
        try:
            shutil.rmtree(path)
        except OSError as exc:
            logger.warning("could not remove %s, set aside by an earlier run: %s", path, exc)
        else:
            logger.info("removed %s, set aside by an earlier run (the newest %d stay)", path, keep)


UNCHECKED = Incarnation(None)  # no token: every file is taken as this run's
