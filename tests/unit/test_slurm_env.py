"""Where a task stands in its Slurm job (cluster/slurm_env.py), read from the variables that srun sets in a
task, without Slurm: the node launcher's runs are srun's steps, which may span fewer nodes than the job."""

from __future__ import annotations

import re

import pytest

from hpc_classify.cluster.slurm_env import NodeIdentity, task_rank
from hpc_classify.cluster.slurm_node import NodeLauncher, NodeOptions
from hpc_classify.errors import ConfigError

JOB = {  # `salloc -N4`, or sbatch -N4
    "SLURM_JOB_ID": "42",
    "SLURM_JOB_NODELIST": "node[1-4]",
    "SLURM_JOB_NUM_NODES": "4",
    "SUBMITIT_EXECUTOR": "slurm",
}
STEP = {  # then `srun -N2 --ntasks-per-node=1 hpc-classify node`, on node2 and node4; this task is node4's
    "SLURM_STEP_ID": "3",
    "SLURM_STEP_NODELIST": "node[2,4]",
    "SLURM_STEP_NUM_NODES": "2",
    "SLURM_NTASKS": "2",
    "SLURM_PROCID": "1",
    "SLURM_NODEID": "1",
    "SLURMD_NODENAME": "node4",
}


@pytest.fixture
def task_environment(monkeypatch):
    for name in (
        "SLURM_JOB_START_TIME",
        "HPC_CLASSIFY_JOB_TOKEN",
        "SLURM_RESTART_COUNT",
        "SLURM_CLUSTER_NAME",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**JOB, **STEP}.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def test_a_step_on_2_nodes_of_a_4_node_job_is_a_run_on_those_2_nodes(task_environment, tmp_path) -> None:
    """Rank 0 waits for the workers of every node in the identity: the job's 4 would keep it waiting for
    node1 and node3, which run no task of the step, until --worker-timeout (then exit 2)."""
    identity = NodeIdentity.from_environment()
    assert (identity.rank, identity.node_name, identity.job_id) == (1, "node4", "42")
    assert (identity.num_nodes, identity.node_names) == (2, ("node2", "node4"))
    launcher = NodeLauncher(NodeOptions(job_root=str(tmp_path), device="cpu"), identity)
    assert launcher.roster.node_names == ("node2", "node4")
    assert launcher.job_dir == tmp_path / "42"  # the job's directory, as before


def test_without_step_variables_the_jobs_nodes_are_the_run(task_environment) -> None:
    """A task started otherwise than by srun (no SLURM_STEP_*): the job's nodes, as submitit reads them."""
    for name in ("SLURM_STEP_NODELIST", "SLURM_STEP_NUM_NODES"):
        task_environment.delenv(name)
    identity = NodeIdentity.from_environment()
    assert (identity.num_nodes, identity.node_names) == (4, ("node1", "node2", "node3", "node4"))


def test_rank0_of_the_step_waits_for_the_steps_nodes_only(task_environment, tmp_path) -> None:
    task_environment.setenv("SLURM_PROCID", "0")
    task_environment.setenv("SLURMD_NODENAME", "node2")
    launcher = NodeLauncher(
        NodeOptions(job_root=str(tmp_path), device="cpu"), NodeIdentity.from_environment()
    )
    for node in ("node2", "node4"):  # each node of the step publishes how many workers it starts
        launcher.paths.node_dir(node).mkdir(parents=True)
        launcher.incarnation.write(launcher.paths.node_workers(node), {"workers": 1})
    assert launcher.roster.missing_nodes(["node2-0", "node4-0"]) == []


def test_a_step_with_more_tasks_than_nodes_is_refused_naming_the_variables(
    task_environment, tmp_path, capsys
) -> None:
    """`sbatch --ntasks-per-node=8` in a script of one's own: srun inherits the task count and starts 8 node
    entries per node, with the same worker names. Each refuses (exit 2) before it starts anything."""
    from hpc_classify.cli.main import main
    from hpc_classify.cluster.slurm_env import refuse_several_tasks_per_node
    from hpc_classify.errors import ConfigError

    task_environment.setenv("SLURM_STEP_NUM_NODES", "2")
    task_environment.setenv("SLURM_STEP_NUM_TASKS", "2")
    refuse_several_tasks_per_node()  # one per node: fine
    task_environment.setenv("SLURM_STEP_NUM_TASKS", "16")
    with pytest.raises(ConfigError, match="SLURM_STEP_NUM_TASKS=16, SLURM_STEP_NUM_NODES=2") as refused:
        refuse_several_tasks_per_node()
    assert "SLURM_NTASKS, SLURM_NPROCS, SLURM_NTASKS_PER_NODE" in refused.value.hint
    argv = [
        "node",
        "--job-dir",
        str(tmp_path),
        "--",
        "--input",
        str(tmp_path),
        "--output",
        str(tmp_path / "o"),
    ]
    assert main([*argv, "--device", "cpu"]) == 2
    assert "hpc-classify node: error: srun started 16 tasks on 2 node(s)" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []  # nothing started, no job directory taken


@pytest.mark.parametrize("procid", ["node3", "-1", "1.0"])
def test_a_task_rank_that_is_no_whole_number_is_refused_by_name(
    task_environment, tmp_path, capsys, procid
) -> None:
    """The node entry reads its rank before anything starts, in one place (slurm_env.task_rank): a bad
    SLURM_PROCID is exit 2 with a message naming it, not a ValueError's traceback (rank 0 would wait for it)."""
    from hpc_classify.cli.main import main

    task_environment.setenv("SLURM_PROCID", procid)
    with pytest.raises(ConfigError, match=rf"^SLURM_PROCID='{re.escape(procid)}' is not a task rank"):
        NodeIdentity.from_environment()
    argv = ["node", "--", "--input", str(tmp_path), "--output", str(tmp_path / "out"), "--device", "cpu"]
    assert main(argv) == 2
    assert f"hpc-classify node: error: SLURM_PROCID='{procid}' is not a task rank" in capsys.readouterr().err


def test_the_task_rank_is_srun_s_then_0_outside_a_job(task_environment) -> None:
    assert task_rank() == 1  # STEP's SLURM_PROCID
    for name in ("SLURM_PROCID", "SLURM_JOB_ID", "SUBMITIT_EXECUTOR"):
        task_environment.delenv(name)
    assert task_rank() == 0
