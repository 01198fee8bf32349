"""What `hpc-classify submit`'s job function hands submitit on each node: rank 0's code decides the job's
outcome, so only rank 0 raises for a non-zero code (another node's raised error would stay in submitit's
result file of its task across a requeue, and be read as the outcome of the restarted job)."""

from __future__ import annotations

import pytest

from hpc_classify.cli import node, submit
from hpc_classify.cluster.slurm_node import NodeOptions


@pytest.mark.parametrize(("rank", "code"), [(0, 0), (0, 3), (1, 0), (1, 3), (2, 1)])
def test_only_rank0_raises_for_a_non_zero_code(monkeypatch, rank: int, code: int) -> None:
    monkeypatch.setattr(node, "run_this_node", lambda options, config, stop: code)
    monkeypatch.setattr(submit, "job_rank", lambda: rank)
    entry = submit.NodeEntry(NodeOptions(job_root="out/_jobs"), object())  # the config goes to run_this_node
    if rank == 0 and code:
        with pytest.raises(RuntimeError, match=f"hpc-classify node exited with code {code}"):
            entry()
    else:
        assert entry() == code
