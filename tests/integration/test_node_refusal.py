"""A node of a Slurm job that refuses its options (a ConfigError on that node only) before rank 0 has made the
job directory: the other nodes stop at once, naming it and its error, instead of after --worker-timeout.
Two `hpc-classify node` processes with srun's variables, on this machine: no Slurm."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from driver_support import CLI, cli_env, make_corpus

WORKER_TIMEOUT = 120  # what the nodes would wait for each other without the refusal record
PROMPTLY = 60  # a hang guard with room for a busy 2-core machine, well under WORKER_TIMEOUT
NODES = ("node1", "node2")
REFUSED = "--rmm-pool-size given with --device cpu: node {node} starts CPU workers"


def _node_env(rank: int) -> dict[str, str]:
    env = {k: v for k, v in cli_env().items() if not k.startswith(("SLURM", "SUBMITIT"))}
    env.update(
        SUBMITIT_EXECUTOR="slurm",
        SLURM_JOB_ID="77",
        SLURM_JOB_NODELIST="node[1-2]",
        SLURM_JOB_NUM_NODES="2",
        SLURM_STEP_ID="0",
        SLURM_STEP_NODELIST="node[1-2]",
        SLURM_STEP_NUM_NODES="2",
        SLURM_NTASKS="2",
        SLURM_PROCID=str(rank),
        SLURM_NODEID=str(rank),
        SLURM_LOCALID="0",
        SLURMD_NODENAME=NODES[rank],
        HPC_CLASSIFY_JOB_TOKEN="token-of-this-run",
    )
    return env


@pytest.mark.parametrize("refusing", [0, 1], ids=["rank0-refuses", "rank1-refuses"])
def test_the_other_nodes_stop_at_once_naming_the_node_that_refused(tmp_path, refusing: int) -> None:
    make_corpus(tmp_path / "in", n_files=1, docs_per_file=2)
    run = ["--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--device", "cpu"]
    procs = []
    for rank in (0, 1):
        refused = ["--rmm-pool-size", "1GB"] if rank == refusing else []
        argv = [*CLI, "node", "--worker-timeout", str(WORKER_TIMEOUT), *refused, "--", *run]
        log = open(tmp_path / f"{NODES[rank]}.log", "w")  # noqa: SIM115 - closed with the test's files
        procs.append(subprocess.Popen(argv, env=_node_env(rank), stdout=log, stderr=subprocess.STDOUT))
    started = time.monotonic()
    try:
        codes = [proc.wait(timeout=max(1.0, PROMPTLY - (time.monotonic() - started))) for proc in procs]
    except subprocess.TimeoutExpired:
        codes = None
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    logs = [(tmp_path / f"{node}.log").read_text() for node in NODES]
    assert codes is not None, f"still waiting after {PROMPTLY} s:\n" + "\n".join(t[-2000:] for t in logs)

    node = NODES[refusing]
    other = 1 - refusing
    assert codes[refusing] == 2, logs[refusing][-3000:]
    assert REFUSED.format(node=node) in logs[refusing]
    if refusing == 0:  # the other node: rank 0 speaks for the job
        assert codes[other] == 0, logs[other][-3000:]
        assert f"rank 0 refused its options ({node}: {REFUSED.format(node=node)}" in logs[other]
    else:  # rank 0 fails as for a setting of its own, naming the node
        assert codes[other] == 2, logs[other][-3000:]
        assert f"node {node} refused its options: {REFUSED.format(node=node)}" in logs[other]
    assert not [p for p in tmp_path.rglob("*") if p.name == "node-exit.json" and node not in str(p)]
    assert os.path.exists(tmp_path / "out" / "_jobs" / "77" / node / "node-exit.json")
