"""Exit codes of `hpc-classify run` (documented in the CLI help, the README and docs/running.md).

The bottom layer (standard library only), so that every layer decides with the same names and rules: errors.py
(2, 4), the driver, and the cluster layer's node entry (3 and 5 of a rank 0 lost, cluster/other_rank.py).

They are distinct so that a Slurm script can tell "requeue me" (3) from "fix something" (1, 2):

- 0 `OK`: every planned file has a completion marker. A run that nothing stopped, yet ends with files
  neither done nor failed, is never 0: it names them and exits 3 (driver/unfinished.py).
- 1 `FILES_FAILED`: the run finished, but some files kept failing; they are listed in `<output>/_failures.ndjson`.
- 2 `USAGE`: bad flags/config, output directory refused (fingerprint mismatch, locked by a live run),
  or no cluster; nothing was classified. Raised as an HpcClassifyError and mapped by the CLI.
- 3 `INTERRUPTED`: SIGTERM, SIGINT, SIGUSR1 or SIGUSR2 stopped the run early, no worker was left for
  --worker-wait seconds, the client lost the Dask scheduler, or files were left neither done nor failed
  (the summary's stop_reason names them); rerunning the same command resumes. Takes precedence over 1, because the
  unfinished files are not failures.
- 4 `OUTPUT_UNWRITABLE`: the output file system refused a write (full, over quota, read-only); nothing
  partial is left; rerun once it is fixed to resume. Distinct from 3 so that a requeue loop stops.
- 5 `STOPPED_BEFORE_PROGRESS`: a stop that would be 3 (signal, lost lock, no worker for --worker-wait, lost
  scheduler, files left over) came
  before this run finished a single file or piece; rerunning resumes. Distinct from 3 so that the batch scripts do not requeue it: a time limit too
  short for start-up plus the warning's lead, or workers that die at every start, would stop every restart
  the same way, for ever.
"""

from __future__ import annotations

OK = 0
FILES_FAILED = 1
USAGE = 2
INTERRUPTED = 3
OUTPUT_UNWRITABLE = 4
STOPPED_BEFORE_PROGRESS = 5

DESCRIPTIONS = {
    OK: "all files done",
    FILES_FAILED: "some files failed (see _failures.ndjson); the others are done",
    USAGE: "usage, configuration, output-directory or cluster error; nothing classified",
    INTERRUPTED: "interrupted (a signal SIGTERM/SIGINT/SIGUSR1/SIGUSR2, no worker left, the scheduler lost, "
    "or files left neither done nor failed: see stop_reason); rerun to resume",
    OUTPUT_UNWRITABLE: "the output file system refused a write (full, quota, read-only); fix it, rerun to resume",
    STOPPED_BEFORE_PROGRESS: "stopped (as 3) before this run finished any file or piece; rerun to resume (not requeued)",
}


def stopped(code: int, finished_something: bool) -> int:
    """The code of a run that stopped early with `code`: 3 becomes 5 when this run finished nothing."""
    return STOPPED_BEFORE_PROGRESS if code == INTERRUPTED and not finished_something else code
