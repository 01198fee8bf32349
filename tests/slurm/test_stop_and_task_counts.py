"""slurm/classify.sbatch on the real test cluster: a user's graceful stop (`scancel -s TERM <job>`, which
signals the job's steps and not the batch script) ends the job without a requeue, on one node and on three,
and a resubmission resumes; and `sbatch
--ntasks-per-node=2` (or `-n 6`), which srun used to inherit as its task count, still runs one `hpc-classify
node` per node."""

from __future__ import annotations

import pytest
from test_launcher import (
    NODES,
    SBATCH_SCRIPT,
    assert_complete_exactly_once,
    job_log,
    markers,
    run_args,
    wait_until,
    write_corpus,
)


@pytest.mark.parametrize("nodes", [1, 3])
def test_a_term_to_the_jobs_steps_ends_the_job_without_a_requeue(
    slurm_cluster, tiny_domain_model, tmp_path, gated, nodes: int
) -> None:
    gate, env = gated
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    args = run_args(corpus, out, tiny_domain_model, "--group-bytes", "0", "--tasks-per-worker", "1")
    job = slurm_cluster.sbatch(
        [f"-N{nodes}", "-o", "job-%j.out", str(SBATCH_SCRIPT), *args], cwd=tmp_path, env=env
    )
    wait_until(
        lambda: all(list(gate.glob(f"started-{node}-*")) for node in NODES[:nodes]),
        240,
        "a file in flight on every node of the job",
    )
    slurm_cluster.run(["scancel", "--signal=TERM", job])  # the steps, not the batch script (no --batch)
    wait_until(lambda: "SIGTERM received" in job_log(tmp_path, job), 60, "the driver to take the stop")
    (gate / "hold").unlink()
    state = slurm_cluster.wait_job(job, timeout=300)
    log = job_log(tmp_path, job)
    # Slurm signals every process of the steps: the scheduler and workers die of the TERM too, so the driver,
    # its files all held at the gate, stops having finished none (exit 5, never requeued). A stop after
    # progress (exit 3 with rank 0's "stop" report) is the script's unit test (tests/unit/test_sbatch_script.py).
    assert state == "FAILED", log
    assert "SIGTERM received" in log and "exit code 5" in log, log
    assert f"hpc-classify: requeueing job {job}" not in log
    assert slurm_cluster.job_info(job)["Restarts"] == "0", log
    done = len(markers(out)) if (out / "_markers").exists() else 0
    assert done < 9, log  # stopped, not finished
    # Submitting the same command again resumes.
    again = slurm_cluster.sbatch([f"-N{nodes}", "-o", "job-%j.out", str(SBATCH_SCRIPT), *args], cwd=tmp_path)
    assert slurm_cluster.wait_job(again, timeout=300) == "COMPLETED", job_log(tmp_path, again)
    assert_complete_exactly_once(corpus, out)


def test_a_task_count_given_to_sbatch_still_runs_one_node_entry_per_node(
    slurm_cluster, tiny_domain_model, tmp_path
) -> None:
    """`sbatch -n 6 --ntasks-per-node=2` puts SLURM_NTASKS/SLURM_NPROCS (6) in the job's environment; srun took
    them as its --ntasks, which wins over --ntasks-per-node=1: two node entries per node (now refused: exit 2)."""
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    tasks = ["-n", "6", "--ntasks-per-node=2"]
    job = slurm_cluster.sbatch(
        ["-N3", *tasks, "-o", "job-%j.out", str(SBATCH_SCRIPT), *run_args(corpus, out, tiny_domain_model)],
        cwd=tmp_path,
    )
    assert slurm_cluster.wait_job(job, timeout=240) == "COMPLETED", job_log(tmp_path, job)
    log = job_log(tmp_path, job)
    assert "rank 0 of 3" in log and "rank 3 of" not in log and "SLURM_STEP_NUM_TASKS" not in log, log
    found = assert_complete_exactly_once(corpus, out)
    assert {m["node"] for m in found} == set(NODES)


def test_a_step_with_more_tasks_than_nodes_is_refused_by_every_task(
    slurm_cluster, tiny_domain_model, tmp_path
) -> None:
    """A batch script of one's own that starts two tasks per node: each refuses, exit 2, naming the variables."""
    corpus, out = write_corpus(tmp_path / "in"), tmp_path / "out"
    script = tmp_path / "own.sbatch"
    node = "srun --ntasks-per-node=2 hpc-classify node -- " + " ".join(
        run_args(corpus, out, tiny_domain_model)
    )
    script.write_text(f'#!/bin/bash\n{node}\necho "step exit $?"\n')
    job = slurm_cluster.sbatch(["-N3", "--ntasks-per-node=2", "-o", "own-%j.out", str(script)], cwd=tmp_path)
    slurm_cluster.wait_job(job, timeout=120)
    log = (tmp_path / f"own-{job}.out").read_text()
    assert "step exit 2" in log, log
    assert "srun started 6 tasks on 3 node(s) (SLURM_STEP_NUM_TASKS=6, SLURM_STEP_NUM_NODES=3)" in log, log
    assert not (out / "_jobs").exists() or not any((out / "_jobs").iterdir()), log  # nothing started
