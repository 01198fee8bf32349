"""A local cluster's processes are spared the stop signals meant for the run (cluster/worker_signals.py): Slurm's
time limit and `scancel --signal=USR1` reach every process of a job step, a Ctrl-C the whole process group, and
the driver alone decides when its workers stop. Real runs and real signals (os.kill from this process, which is
not the driver: the driver's own SIGTERM still ends a worker)."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from driver_support import (
    CLI,
    all_ids,
    cli_env,
    group_bytes_for,
    make_corpus,
    markers,
    output_ids,
    run_args,
    start_cli,
    summary,
    wait_for,
)

from hpc_classify.cluster.local import start_cpu_cluster

SPAWNED = b"from multiprocessing.spawn import spawn_main"  # a worker process's command line
TRACKER = b"from multiprocessing.resource_tracker import main"


def children(parent: int) -> dict[int, bytes]:
    """`parent`'s live child processes (zombies left out): pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        try:
            pid = int(entry.name)
            state, ppid = (entry / "stat").read_text().rsplit(") ", 1)[1].split()[:2]
            if int(ppid) == parent and state != "Z":
                found[pid] = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except (ValueError, OSError):  # not a process, or gone meanwhile
            continue
    return found


def workers_of(parent: int) -> set[int]:
    return {pid for pid, command in children(parent).items() if SPAWNED in command}


def test_sigterm_and_the_warnings_sent_to_every_process_of_the_cluster_spare_it(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=24, docs_per_file=60)
    args = run_args(inputs, output, tiny_domain_model, "--group-bytes", group_bytes_for(inputs, 2))
    args[args.index("--workers") + 1] = "2"
    log = tmp_path / "run.log"
    proc = start_cli(args, log)
    wait_for(lambda: markers(output), timeout=180, what="a first completion marker")
    spawned = children(proc.pid)
    workers = workers_of(proc.pid)
    assert len(workers) == 2 and any(TRACKER in command for command in spawned.values()), spawned

    # What a job step's time limit (TERM) and `scancel --signal=USR1` / submitit's USR2 do: every process.
    for pid in spawned:
        for sig in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
            os.kill(pid, sig)
    progressed = len(markers(output)) + 1
    wait_for(lambda: len(markers(output)) >= progressed, timeout=180, what="a marker after the signals")
    alive = set(children(proc.pid))

    assert proc.wait(timeout=300) == 0, log.read_text()[-3000:]
    # The same processes, none killed (the nanny would have restarted a worker under another pid).
    assert alive == set(spawned), log.read_text()[-3000:]
    assert summary(output)["files_processed"] == len(expected)
    assert sorted(output_ids(output)) == all_ids(expected)  # every document once


def test_ctrl_c_while_the_workers_start_prints_no_traceback_of_theirs(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_corpus(inputs, n_files=2, docs_per_file=5)
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        # A process group of its own, as a shell gives a foreground job; killpg is what a terminal's Ctrl-C does.
        proc = subprocess.Popen(
            [*CLI, *run_args(inputs, output, tiny_domain_model)],
            env=cli_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # Spawned, still importing (seconds): before the worker's preload runs.
        wait_for(lambda: workers_of(proc.pid), timeout=180, what="a worker process", interval=0.01)
        os.killpg(proc.pid, signal.SIGINT)
        returncode = proc.wait(timeout=300)
    text = log_path.read_text()

    assert returncode == 5, text[-3000:]  # stopped before anything was finished
    assert "SIGINT received" in text, text[-3000:]
    assert "Traceback" not in text and "KeyboardInterrupt" not in text, text[-3000:]


def test_a_driver_killed_outright_leaves_no_process_of_its_cluster(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    make_corpus(inputs, n_files=12, docs_per_file=60)
    proc = start_cli(run_args(inputs, output, tiny_domain_model), tmp_path / "run.log")
    wait_for(lambda: markers(output), timeout=180, what="a first completion marker")
    spawned = set(children(proc.pid))
    assert workers_of(proc.pid), spawned

    proc.kill()  # the driver alone: its workers ignore the signals a job's end sends them, not this
    proc.wait(timeout=60)

    def left() -> set[int]:
        """Those still alive: in the run's process group (a pid used again since is not), not a zombie."""
        alive = set()
        for pid in spawned:
            try:
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
                if state != "Z" and os.getpgid(pid) == proc.pid:
                    alive.add(pid)
            except (OSError, ProcessLookupError):
                continue
        return alive

    wait_for(lambda: not left(), timeout=60, what=f"the cluster's processes {sorted(spawned)} to end")


def test_a_sigterm_from_the_driver_still_ends_its_worker():
    """multiprocessing terminates the daemonic workers still alive at the driver's exit with a SIGTERM, and joins
    them: one that ignored it would hang the exit."""
    cluster = start_cpu_cluster(1, 1, "tcp")
    try:
        (worker,) = workers_of(os.getpid())

        os.kill(worker, signal.SIGTERM)  # from its parent

        wait_for(lambda: worker not in workers_of(os.getpid()), timeout=60, what=f"worker {worker} to end")
    finally:
        cluster.close(timeout=60)
