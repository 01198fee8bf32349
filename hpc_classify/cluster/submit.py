"""Submit the per-node entry as a Slurm job through submitit (or run it locally with submitit's local
executor). submitit writes and submits the sbatch script (one task per node), exports
SUBMITIT_EXECUTOR so that `submitit.JobEnvironment` works inside, and requeues checkpointable
callables on timeout and preemption. Never imports the driver: the CLI hands the callable in."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hpc_classify.cluster.slurm_env import JOB_TOKEN_EXPORT
from hpc_classify.errors import ClusterError, ConfigError
from hpc_classify.warning_grace import WARNING_LEAD_ENV
from hpc_classify.whole_numbers import is_whole_number

logger = logging.getLogger(__name__)


# sbatch parameters the job sets itself (key as `parse_sbatch_params` writes it), and the remedy: an --sbatch of
# one would override it without a word, so it is refused.
_ONE_TASK = (
    "leave it out: the job runs one task per node, which starts the node's workers (--workers-per-node)"
)
_LOGS = "leave it out: submitit's logs go to its job folder (--submitit-dir)"
SET_BY_SUBMIT = {
    "nodes": "use --nodes",
    "time": "use --time (minutes)",
    "partition": "use --partition",
    "job_name": "use --job-name",
    "ntasks_per_node": _ONE_TASK,
    "tasks_per_node": _ONE_TASK,
    "ntasks": _ONE_TASK,
    "no_kill": "leave it out: a lost node other than rank 0's must not end the job",
    "output": _LOGS,
    "error": _LOGS,
    "open_mode": _LOGS,
}


def sbatch_key(key: str) -> str:
    """An sbatch parameter's name as submitit takes it: no leading dashes, "_" for "-"."""
    return key.strip().lstrip("-").replace("-", "_")


# submitit drains and requeues on USR2: --sbatch signal=USR2@<seconds> may only move the warning.
_WARNING = re.compile(r"USR2@\d+")
# Slurm checks time limits about once a minute: a warning may come up to this much before its lead.
SLURM_SIGNAL_EARLY_S = 60
LOCAL_WARNING_LEAD_S = 30  # submitit's LocalExecutor's own signal_delay_s (--local: not ours to set)
# A job longer than the partition allows runs as a chain of time-limited runs: room for a multi-day corpus.
DEFAULT_MAX_REQUEUES = 10


def refuse_sbatch_set_by_submit(sbatch: dict[str, Any], gpus_per_node: int = 0) -> None:
    """ConfigError naming each --sbatch KEY that the job sets itself, and what to do instead. Two are left
    to --sbatch where no flag can say it: gpus-per-node with a GPU type (a100:4) unless --gpus-per-node is
    given too, and signal=USR2@<seconds> (a longer lead for the warning; --time 0 has none)."""
    for key, value in sbatch.items():
        if sbatch_key(key) == "gpus_per_node" and gpus_per_node:
            raise ConfigError(
                f"--gpus-per-node {gpus_per_node} and --sbatch gpus-per-node={value} both given",
                hint="give one: --sbatch gpus-per-node=TYPE:N where the GPU type matters",
            )
        if sbatch_key(key) == "signal" and not _WARNING.fullmatch(str(value)):
            raise ConfigError(
                f"--sbatch signal={value}: submitit drains the run and requeues the job on USR2 only",
                hint="leave it out (USR2 300 s before the time limit), or give signal=USR2@SECONDS for "
                "another lead",
            )
    clashes = [sbatch_key(key) for key in sbatch if sbatch_key(key) in SET_BY_SUBMIT]
    if clashes:
        names = ", ".join(key.replace("_", "-") for key in clashes)
        raise ConfigError(
            f"--sbatch {names}: `hpc-classify submit` sets {'these' if len(clashes) > 1 else 'it'} itself "
            "(an --sbatch value would silently override the job's own)",
            hint="; ".join(f"{key.replace('_', '-')}: {SET_BY_SUBMIT[key]}" for key in clashes),
        )


