"""slurm/classify.sbatch's own control flow, with `srun` and `scontrol` replaced by scripts that record what
they were asked: the moments a real Slurm cannot be made to hit on purpose (a warning signal that arrives
just as srun ends). The real-Slurm tests (tests/slurm/test_launcher.py) run the same script end to end."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "slurm" / "classify.sbatch"


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/bin/bash\n" + body)
    path.chmod(0o755)


def _run_script(
    root: Path,
    srun_body: str,
    command: list[str] | None = None,
    scontrol_status: int = 0,
    scontrol_sleep: float = 0,
    **env: str,
) -> tuple[subprocess.CompletedProcess, list[str]]:
    """Run the script (or `command`) with stub srun/scontrol; returns the result and scontrol's calls."""
    bin_dir = root / "bin"
    bin_dir.mkdir(parents=True)
    calls = root / "scontrol-calls"
    _stub(bin_dir, "srun", srun_body)
    _stub(bin_dir, "scontrol", f'echo "$*" >> {calls}\nsleep {scontrol_sleep}\nexit {scontrol_status}\n')
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "42",
        "SLURM_JOB_NODELIST": "node[1-3]",
        "HOME": str(root),
        **env,
    }
    argv = command or ["bash", str(SCRIPT), "--input", "IN"]
    # The default USR1 disposition: a signal ignored on entry cannot be trapped by bash (as under a node
    # launcher that ignores the warning signals).
    default_usr1 = lambda: signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # noqa: E731
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, preexec_fn=default_usr1)
    return proc, calls.read_text().splitlines() if calls.exists() else []


def test_a_warning_as_srun_ends_with_3_still_requeues_the_job_with_srun_status(tmp_path: Path) -> None:
    # srun (rank 0's driver drained by the warning) exits 3 right after the warning reaches the script, which
    # waits for srun meanwhile (with a bare `wait`, bash 5.2 lost srun's status then). The 1 s lets the script
    # start waiting; were it late, the test would pass without exercising the moment, never fail wrongly.
    proc, calls = _run_script(tmp_path, "trap '' USR1\nsleep 1\nkill -USR1 $PPID\nexit 3\n")
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert calls == ["requeue 42"], proc.stdout + proc.stderr
    assert "USR1 at" in proc.stdout and "requeueing job 42 (exit status 3)" in proc.stdout


def test_srun_status_other_than_3_is_the_script_status_without_a_requeue(tmp_path: Path) -> None:
    for code in (0, 5):
        proc, calls = _run_script(tmp_path / str(code), f"exit {code}\n")
        assert (proc.returncode, calls) == (code, []), proc.stdout + proc.stderr


def test_a_warning_before_srun_starts_neither_starts_the_run_nor_requeues(tmp_path: Path) -> None:
    # The environment setup (HPC_CLASSIFY_MODULE's `module load`, a shell function on Lmod sites) is where the
    # warning comes here. Untrapped there, it used to kill the script (no requeue); forwarded to an srun
    # started after it, it would reach tasks that have not set their handlers yet.
    srun_started = tmp_path / "srun-started"
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(f"module() {{ kill -USR1 $$; }}\nexport -f module\nexec bash {SCRIPT} --input IN\n")
    proc, calls = _run_script(
        tmp_path, f"touch {srun_started}\n", ["bash", str(wrapper)], HPC_CLASSIFY_MODULE="site/hpc-classify"
    )
    assert proc.returncode == 5, proc.stdout + proc.stderr  # as the driver stopped before any result
    # No requeue: with a time limit under the warning's offset it would requeue for ever.
    assert calls == [] and not srun_started.exists()
    assert "the warning came before the run started: not starting it, and not requeueing" in proc.stdout


def test_the_stop_before_any_result_code_5_is_not_requeued(tmp_path: Path) -> None:
    # The driver stopped before this run finished anything (the warning came during start-up): a restart with
    # the same time limit would stop alike, for ever.
    proc, calls = _run_script(tmp_path, "exit 5\n")
    assert (proc.returncode, calls) == (5, []), proc.stdout + proc.stderr


