"""What rank 0 tells slurm/classify.sbatch about a resumable stop (exit 3): requeue the job, or not.

Exit 3 says "interrupted, resumable", whatever stopped the run: the time-limit or preemption warning (USR1,
which the script traps and forwards), no worker left for --worker-wait (nodes lost), a SIGTERM or SIGINT. The
code alone does not say whether the job should go back to the queue: `scancel -s TERM <job>` (or `-s INT`)
signals the job's steps, not the batch script, so the script never sees that deliberate stop, and it
requeued a job whose srun ended with rank 0's 3 (one node: on several, the other tasks die of the SIGTERM). The
script therefore names a file in HPC_CLASSIFY_STOP_REPORT (in its private temporary
directory, on its node, which is rank 0's), and rank 0, ending with the resumable code, writes one line there:
`requeue <why>` or `stop <why>`, and that word decides, whatever srun's status (on several nodes the other
tasks die of the same SIGTERM, and srun reports 143 over rank 0's 3); no line: a 3 is requeued, the old rule.

A SIGTERM is also Slurm's notice to the tasks of a job selected for preemption with a GraceTime (the batch
script gets its SIGTERM only when the grace time is over): that one is requeued, as the warning is; Slurm
says so by the job's `PreemptTime` (`scontrol show job`). SIGINT never comes from Slurm on its own. That
question is asked within what the SIGTERM's deadline has left of KillWait (slurm_job.stop_path_patience): one
that Slurm does not answer in time counts as not answered.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

from hpc_classify.cluster.slurm_job import job_preempted, stop_path_patience
from hpc_classify.exit_codes import INTERRUPTED
from hpc_classify.stop_request import WARNING_SIGNALS

logger = logging.getLogger(__name__)

STOP_REPORT_VARIABLE = "HPC_CLASSIFY_STOP_REPORT"
# The stops a user asks for (`scancel -s TERM|INT`, a kill of the task): the job is not requeued after them.
USER_STOP_SIGNALS = ("SIGTERM", "SIGINT")
PREEMPTION_SIGNAL = "SIGTERM"


def requeue_verdict(
    stop_name: str | None,
    job_id: str | None,
    preempted: Callable[[str], bool | None] | None = None,
    time_left: float | None = None,
) -> tuple[bool, str]:
    """Whether a run that `stop_name` (StopRequest.signal_name; None: no stop asked for) ended with the
    resumable code should be requeued, and why, in words. `preempted(job_id)`: is Slurm preempting the job
    (None: Slurm did not say; default: `scontrol show job` within the `time_left` s that KillWait leaves,
    slurm_job.stop_path_patience)."""
    if stop_name is None:
        return (
            True,
            "no stop was asked for (no worker left for --worker-wait, or files left unfinished: see stop_reason)",
        )
    if stop_name in {sig.name for sig in WARNING_SIGNALS}:
        return True, f"{stop_name}: the time-limit or preemption warning"
    if stop_name not in USER_STOP_SIGNALS:
        return True, f"stopped by {stop_name}"
    short = stop_name.removeprefix("SIG")
    if stop_name == PREEMPTION_SIGNAL and job_id:
        if preempted is None:
            by_slurm = job_preempted(job_id, patience=stop_path_patience(time_left))
        else:
            by_slurm = preempted(job_id)
        if by_slurm:
            return True, f"{stop_name} from Slurm, which is preempting job {job_id} (its grace time)"
        if by_slurm is None:
            short += "; Slurm did not say whether it is preempting the job"
    return False, (
        f"{stop_name} stopped the run (scancel -s {short}): a deliberate stop, not requeued; "
        "submit the same command again to resume"
    )


def report_stop(
    code: int,
    stop_name: str | None,
    job_id: str | None,
    *,
    preempted: Callable[[str], bool | None] | None = None,
    time_left: float | None = None,
) -> None:
    """On rank 0, as soon as the driver returned and before the cluster's end (which a stop's KillWait may cut
    short, cluster/node_end.py): for the batch script that set HPC_CLASSIFY_STOP_REPORT, whether the
    resumable `code` should requeue the job (nothing for another code, or without the variable). `time_left`:
    seconds the stop's deadline leaves (None: none), which bound the question to Slurm (requeue_verdict)."""
    path = os.environ.get(STOP_REPORT_VARIABLE)
    if not path or code != INTERRUPTED:
        return
    requeue, why = requeue_verdict(stop_name, job_id, preempted, time_left)
    (logger.info if requeue else logger.warning)("exit %d: %s", code, why)
    try:
        with open(path, "w", encoding="utf-8") as report:
            report.write(f"{'requeue' if requeue else 'stop'} {why}\n")
    except OSError as exc:  # then the script requeues the 3, as before it read this file
        logger.error(
            "could not write %s=%s (%s): the batch script will requeue the job",
            STOP_REPORT_VARIABLE,
            path,
            exc,
        )