@dataclass(frozen=True)
class SubmitOptions:
    folder: str  # submitit's folder for the job (%j: its id), job_layout.submitit_job_folder
    nodes: int = 1
    gpus_per_node: int = 0
    time_min: int = 60
    partition: str | None = None
    job_name: str = "hpc-classify"
    local: bool = False  # submitit's LocalExecutor: one node, this machine, no Slurm
    signal_delay_s: int = 300  # warning signal (USR2 in submitit) this long before the time limit
    # submitit's budget of requeues after the time limit (its max_num_timeout; preemptions are not counted).
    max_requeues: int | None = None  # None: DEFAULT_MAX_REQUEUES
    exclusive: bool = True
    sbatch: dict[str, Any] = field(default_factory=dict)  # extra sbatch parameters (key without --)

    def __post_init__(self) -> None:
        for flag, value, minimum in (
            ("--nodes", self.nodes, 1),
            ("--gpus-per-node", self.gpus_per_node, 0),
            ("--time", self.time_min, 0),  # 0: no time limit, where the partition allows it
            ("signal_delay_s", self.signal_delay_s, 0),
            ("--max-requeues", self.requeue_budget(), 0),
        ):
            if not is_whole_number(value, minimum):
                raise ConfigError(f"{flag} must be a whole number >= {minimum}, not {value!r}")
        refuse_sbatch_set_by_submit(self.sbatch, self.gpus_per_node)
        self._refuse_a_time_limit_within_the_warning()
        if self.local and self.nodes != 1:
            raise ConfigError("--local runs on one node only", hint="drop --nodes, or submit to Slurm")
        slurm_only = [
            flag
            for flag, value in (
                ("--gpus-per-node", self.gpus_per_node),
                ("--partition", self.partition),
                ("--sbatch", self.sbatch),
                ("--max-requeues", self.max_requeues is not None),
            )
            if value
        ]
        if self.local and slurm_only:
            raise ConfigError(
                f"{', '.join(slurm_only)} given with --local: submitit's local executor runs the job on this "
                "machine, without Slurm, and would ignore "
                f"{'them' if len(slurm_only) > 1 else 'it'}",
                hint=f"drop {', '.join(slurm_only)} for a local check, or drop --local to submit to Slurm",
            )

    def requeue_budget(self) -> int:
        """Requeues after the time limit submitit may do: --max-requeues, else DEFAULT_MAX_REQUEUES."""
        return DEFAULT_MAX_REQUEUES if self.max_requeues is None else self.max_requeues

    def warning_lead_s(self) -> int:
        """Seconds before the time limit at which Slurm (--local: submitit) sends the drain warning (USR2)."""
        if self.local:
            return LOCAL_WARNING_LEAD_S
        for key, value in self.sbatch.items():
            if sbatch_key(key) == "signal":
                return int(str(value).rpartition("@")[2])
        return self.signal_delay_s

    def warning_lead_source(self) -> str:
        """What sets warning_lead_s, in words (for an error that names it)."""
        if self.local:
            return f"submitit's local executor warns {LOCAL_WARNING_LEAD_S} s before --time"
        for key, value in self.sbatch.items():
            if sbatch_key(key) == "signal":
                return f"--sbatch {key}={value}"
        return f"submit's default --signal=USR2@{self.signal_delay_s}"

    def _refuse_a_time_limit_within_the_warning(self) -> None:
        """A job whose time limit is within the warning's lead (Slurm sends it up to a minute early) is
        warned as it starts: it would drain at once and requeue itself to do the same, up to max_requeues
        times, classifying nothing. (--local: submitit's own 30 s lead, no Slurm.)"""
        if self.local or not self.time_min:
            return
        lead = self.warning_lead_s()
        if self.time_min * 60 <= lead + SLURM_SIGNAL_EARLY_S:
            shortest = (lead + SLURM_SIGNAL_EARLY_S) // 60 + 1
            raise ConfigError(
                f"--time {self.time_min} (minutes) leaves the job no time to classify: the drain warning "
                f"comes {lead} s before the time limit (Slurm may send it up to {SLURM_SIGNAL_EARLY_S} s "
                "earlier), so the job would stop as it started and requeue itself to do the same",
                hint=f"give --time {shortest} or more, or a shorter warning lead with --sbatch "
                "signal=USR2@SECONDS",
            )


def make_executor(options: SubmitOptions) -> Any:
    import submitit

    extra = {} if options.local else {"slurm_max_num_timeout": options.requeue_budget()}
    executor = submitit.AutoExecutor(
        folder=options.folder, cluster="local" if options.local else None, **extra
    )
    params: dict[str, Any] = {
        "name": options.job_name,
        "timeout_min": options.time_min,
        "nodes": options.nodes,
        "tasks_per_node": 1,  # one node entry per node; it starts that node's workers
    }
    if not options.local:
        if executor.cluster != "slurm":
            raise ClusterError(
                "submitit found no Slurm here (sbatch not on PATH)",
                hint="run on a login node, or pass --local",
            )
        params["slurm_signal_delay_s"] = options.signal_delay_s
        # Whole nodes, as in slurm/classify.sbatch: the node's workers use all of its cores.
        params["slurm_exclusive"] = options.exclusive
        if options.gpus_per_node:
            params["gpus_per_node"] = options.gpus_per_node
        if options.partition:
            params["slurm_partition"] = options.partition
        # As in slurm/classify.sbatch: a failed node other than rank 0's does not end the job or its step
        # (the run finishes on the others); rank 0's loss makes the other nodes requeue the job.
        params["slurm_srun_args"] = ["--no-kill", "--kill-on-bad-exit=0"]
        params["slurm_additional_parameters"] = {"no_kill": True, **options.sbatch}
        # Before srun, in every run of the script (requeues too): the token that tells this run's files in
        # the job directory from those of another job with the same id (job_incarnation.py).
        # And the warning's lead, as slurm/classify.sbatch exports it: one inherited from the submitting shell
        # would contradict the warning grace that submit derived from the lead (warning_grace.resolve_warning_grace).
        params["slurm_setup"] = [JOB_TOKEN_EXPORT, f"export {WARNING_LEAD_ENV}={options.warning_lead_s()}"]
    executor.update_parameters(**params)
    return executor


def submit(options: SubmitOptions, function: Callable[..., Any], *args: Any) -> Any:
    """Submit `function(*args)` (run once per node) and return the submitit job."""
    job = make_executor(options).submit(function, *args)
    logger.info("submitted job %s (%d node(s)); logs in %s", job.job_id, options.nodes, options.folder)
    return job


def parse_sbatch_params(pairs: list[str]) -> dict[str, Any]:
    """`KEY=VALUE` strings (e.g. account=abc, qos=high, exclusive) into submitit's additional parameters."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = sbatch_key(key)
        if not key:
            raise ConfigError(
                f"bad --sbatch parameter {pair!r}", hint="use KEY=VALUE, e.g. --sbatch account=abc"
            )
        params[key] = value if sep else True
    return params
