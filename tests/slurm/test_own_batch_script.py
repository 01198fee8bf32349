"""`hpc-classify node` from a batch script of one's own, on the real test cluster (Slurm 22.05: no
SLURM_JOB_START_TIME) and without the HPC_CLASSIFY_JOB_TOKEN export that slurm/classify.sbatch has, as in
`salloc`: the steps that the script starts with srun are the runs, not the job (two steps in one allocation,
a step on fewer nodes than the job)."""

from __future__ import annotations

from pathlib import Path

from test_launcher import assert_complete_exactly_once, run_args, write_corpus

SRUN = "srun --ntasks-per-node=1 --no-kill --kill-on-bad-exit=0"


def _own_script(tmp_path: Path, body: list[str]) -> Path:
    script = tmp_path / "own.sbatch"
    script.write_text("#!/bin/bash\nunset HPC_CLASSIFY_JOB_TOKEN\n" + "\n".join(body) + "\n")
    return script


def test_two_steps_of_one_allocation_are_two_runs(slurm_cluster, tiny_domain_model, tmp_path) -> None:
    """Both steps use OUT/_jobs/<job id>/. The second step's other nodes must not leave at the first step's
    `shutdown` (its rank 0 would wait for their workers until --worker-timeout and fail with 2)."""
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    node = f"{SRUN} hpc-classify node --worker-timeout 90 -- " + " ".join(
        run_args(corpus, out, tiny_domain_model)
    )
    script = _own_script(tmp_path, [node, 'echo "step 0 exit $?"', node, 'echo "step 1 exit $?"'])
    job = slurm_cluster.sbatch(["-N3", "-o", "own-%j.out", str(script)], cwd=tmp_path)
    log_path = tmp_path / f"own-{job}.out"
    assert slurm_cluster.wait_job(job, timeout=400) == "COMPLETED", log_path.read_text()
    log = log_path.read_text()
    assert "step 0 exit 0" in log and "step 1 exit 0" in log, log
    assert "belonged to another run of this job id" in log, log  # step 1's rank 0 set step 0's files aside
    assert len(list((out / "_jobs").glob(f"{job}.replaced-*"))) == 1
    assert_complete_exactly_once(corpus, out)


def test_a_step_on_2_of_the_jobs_3_nodes_waits_for_those_2(
    slurm_cluster, tiny_domain_model, tmp_path
) -> None:
    """`srun -N2` in a 3-node job (as in `salloc -N3`): rank 0 must wait for the workers of the step's nodes,
    not for the third node of the job, which runs no task of the step (it failed with 2 at --worker-timeout)."""
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    node = f"{SRUN} -N2 hpc-classify node --worker-timeout 90 -- " + " ".join(
        run_args(corpus, out, tiny_domain_model)
    )
    script = _own_script(tmp_path, [node])
    job = slurm_cluster.sbatch(["-N3", "-o", "own-%j.out", str(script)], cwd=tmp_path)
    log_path = tmp_path / f"own-{job}.out"
    assert slurm_cluster.wait_job(job, timeout=240) == "COMPLETED", log_path.read_text()
    found = assert_complete_exactly_once(corpus, out)
    log = log_path.read_text()
    assert "rank 0 of 2" in log and len({m["node"] for m in found}) <= 2, log
