"""What `hpc-classify submit`'s job function hands submitit on each node: rank 0's code decides the job's
outcome, so only rank 0 raises for a non-zero code (another node's raised error would stay in submitit's
result file of its task across a requeue, and be read as the outcome of the restarted job)."""

from __future__ import annotations

import pytest

from hpc_classify.cli import node, submit
from hpc_classify.cluster import slurm_env
from hpc_classify.cluster.slurm_node import NodeOptions


@pytest.mark.parametrize(("rank", "code"), [(0, 0), (0, 3), (1, 0), (1, 3), (2, 1)])
def test_only_rank0_raises_for_a_non_zero_code(monkeypatch, rank: int, code: int) -> None:
    monkeypatch.setattr(node, "run_this_node", lambda options, config, stop: code)
    monkeypatch.setattr(slurm_env, "task_rank", lambda: rank)
    entry = submit.NodeEntry(NodeOptions(job_root="out/_jobs"), object())  # the config goes to run_this_node
    if rank == 0 and code:
        with pytest.raises(RuntimeError, match=f"hpc-classify node exited with code {code}"):
            entry()
    else:
        assert entry() == code


def test_submit_returns_the_drivers_exit_code_that_rank0_reported(tmp_path) -> None:
    """submitit hands the task's failure back as text: `submit` reads rank 0's code from it (4: the output
    is unwritable, 3: interrupted, as `hpc-classify run` returns them), 1 for a failure of anything else."""
    import sys

    import cloudpickle
    import submitit
    from submitit.core.utils import FailedJobError

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the job's function lives in this test
    executor = submitit.LocalExecutor(folder=str(tmp_path / "%j"))
    for code in (2, 3, 4):
        job = executor.submit(_rank0_reports, code)
        with pytest.raises(FailedJobError, match=f"{submit.NODE_EXITED} {code}") as failure:
            job.results()
        assert submit.job_exit_code(str(failure.value)) == code
    assert submit.job_exit_code("Traceback ...\nMemoryError") == 1


def _rank0_reports(code: int) -> None:
    raise RuntimeError(f"{submit.NODE_EXITED} {code}; see the job's logs")


def test_rank0_returns_the_exit_code_of_the_drivers_error(monkeypatch, capsys) -> None:
    """An output that cannot be written is 4 from `hpc-classify node` too (it was 2 for every error)."""
    from types import SimpleNamespace

    from hpc_classify import api
    from hpc_classify.errors import ConfigError, OutputWriteError

    for error, code in ((OutputWriteError("/out/_lock", "Permission denied"), 4), (ConfigError("bad"), 2)):

        def classify(config, stop=None, error=error):
            raise error

        monkeypatch.setattr(api, "classify", classify)
        monkeypatch.setattr(node.dataclasses, "replace", lambda config, **changes: config)
        assert node.run_driver(SimpleNamespace(), "scheduler.json") == code
    assert "/out/_lock" in capsys.readouterr().err
