"""Where this task stands in its Slurm job: the one module that reads SLURM_* (through
`submitit.JobEnvironment` where it fits) and passes plain values down."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from hpc_classify.cluster.local import available_cores


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

    @classmethod
    def from_environment(cls) -> NodeIdentity:
        """Read the task's place through submitit (Slurm, or its local executor); else a 1-node job."""
        import submitit

        if "SLURM_JOB_ID" in os.environ and "SUBMITIT_EXECUTOR" not in os.environ:
            # submitit recognises Slurm only through this variable (its own sbatch scripts export it).
            os.environ["SUBMITIT_EXECUTOR"] = "slurm"
        try:
            env = submitit.JobEnvironment()
        except RuntimeError:  # neither Slurm nor submitit: a single-node run on this machine
            host = socket.gethostname()
            return cls(0, 1, host, (host,), f"local-{os.getpid()}", 0)
        node_name = current_node_name() if "SLURMD_NODENAME" in os.environ else env.hostname
        names = tuple(env.hostnames) if env.cluster == "slurm" else (node_name,)
        restarts = int(os.environ.get("SLURM_RESTART_COUNT") or 0)
        return cls(env.global_rank, env.num_nodes, node_name, names, str(env.job_id), restarts)


def node_cores() -> int:
    """Cores Slurm gave this node's task (all of the node with --exclusive), else the visible ones."""
    allocated = os.environ.get("SLURM_CPUS_ON_NODE")
    return min(int(allocated), available_cores()) if allocated else available_cores()
