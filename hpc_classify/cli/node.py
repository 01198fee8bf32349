"""`hpc-classify node`: run once per node of a Slurm allocation (`srun --ntasks-per-node=1`).

    srun --ntasks-per-node=1 hpc-classify node [NODE OPTIONS] -- --input IN --output OUT [RUN OPTIONS]

Everything after `--` is `hpc-classify run`'s command line (node options found there are taken out,
so that `sbatch slurm/classify.sbatch --config run.yaml --interface ib0` works). It is parsed once, into
the run's configuration; the launcher takes the output, protocol and device from it, and rank 0 runs
the driver with it against the Dask cluster the nodes start.

Exit status: rank 0 returns the driver's exit code (see `hpc-classify run --help`); the other nodes return
once rank 0 shuts the cluster down, or with 3 (resumable) when rank 0's heartbeat stops for --death-timeout
seconds (its node or its scheduler lost): the first of them then requeues the job (or cancels it when it
may not be requeued) and writes why in <job dir>/<node>/node-exit.json. If rank 0's driver had not finished a
single file or piece in this run of the job, they exit 5 and cancel the job instead: a rank 0 that dies the same
way at every start is not requeued for ever.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from hpc_classify.cli.arg_types import positive_int, positive_seconds
from hpc_classify.errors import ConfigError, HpcClassifyError

if TYPE_CHECKING:
    from hpc_classify.cluster.node_options import NodeOptions
    from hpc_classify.config import RunConfig
    from hpc_classify.stop_request import StopRequest

NODE_DESCRIPTION = __doc__


def add_node_options(parser: argparse.ArgumentParser, *, suppress_defaults: bool = False) -> None:
    """The launcher's own options (also used by `hpc-classify submit`). Their defaults are NodeOptions'."""
    from hpc_classify.cluster.node_options import NodeOptions

    default = argparse.SUPPRESS if suppress_defaults else None
    group = parser.add_argument_group("node launcher")
    group.add_argument(
        "--job-dir",
        default=default,
        help="directory for the scheduler file and node/worker logs (default: <output>/_jobs); "
        "a subdirectory per job id (and restart) is created in it; must be on a shared filesystem",
    )
    group.add_argument(
        "--interface",
        default=default,
        help="network interface for scheduler and workers, e.g. ib0 (default: the route to the scheduler)",
    )
    group.add_argument(
        "--worker-timeout",
        type=positive_seconds,
        default=argparse.SUPPRESS if suppress_defaults else NodeOptions.worker_timeout,
        help=f"seconds to wait for the scheduler and for every node's workers (default {NodeOptions.worker_timeout:g})",
    )
    group.add_argument(
        "--death-timeout",
        type=positive_seconds,
        default=argparse.SUPPRESS if suppress_defaults else NodeOptions.death_timeout,
        help="seconds without rank 0 (its heartbeat file, its scheduler) after which the other nodes stop "
        "their workers, exit 3 (resumable) and requeue the job; exit 5 and cancel it if rank 0 had finished "
        f"nothing in this run of the job (default {NodeOptions.death_timeout:g}). The workers get the larger of "
        "this and --worker-timeout as Dask's --death-timeout, which also bounds each start of a worker",
    )
    group.add_argument(
        "--workers-per-node",
        type=positive_int,
        default=default,
        help="default: one per visible GPU, or 1 on CPU",
    )
    group.add_argument(
        "--worker-threads",
        type=positive_int,
        default=default,
        help="task threads per worker (>= 1), the same as the run's --threads-per-worker (default 1; on CPU "
        "torch uses the node's cores)",
    )
    group.add_argument(
        "--rmm-pool-size",
        default=default,
        help="dask-cuda RMM pool per GPU, e.g. 70GB (GPU nodes only: refused where no GPU is visible)",
    )
    group.add_argument(
        "--enable-cudf-spill",
        action="store_true",
        default=argparse.SUPPRESS if suppress_defaults else NodeOptions.enable_cudf_spill,
        help="dask-cuda: let cuDF spill device memory to host (GPU nodes only: refused where no GPU is visible)",
    )
    group.add_argument(
        "--local-directory", default=default, help="worker scratch directory (node-local disk)"
    )


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "node",
        help="per-node entry inside a Slurm allocation (started by srun, one task per node)",
        description=NODE_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_node_options(parser)
    parser.add_argument(
        "run_args", nargs=argparse.REMAINDER, help="-- followed by `hpc-classify run` options"
    )
    parser.set_defaults(handler=handle)


def split_node_args(args: argparse.Namespace) -> tuple[argparse.Namespace, list[str]]:
    """Node options given before `--` or mixed into the run options; the rest is the run's command line."""
    rest = list(args.run_args)
    if rest[:1] == ["--"]:
        rest = rest[1:]
    extra = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    add_node_options(extra, suppress_defaults=True)
    found, run_args = extra.parse_known_args(rest)
    merged = argparse.Namespace(**{**vars(args), **vars(found)})
    return merged, run_args


def node_options(node_args: argparse.Namespace, config: RunConfig) -> NodeOptions:
    """The launcher's settings: its own options, plus the output, protocol, device and worker threads of
    the run. The run's settings for a cluster it would start or join itself do not apply here: refused."""
    from hpc_classify.cluster.job_layout import default_job_root
    from hpc_classify.cluster.node_options import NodeOptions

    _refuse_settings_of_other_clusters(config)
    job_root = node_args.job_dir or default_job_root(config.output)
    return NodeOptions(
        job_root=os.path.abspath(job_root),
        protocol=config.cluster_protocol,
        interface=node_args.interface,
        worker_timeout=node_args.worker_timeout,
        death_timeout=node_args.death_timeout,
        device=config.device,
        workers_per_node=node_args.workers_per_node,
        threads_per_worker=_worker_threads(node_args.worker_threads, config.threads_per_worker),
        rmm_pool_size=node_args.rmm_pool_size,
        enable_cudf_spill=node_args.enable_cudf_spill,
        local_directory=node_args.local_directory,
    )