def test_a_failed_module_load_ends_the_job_before_srun_naming_the_module(tmp_path: Path) -> None:
    srun_started = tmp_path / "srun-started"
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text(
        f"module() {{ echo 'Lmod has detected the following error' >&2; return 1; }}\n"
        f"export -f module\nexec bash {SCRIPT} --input IN\n"
    )
    proc, calls = _run_script(
        tmp_path, f"touch {srun_started}\n", ["bash", str(wrapper)], HPC_CLASSIFY_MODULE="site/missing"
    )
    assert (proc.returncode, calls) == (2, []), proc.stdout + proc.stderr
    assert not srun_started.exists()
    assert "module load site/missing failed" in proc.stderr


def test_a_tmpdir_missing_on_the_node_falls_back_to_tmp(tmp_path: Path) -> None:
    # TMPDIR comes with the submitting shell's environment (--export=ALL): an outer job's, or a login node's.
    proc, calls = _run_script(tmp_path, "exit 0\n", TMPDIR=str(tmp_path / "not-here"))
    assert (proc.returncode, calls) == (0, []), proc.stdout + proc.stderr


def test_a_refused_requeue_is_said_and_the_status_kept(tmp_path: Path) -> None:
    proc, calls = _run_script(tmp_path, "exit 3\n", scontrol_status=1)
    assert (proc.returncode, calls) == (3, ["requeue 42"]), proc.stdout + proc.stderr
    assert "scontrol requeue failed (submitted with --no-requeue?)" in proc.stderr


def test_a_requeue_without_an_answer_is_bounded_and_not_called_refused(tmp_path: Path) -> None:
    # slurmctld busy (a preemption wave): the script must end before KillWait's SIGKILL, and must not say the
    # job cannot be requeued when the requeue may have happened.
    proc, calls = _run_script(tmp_path, "exit 3\n", scontrol_sleep=30, HPC_CLASSIFY_REQUEUE_TIMEOUT="1")
    assert (proc.returncode, calls) == (3, ["requeue 42"]), proc.stdout + proc.stderr
    assert "scontrol requeue got no answer within 1 s: job 42 may or may not be requeued" in proc.stderr
    assert "--no-requeue?" not in proc.stderr


def _srun_of_rank0_stopped_by(stop: str | None, preempted: bool, srun_status: int = 3) -> str:
    """A stub srun whose rank 0 writes its stop report as `hpc-classify node` does, then exits `srun_status`."""
    report = (
        "from hpc_classify.cluster.stop_report import report_stop; "
        f"report_stop(3, {stop!r}, '42', preempted=lambda job: {preempted})"
    )
    return f'"{sys.executable}" -c "{report}"\nexit {srun_status}\n'


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGINT"])
def test_a_users_term_or_int_to_the_steps_ends_the_job_without_a_requeue(tmp_path: Path, stop: str) -> None:
    """`scancel -s TERM <job>` (or INT) signals the job's steps, not this script: the driver drains and exits 3
    as after the warning, and the job the user stopped went back to the queue."""
    proc, calls = _run_script(tmp_path, _srun_of_rank0_stopped_by(stop, False), PYTHONPATH=str(REPO))
    assert (proc.returncode, calls) == (3, []), proc.stdout + proc.stderr
    assert f"not requeueing job 42 (exit status 3): {stop} stopped the run" in proc.stdout


@pytest.mark.parametrize(
    ("stop", "preempted", "why"),
    [
        ("SIGUSR1", False, "the time-limit or preemption warning"),
        (None, False, "no worker left for --worker-wait, or files left unfinished"),
        ("SIGTERM", True, "preempting job 42"),
    ],
    ids=["warning", "no-worker-left", "preemption-grace-sigterm"],
)
def test_a_resumable_stop_that_is_no_users_stop_is_requeued(
    tmp_path: Path, stop: str | None, preempted: bool, why: str
) -> None:
    proc, calls = _run_script(tmp_path, _srun_of_rank0_stopped_by(stop, preempted), PYTHONPATH=str(REPO))
    assert (proc.returncode, calls) == (3, ["requeue 42"]), proc.stdout + proc.stderr
    assert "requeueing job 42 (exit status 3: " in proc.stdout and why in proc.stdout


