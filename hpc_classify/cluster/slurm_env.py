"""Where this task stands in its Slurm job: the one module that reads SLURM_* (through
`submitit.JobEnvironment` where it fits) and passes plain values down."""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass

from hpc_classify.cluster.local import available_cores
from hpc_classify.errors import ConfigError

# Slurm exports no start time before 23.02 (SLURM_JOB_START_TIME): a batch script that runs `hpc-classify node`
# exports this variable before `srun` instead, fresh in every run of the script (a requeue runs it again).
# slurm/classify.sbatch has the same line; submit.py hands it to submitit's sbatch script.
JOB_TOKEN_VARIABLE = "HPC_CLASSIFY_JOB_TOKEN"
JOB_TOKEN_EXPORT = f'export {JOB_TOKEN_VARIABLE}="$(date +%s.%N)-$$"'


def incarnation_token(job_id: str, restart_count: int) -> str:
    """The same string in every task of this run of the job, and in no other run that has the same job id
    (ids are reused after a slurmctld state reset, and by two clusters that share a file system): the
    cluster, the job id and restart, the job's start (Slurm's, else the batch script's token) and the
    step. Without a start (a batch script of one's own, or `salloc`, on Slurm < 23.02) the rest still tells
    apart two steps of one allocation (`srun ... hpc-classify node` twice) and two clusters by name, not a
    job whose id the same cluster reused after a state reset: see job_incarnation.py."""
    start = os.environ.get("SLURM_JOB_START_TIME") or os.environ.get(JOB_TOKEN_VARIABLE) or "no start"
    cluster = os.environ.get("SLURM_CLUSTER_NAME", "")
    step = os.environ.get("SLURM_STEP_ID", "")
    return f"{cluster}:{job_id}.{restart_count}:{start}:step {step}"


def job_run() -> tuple[str, int]:
    """("<cluster>:<job id>", restart count) of the Slurm job this process runs in; ("", -1) outside one.
    The cluster name tells apart two clusters whose job ids meet on one file system."""
    job_id = os.environ.get("SLURM_JOB_ID")
    if not job_id:
        return "", -1
    cluster = os.environ.get("SLURM_CLUSTER_NAME", "")
    return f"{cluster}:{job_id}", int(os.environ.get("SLURM_RESTART_COUNT") or 0)


def slurm_job_id() -> str | None:
    """The Slurm job id this process runs in, None outside a job."""
    return os.environ.get("SLURM_JOB_ID") or None


def slurm_conf_path() -> str:
    """The slurm.conf this job's Slurm commands read: SLURM_CONF, else the usual place."""
    return os.environ.get("SLURM_CONF") or "/etc/slurm/slurm.conf"


def task_rank() -> int:
    """This task's rank in its step or job: SLURM_PROCID under srun (the step's rank, which submitit's Slurm
    environment reads too), else submitit's (its local executor), else 0 (a task of its own). A SLURM_PROCID
    that is no whole number is a ConfigError naming it, on every task, before anything starts."""
    procid = os.environ.get("SLURM_PROCID")
    if procid:
        if not (procid.isascii() and procid.isdigit()):
            raise ConfigError(
                f"SLURM_PROCID={procid!r} is not a task rank (a whole number >= 0)",
                hint="srun sets it in each task: start `hpc-classify node` with srun, without setting SLURM_PROCID",
            )
        return int(procid)
    import submitit

    try:
        return submitit.JobEnvironment().global_rank
    except RuntimeError:  # neither Slurm nor submitit: the only task
        return 0


def current_node_name() -> str:
    """The Slurm node name under Slurm (emulated nodes share one host name), else the host name."""
    return os.environ.get("SLURMD_NODENAME") or socket.gethostname()