def _refuse_settings_of_other_clusters(config: RunConfig) -> None:
    """On Slurm the launcher starts the scheduler and each node's workers: the run's settings for a cluster
    it would start (--workers, --max-workers, --cluster) or join (--scheduler-*) would be ignored."""
    replaced = {
        "--workers": (
            config.workers,
            "each node starts --workers-per-node workers (default: one per GPU, or 1)",
        ),
        "--max-workers": (
            config.max_workers,
            "the allocation's nodes are the cluster (--cluster jobqueue only)",
        ),
        "--cluster": (
            None if config.cluster == "local" else config.cluster,
            "the launcher starts the cluster across the allocation",
        ),
        "--scheduler-file": (config.scheduler_file, "the launcher starts the scheduler on the first node"),
        "--scheduler-address": (
            config.scheduler_address,
            "the launcher starts the scheduler on the first node",
        ),
    }
    given = [(flag, why) for flag, (value, why) in replaced.items() if value is not None]
    if given:
        raise ConfigError(
            "; ".join(f"{flag} does not apply on Slurm: {why}" for flag, why in given),
            hint="drop it from the command or YAML config given to slurm/classify.sbatch or `hpc-classify submit`",
        )


def _worker_threads(launcher_flag: int | None, run_setting: int | None) -> int:
    """--worker-threads (the launcher's name) and --threads-per-worker (the run's) set the same thing."""
    if launcher_flag is not None and run_setting is not None and launcher_flag != run_setting:
        raise ConfigError(
            f"--worker-threads {launcher_flag} and --threads-per-worker {run_setting} disagree",
            hint="give one of them: they set the same task threads per worker",
        )
    return launcher_flag or run_setting or 1


def handle(args: argparse.Namespace) -> int:
    from hpc_classify.cluster.kill_wait import kill_wait_here
    from hpc_classify.cluster.node_files import signals_ignored
    from hpc_classify.cluster.slurm_env import task_rank
    from hpc_classify.stop_request import WARNING_SIGNALS, StopRequest

    # From here on a warning while the run's configuration is read (its imports take a second) must not kill
    # the task (USR1's default action): rank 0 holds every stop signal for its driver; the other ranks ignore
    # the warnings, and TERM and INT end them as before. (srun's task rank is the node's: one task per node.)
    stop = StopRequest(kill_wait=kill_wait_here()) if task_rank() == 0 else None
    with stop if stop is not None else signals_ignored(WARNING_SIGNALS):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, WARNING_SIGNALS)  # held by main until now: see there
        from hpc_classify.cli.run import parse_run_argv
        from hpc_classify.cli.run_config import config_from_args

        node_args, run_args = split_node_args(args)
        # Only rank 0 plans: the other ranks do not look up each entry of an --input-list.
        config = config_from_args(parse_run_argv(run_args), check_inputs=task_rank() == 0)
        # Rank 0's stop report is written from inside, as soon as its code is known (_report_stop).
        return run_this_node(node_options(node_args, config), config, stop)


def _report_stop(code: int, stop: StopRequest) -> None:
    """For slurm/classify.sbatch: whether rank 0's resumable stop (3) should requeue the job (a SIGTERM or
    SIGINT sent to the job's steps, `scancel -s TERM`, should not): see cluster/stop_report.py. Called while the
    signals are held, before the cluster's end: what KillWait leaves after a SIGTERM may not cover that end."""
    from hpc_classify.cluster.slurm_env import slurm_job_id
    from hpc_classify.cluster.stop_report import report_stop

    # KillWait runs from the stop signal: Slurm is asked within what is left of it (cluster/slurm_job.py).
    time_left = None if stop.deadline is None else stop.deadline.left()
    report_stop(code, stop.signal_name, slurm_job_id(), time_left=time_left)


def run_this_node(options: NodeOptions, config: RunConfig, stop: StopRequest | None = None) -> int:
    """This node's part of the job; rank 0 runs the driver with `config` and returns its exit code.
    `stop`: see run_node (rank 0's: what stopped the run, for its stop report)."""
    from hpc_classify.cluster.slurm_node import run_node

    return run_node(
        options,
        lambda scheduler_file, stop: run_driver(config, scheduler_file, stop),
        stop=stop,
        on_outcome=None if stop is None else lambda code: _report_stop(code, stop),
    )


def run_driver(config: RunConfig, scheduler_file: str, stop: StopRequest | None = None) -> int:
    """The driver on the cluster of this job, in this process (so it gets the signals); `stop`: the
    StopRequest the node entry holds."""
    from hpc_classify.api import classify
    from hpc_classify.cli.run import describe_result

    try:
        # The launcher started the workers (with the run's threads): the driver joins them.
        joined = dataclasses.replace(config, scheduler_file=scheduler_file, threads_per_worker=None)
        result = classify(joined, stop=stop)
    except HpcClassifyError as error:  # its own code, as `hpc-classify run` returns it (4: output unwritable)
        print(f"hpc-classify run: error: {error.one_line()}", file=sys.stderr)
        return error.exit_code
    print(describe_result(result), flush=True)
    return result.exit_code
