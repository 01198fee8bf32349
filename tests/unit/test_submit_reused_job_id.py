"""`hpc-classify submit` when Slurm hands out a job id that an earlier job had (after a slurmctld state reset, or
on two clusters that share the output directory). submitit takes a job as done as soon as its task's result
pickle exists in the job's folder: a folder named by the job id alone would hold the earlier job's pickle, and
`submit` would report that job's result while the new one is still pending or running. No Slurm here: fake
`sbatch`, `srun` and `sacct` on PATH, submitit's own executor and job classes."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
from submitit.core import utils as submitit_utils
from submitit.slurm.slurm import SlurmInfoWatcher, SlurmJob

from hpc_classify.cli.main import main

JOB_ID = "4242"  # the id this fake Slurm hands out to every submission


def _fake_slurm(bin_dir: Path, state: str) -> None:
    """sbatch always answers JOB_ID; sacct says the job is in `state` (and wrote no result of its own)."""
    bin_dir.mkdir()
    scripts = {
        "sbatch": f"echo 'Submitted batch job {JOB_ID}'",
        "srun": "exit 0",
        "sacct": f"printf 'JobID|State|NodeList\\n{JOB_ID}|{state}|node1\\n'",
    }
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _stale_result(folder: Path) -> None:
    """What submitit leaves for task 0 of a job that succeeded in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    submitit_utils.cloudpickle_dump(("success", 0), folder / f"{JOB_ID}_0_result.pkl")


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    _fake_slurm(tmp_path / "bin", "FAILED")  # the new job ended without a result: submit must say so
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}:{os.environ['PATH']}")
    monkeypatch.setattr(SlurmJob, "watcher", SlurmInfoWatcher(delay_s=600))  # no state cached by other tests
    monkeypatch.setattr(SlurmJob, "_results_timeout_s", 0)  # no wait for a result pickle that never comes
    corpus = tmp_path / "in"
    corpus.mkdir()
    (corpus / "a.jsonl").write_text('{"text": "x"}\n')
    return corpus


def _submit(corpus: Path, out: Path, *options: str) -> list[str]:
    return ["submit", "--nodes", "1", "--time", "10", *options, "--"] + [
        "--input",
        str(corpus),
        "--output",
        str(out),
        "--classifier",
        "domain",
    ]


def _submit_and_wait(corpus: Path, out: Path, capsys) -> Path:
    """Submit and wait as `hpc-classify submit` does; the new job (sacct: FAILED) must be reported as failed."""
    code = main(_submit(corpus, out))
    printed = capsys.readouterr().out
    assert f"job {JOB_ID} finished" not in printed, printed
    assert code == 1 and f"job {JOB_ID} failed" in printed, printed
    assert "has not produced any output" in printed and "FAILED" in printed, printed
    folder = Path(re.search(r"logs: (\S+)", printed).group(1)).parent
    assert (folder / f"{JOB_ID}_submitted.pkl").is_file()  # the new job reads its own submission
    return folder


def test_submit_does_not_read_the_result_of_an_earlier_job_with_the_same_id(fake_slurm, tmp_path, capsys):
    out = tmp_path / "out"
    jobs = out / "_jobs" / "submitit"
    _stale_result(jobs / JOB_ID)  # the layout before: <output>/_jobs/submitit/<job id>/
    first = _submit_and_wait(fake_slurm, out, capsys)
    assert first.parent == jobs and first.name.startswith(f"{JOB_ID}-")  # found by job id, as before

    _stale_result(first)  # the first job's result is there when Slurm hands its id to the next submission
    second = _submit_and_wait(fake_slurm, out, capsys)
    assert second != first and second.parent == jobs