@pytest.mark.parametrize(("preempted", "requeues"), [(True, ["requeue 42"]), (False, [])])
def test_rank0s_report_decides_when_the_other_nodes_died_of_the_same_sigterm(
    tmp_path: Path, preempted: bool, requeues: list[str]
) -> None:
    """On several nodes the SIGTERM also kills the other nodes' tasks (they do not catch it): srun reports
    143, a signal's status, over rank 0's 3. Rank 0's word still decides; the script keeps srun's status."""
    srun = _srun_of_rank0_stopped_by("SIGTERM", preempted, srun_status=143)
    proc, calls = _run_script(tmp_path, srun, PYTHONPATH=str(REPO))
    assert (proc.returncode, calls) == (143, requeues), proc.stdout + proc.stderr
    said = (
        "requeueing job 42 (exit status 143: SIGTERM"
        if preempted
        else "not requeueing job 42 (exit status 143)"
    )
    assert said in proc.stdout


def test_without_a_report_from_rank0_a_3_is_requeued_and_the_report_is_removed(tmp_path: Path) -> None:
    # Rank 0 could not write it (its node's temporary directory is not this script's): the old rule.
    reports = tmp_path / "reports"
    srun = f'echo "$HPC_CLASSIFY_STOP_REPORT" > {reports}\nexit 3\n'
    proc, calls = _run_script(tmp_path, srun)
    assert (proc.returncode, calls) == (3, ["requeue 42"]), proc.stdout + proc.stderr
    named = Path(reports.read_text().strip())
    assert named.name == "stop-report" and not named.parent.exists()  # the script's directory, cleaned up


def test_srun_gets_one_task_per_node_and_the_scripts_environment_whatever_sbatch_was_given(
    tmp_path: Path,
) -> None:
    """`sbatch --ntasks-per-node=8` (or `-n 16`) leaves SLURM_NTASKS/SLURM_NPROCS in the job's environment, which
    srun reads as its --ntasks (winning over --ntasks-per-node=1): several `node` tasks per node. SBATCH_EXPORT=NONE
    leaves SLURM_EXPORT_ENV=NONE, and the tasks would get none of this script's environment (module load, token)."""
    seen_env, seen_args = tmp_path / "srun-env", tmp_path / "srun-args"
    srun = f'env > {seen_env}\nprintf "%s\\n" "$@" > {seen_args}\nexit 0\n'
    inherited = {
        "SLURM_NTASKS": "16",
        "SLURM_NPROCS": "16",
        "SLURM_NTASKS_PER_NODE": "8",
        "SLURM_NTASKS_PER_GPU": "1",
        "SLURM_EXPORT_ENV": "NONE",
        "SLURM_JOB_NUM_NODES": "2",
    }
    proc, calls = _run_script(tmp_path, srun, **inherited)
    assert (proc.returncode, calls) == (0, []), proc.stdout + proc.stderr
    env = dict(line.split("=", 1) for line in seen_env.read_text().splitlines() if "=" in line)
    assert not {"SLURM_NTASKS", "SLURM_NPROCS", "SLURM_NTASKS_PER_NODE", "SLURM_NTASKS_PER_GPU"} & set(env)
    assert env["SLURM_JOB_NUM_NODES"] == "2" and env["HPC_CLASSIFY_JOB_TOKEN"]  # the node count stays
    args = seen_args.read_text().splitlines()
    assert args[: args.index("hpc-classify")] == [
        "--ntasks-per-node=1",
        "--export=ALL",  # the command line wins over SLURM_EXPORT_ENV (srun's man page)
        "--no-kill",
        "--kill-on-bad-exit=0",
    ]
    assert args[args.index("hpc-classify") :] == ["hpc-classify", "node", "--", "--input", "IN"]


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_the_script_is_shellcheck_clean() -> None:
    proc = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
