"""`hpc-classify submit`: the Slurm job of `slurm/classify.sbatch`, submitted from a login node
through submitit (one task per node, each runs `hpc-classify node`), requeued automatically on timeout
and preemption; completed files are skipped on every restart.

    hpc-classify submit --nodes 4 --gpus-per-node 8 --time 1440 --partition gpu -- \\
        --input IN --output OUT --classifier domain --protocol ucxx
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import submitit

from hpc_classify.cli.node import add_node_options, split_node_args


class NodeEntry(submitit.helpers.Checkpointable):
    """Runs `hpc-classify node ARGV` in every task. Checkpointable: on timeout or preemption submitit
    requeues the same call; the markers make the rerun resume."""

    def __init__(self, node_argv: list[str]):
        self.node_argv = list(node_argv)

    def __call__(self) -> int:
        from hpc_classify.cli.main import main

        code = main(["node", *self.node_argv])
        if code:
            raise RuntimeError(f"hpc-classify node exited with code {code}; see the job's logs")
        return code


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "submit",
        help="submit the classification as a Slurm job through submitit (or run it locally)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    job = parser.add_argument_group("job")
    job.add_argument("--nodes", type=int, default=1, help="nodes (default 1)")
    job.add_argument("--gpus-per-node", type=int, default=0, help="GPUs per node (default 0: CPU)")
    job.add_argument("--time", type=int, default=60, metavar="MIN", help="time limit in minutes (default 60)")
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
        "--submitit-dir", help="submitit's job files and logs (default: <output>/_jobs/submitit)"
    )
    job.add_argument("--local", action="store_true", help="run through submitit's local executor (no Slurm)")
    job.add_argument("--no-wait", action="store_true", help="print the job id and return at once")
    add_node_options(parser)
    parser.add_argument(
        "run_args", nargs=argparse.REMAINDER, help="-- followed by `hpc-classify run` options"
    )
    parser.set_defaults(handler=handle)


def node_argv(node_args: argparse.Namespace, run_args: list[str]) -> list[str]:
    """The launcher options given to `submit`, as `hpc-classify node` arguments."""
    argv: list[str] = []
    for name in ("job_dir", "interface", "worker_timeout", "workers_per_node", "worker_threads"):
        value = getattr(node_args, name)
        if value is not None:
            argv += [f"--{name.replace('_', '-')}", str(value)]
    for name in ("rmm_pool_size", "local_directory"):
        if getattr(node_args, name):
            argv += [f"--{name.replace('_', '-')}", getattr(node_args, name)]
    if node_args.enable_cudf_spill:
        argv.append("--enable-cudf-spill")
    return [*argv, "--", *run_args]


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.cli.node import peek_run_options
    from hpc_classify.cluster.submit import SubmitOptions, parse_sbatch_params, submit
    from hpc_classify.errors import ConfigError

    node_args, run_args = split_node_args(args)
    output = peek_run_options(run_args).output
    folder = args.submitit_dir or (os.path.join(output, "_jobs", "submitit") if output else None)
    if folder is None:
        raise ConfigError("no --output among the run options", hint="pass --submitit-dir DIR")
    options = SubmitOptions(
        folder=os.path.abspath(folder) + "/%j",
        nodes=args.nodes,
        gpus_per_node=args.gpus_per_node,
        time_min=args.time,
        partition=args.partition,
        job_name=args.job_name,
        local=args.local,
        sbatch=parse_sbatch_params(args.sbatch),
    )
    job = submit(options, NodeEntry(node_argv(node_args, run_args)))
    print(f"submitted job {job.job_id}; logs: {job.paths.stdout}")
    if args.no_wait:
        return 0
    try:
        job.results()
    except Exception as error:  # submitit re-raises the task's failure with its traceback
        print(f"hpc-classify submit: job {job.job_id} failed: {error}")
        return 1
    print(f"job {job.job_id} finished")
    return 0