@dataclass(frozen=True)
class NodeIdentity:
    """Who this task is in the job. Node names, not host names: emulated nodes share one host."""

    rank: int
    num_nodes: int
    node_name: str
    node_names: tuple[str, ...]
    job_id: str
    restart_count: int
    incarnation: str | None = None  # incarnation_token(); None: files of another run are not told apart

    @classmethod
    def from_environment(cls) -> NodeIdentity:
        """Read the task's place through submitit (Slurm, or its local executor); else a 1-node job. Under
        srun the nodes are the step's (SLURM_STEP_NODELIST), not the job's: rank 0 waits for their workers."""
        import submitit

        if "SLURM_JOB_ID" in os.environ and "SUBMITIT_EXECUTOR" not in os.environ:
            # submitit recognises Slurm only through this variable (its own sbatch scripts export it).
            os.environ["SUBMITIT_EXECUTOR"] = "slurm"
        rank = task_rank()  # before submitit's: a bad SLURM_PROCID is refused by name, not by a ValueError
        try:
            env = submitit.JobEnvironment()
        except RuntimeError:  # neither Slurm nor submitit: a single-node run on this machine
            host = socket.gethostname()
            return cls(0, 1, host, (host,), f"local-{os.getpid()}", 0, uuid.uuid4().hex)
        node_name = current_node_name() if "SLURMD_NODENAME" in os.environ else env.hostname
        names = tuple(env.hostnames) if env.cluster == "slurm" else (node_name,)
        num_nodes = env.num_nodes
        if env.cluster == "slurm" and (step := step_nodes()) is not None:
            num_nodes, names = step  # submitit reads the job's; the ranks (SLURM_PROCID) are the step's
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        job_id = str(env.job_id)
        if env.cluster == "slurm":
            token = incarnation_token(job_id, restarts)
        else:  # submitit's local executor: one task, so any fresh token is agreed on
            token = uuid.uuid4().hex if env.num_tasks == 1 else None
        return cls(rank, num_nodes, node_name, names, job_id, restarts, token)


# What a batch job's environment hands srun as its task count (srun's input variables; --ntasks wins over
# --ntasks-per-node): `sbatch -n 8` or `--ntasks-per-node=8` starts several node entries on one node.
INHERITED_TASK_COUNTS = ("SLURM_NTASKS", "SLURM_NPROCS", "SLURM_NTASKS_PER_NODE")


def refuse_several_tasks_per_node() -> None:
    """`hpc-classify node` is one task per node of srun's step: more tasks than nodes (SLURM_STEP_NUM_TASKS over
    SLURM_STEP_NUM_NODES) would start several launchers on a node, each with the same worker names, or ranks
    that wait for each other's workers. Refused (ConfigError: exit 2) before anything starts, on every task."""
    tasks, nodes = os.environ.get("SLURM_STEP_NUM_TASKS"), os.environ.get("SLURM_STEP_NUM_NODES")
    if not (tasks and nodes and tasks.isdigit() and nodes.isdigit()) or int(tasks) <= int(nodes):
        return
    raise ConfigError(
        f"srun started {tasks} tasks on {nodes} node(s) (SLURM_STEP_NUM_TASKS={tasks}, "
        f"SLURM_STEP_NUM_NODES={nodes}): `hpc-classify node` runs as one task per node",
        hint="start it with `srun --ntasks-per-node=1` and no task count: a batch job's "
        f"{', '.join(INHERITED_TASK_COUNTS)} (`sbatch -n`, or `--ntasks-per-node` above 1) set srun's; "
        "unset them for srun (`env -u SLURM_NTASKS -u SLURM_NPROCS srun ...`, as slurm/classify.sbatch does)",
    )


def step_nodes() -> tuple[int, tuple[str, ...]] | None:
    """srun's step: its node count and node names; None outside a step. A run of the launcher is one step,
    whose nodes may be fewer than the job's (`srun -N2` in `salloc -N4`; a --no-kill job that lost a node
    before srun started): rank 0 waits for the workers of these nodes only."""
    listed, count = os.environ.get("SLURM_STEP_NODELIST"), os.environ.get("SLURM_STEP_NUM_NODES")
    if not (listed and count):
        return None
    from submitit.slurm.slurm import _parse_node_list  # submitit's parser of SLURM_JOB_NODELIST

    return int(count), tuple(_parse_node_list(listed))


def node_cores() -> int:
    """Cores Slurm gave this node's task (all of the node with --exclusive), else the visible ones."""
    allocated = os.environ.get("SLURM_CPUS_ON_NODE")
    return min(int(allocated), available_cores()) if allocated else available_cores()
