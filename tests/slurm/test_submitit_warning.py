"""`hpc-classify submit` at its time limit, on the real test cluster: what Slurm does `slurm_signal_delay_s`
before a submitit job's end (USR2 to every process of the job step, the scheduler and the workers included).
The run must drain its files in flight, not die mid-file, and only then let submitit requeue the job, which
resumes from the markers. A gate (tests/slurm/gate_preload.py) holds the files in flight until the signal has
arrived, so that some files are always left for the requeued job."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from test_launcher import (
    FILES,
    INTERRUPTED_RUN,
    assert_complete_exactly_once,
    run_args,
    wait_for_a_file_in_flight_on_every_node,
    wait_until,
    write_corpus,
)

from hpc_classify.cluster.job_layout import submitit_dir


def submitit_logs(out: Path, job: str) -> str:
    """Every task's stdout and stderr that submitit kept for `job` (appended across its requeues), in the
    submission's folder `<job id>-<time>-<random>` (job_layout.submitit_job_folder)."""
    logs = sorted(Path(submitit_dir(str(out))).glob(f"{job}-*/*_log.*"))
    return "\n".join(f"=== {p.name}\n{p.read_text(errors='replace')}" for p in logs)


def test_submitit_warning_drains_the_run_then_submitit_requeues_it(
    slurm_cluster, tiny_domain_model, tmp_path, gated
) -> None:
    corpus = write_corpus(tmp_path / "in")
    gate, gate_env = gated
    env = {**slurm_cluster.env, **gate_env}
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hpc_classify.cli.main", "submit", "--nodes", "3", "--time", "10"]
    cmd += ["--partition", "debug", "--no-wait", "--", *run_args(corpus, out, tiny_domain_model)]
    cmd += ["--group-bytes", "0", "--tasks-per-worker", "1"]  # 3 files in flight, 6 left to the requeue
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    job = re.search(r"submitted job (\d+)", proc.stdout).group(1)
    wait_for_a_file_in_flight_on_every_node(gate)

    slurm_cluster.run(["scancel", "--signal=USR2", job])
    wait_until(lambda: "SIGUSR2 received" in submitit_logs(out, job), 60, "the driver to take the warning")
    (gate / "hold").unlink()  # the files in flight may finish now
    assert slurm_cluster.wait_job(job, timeout=300) == "COMPLETED", submitit_logs(out, job)

    log = submitit_logs(out, job)
    assert "SIGUSR2 received: no new files will be submitted; finishing the files in flight" in log
    first = INTERRUPTED_RUN.search(log)  # the first run ended by itself: its files in flight finished
    assert first is not None, log
    processed, failed, remaining = map(int, first.groups())
    assert (processed, failed, remaining) == (3, 0, FILES - 3), first.group(0)
    assert "submitit checkpoints and requeues the job" in log
    assert slurm_cluster.job_info(job)["Restarts"] == "1", log
    assert "KilledWorker" not in log and "Worker process died" not in log, log
    assert_complete_exactly_once(corpus, out)
