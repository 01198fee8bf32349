"""`hpc-classify submit`: the Slurm job of `slurm/classify.sbatch`, submitted from a login node
through submitit (one task per node, each runs `hpc-classify node`), requeued automatically on timeout
and preemption; completed files are skipped on every restart.

    hpc-classify submit --nodes 4 --gpus-per-node 8 --time 1440 --partition gpu -- \\
        --config run.yaml --protocol ucxx

The run's options are parsed and validated here, on the login node (a wrong classifier or argument
fails before anything is queued); the job receives the resulting configuration as an object.
"""

from __future__ import annotations

import argparse
import logging
import re
import signal
from typing import TYPE_CHECKING, Any

import submitit

from hpc_classify.cli.arg_types import non_negative_int, positive_int
from hpc_classify.cli.node import add_node_options, split_node_args

# The signal submitit asks Slurm for (`--signal=USR2@<delay>`) and handles in the job.
# How rank 0 reports the driver's exit code through submitit, whose failures reach `submit` as text only.
NODE_EXITED = "hpc-classify node exited with code"
SUBMITIT_WARNING = signal.Signals[f"SIG{submitit.JobEnvironment.USR_SIG}"]

if TYPE_CHECKING:
    from hpc_classify.cluster.node_options import NodeOptions
    from hpc_classify.config import RunConfig


class NodeEntry(submitit.helpers.Checkpointable):
    """This node's part of the job in every task (`hpc-classify node`'s work), with the run's configuration
    as an object. Checkpointable: on timeout or preemption submitit requeues the same call; the markers
    make the rerun resume.

    submitit's warning (USR2, `slurm_signal_delay_s` before the time limit, and at preemption where the site
    sends it) would checkpoint, requeue and exit rank 0 at once, mid-file. Here the run drains first, as
    slurm/classify.sbatch's does on USR1: the node entry catches the warning (the scheduler, the workers and
    the other nodes ignore it), the driver submits nothing new and lets the files in flight finish, and only
    then does rank 0 hand over to submitit's own handler, which checkpoints and requeues within its budget.
    """

    def __init__(self, options: NodeOptions, config: RunConfig, log_level: str | None = None):
        self.options = options
        self.config = config
        self.log_level = log_level

    def __call__(self) -> int:
        from hpc_classify.cli.node import run_this_node
        from hpc_classify.cluster.kill_wait import kill_wait_here
        from hpc_classify.cluster.slurm_env import task_rank
        from hpc_classify.exit_codes import INTERRUPTED
        from hpc_classify.logging_setup import configure_logging
        from hpc_classify.stop_request import StopRequest

        configure_logging(self.log_level)
        submitit_requeue = signal.getsignal(SUBMITIT_WARNING)  # installed by submitit before this call
        stop = StopRequest(kill_wait=kill_wait_here())
        code = run_this_node(self.options, self.config, stop)
        if code == INTERRUPTED and stop.warned and callable(submitit_requeue):
            logging.getLogger(__name__).warning(
                "%s: the files in flight have finished; submitit checkpoints and requeues the job",
                stop.signal_name,
            )
            submitit_requeue(SUBMITIT_WARNING, None)  # requeues and exits (or raises: requeues used up)
        if code and task_rank() == 0:
            raise RuntimeError(f"{NODE_EXITED} {code}; see the job's logs")
        # Another node's code is returned, not raised: rank 0's result speaks for the job (as its exit status
        # does under srun). A raised error there would outlive a requeue in submitit's result file of that
        # task, and read as the outcome of the restarted job that succeeded.
        return code


def job_exit_code(failure: str) -> int:
    """The driver's exit code that rank 0's failure reports (2 settings, 3 interrupted, 4 output
    unwritable, 5 stopped before any result: as `hpc-classify run` and classify.sbatch return them); 1 for
    any other failure."""
    found = re.search(rf"{NODE_EXITED} (\d+)", failure)
    return int(found.group(1)) if found else 1


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit the classification as a Slurm job through submitit (or run it locally)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    job = parser.add_argument_group("job")
    job.add_argument("--nodes", type=positive_int, default=1, help="nodes (default 1)")
    job.add_argument(
        "--gpus-per-node", type=non_negative_int, default=0, help="GPUs per node (default 0: CPU)"
    )
    job.add_argument(
        "--time",
        type=non_negative_int,
        default=60,
        metavar="MIN",
        help="time limit in minutes (default 60; 0: none, where the partition allows it)",
    )
    job.add_argument("--partition", help="Slurm partition")
    job.add_argument("--job-name", default="hpc-classify")
    job.add_argument(
        "--sbatch",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra sbatch parameter (repeatable)",
    )
    job.add_argument(
        "--submitit-dir",
        help="submitit's job files and logs, in a folder <job id>-<time>-<random> per submission "
        "(local-<time>-<random> with --local; default: <output>/_jobs/submitit)",
    )
    job.add_argument(
        "--max-requeues",
        type=non_negative_int,
        metavar="N",
        help="times the job is requeued after reaching its time limit (default 10; preemptions do not count): "
        "a corpus that needs more runs of --time than that stops there, resumable by submitting again",
    )
    job.add_argument("--local", action="store_true", help="run through submitit's local executor (no Slurm)")
    job.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    add_node_options(parser)
    parser.add_argument(
        "run_args", nargs=argparse.REMAINDER, help="-- followed by `hpc-classify run` options"
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.cli.node import node_options
    from hpc_classify.cli.run import parse_run_argv
    from hpc_classify.cli.run_config import config_from_args
    from hpc_classify.cluster.job_layout import submitit_dir, submitit_job_folder
    from hpc_classify.cluster.submit import SubmitOptions, parse_sbatch_params, submit
    from hpc_classify.warning_grace import with_warning_lead

    node_args, run_args = split_node_args(args)
    config = config_from_args(parse_run_argv(run_args))
    folder = args.submitit_dir or submitit_dir(config.output)
    options = SubmitOptions(
        folder=submitit_job_folder(folder, local=args.local),
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        time_min=args.time,
        partition=args.partition,
        job_name=args.job_name,
        local=args.local,
        max_requeues=args.max_requeues,
        sbatch=parse_sbatch_params(args.sbatch),
    )
    # The files in flight get most of the warning's lead; a --warning-grace not below it is refused here.
    config = with_warning_lead(config, options.warning_lead_s(), options.warning_lead_source())
    job = submit(options, NodeEntry(node_options(node_args, config), config, args.log_level))
    print(f"submitted job {job.job_id}; logs: {job.paths.stdout}")
    if args.no_wait:
        return 0
    try:
        job.results()
    except Exception as error:  # submitit re-raises the task's failure with its traceback, as text
        print(f"hpc-classify submit: job {job.job_id} failed: {error}")
        return job_exit_code(str(error))
    print(f"job {job.job_id} finished")
    return 0
