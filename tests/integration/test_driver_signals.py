"""SIGTERM stops a run cleanly (exit 3, no partial output under a final name) and the rerun completes;
Ctrl-C as a terminal sends it spares the workers; the ucxx protocol works end to end."""

from __future__ import annotations

import json
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
    output_files,
    output_ids,
    read_jsonl,
    run_args,
    run_cli,
    start_cli,
    summary,
    temp_files,
    wait_for,
)


def test_sigterm_exits_3_without_partial_outputs_and_the_rerun_completes(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=24, docs_per_file=30)
    # Grace 0: the files in flight are abandoned at once (the harsher case: their workers are torn down).
    # Tasks of three files: a group may be abandoned with some of its files written and marked.
    args = run_args(
        inputs, output, tiny_domain_model, "--stop-grace", "0", "--group-bytes", group_bytes_for(inputs, 3)
    )
    proc = start_cli(args, tmp_path / "first.log")
    wait_for(lambda: len(markers(output)) >= 2, timeout=120, what="two completion markers")

    proc.send_signal(signal.SIGTERM)

    assert proc.wait(timeout=90) == 3, (tmp_path / "first.log").read_text()[-3000:]
    done = markers(output)
    assert len(done) < len(expected), "the run finished before SIGTERM: the test proved nothing"
    s = summary(output)
    assert (s["exit_code"], s["interrupted"], s["signal"]) == (3, True, "SIGTERM")
    # An abandoned task may still finish (atomically) while the cluster shuts down: the run counts its
    # marker once the workers are gone, so the summary agrees with the markers on disk.
    assert s["files_processed"] == len(done)
    assert s["files_processed"] + s["files_remaining"] == len(expected)
    # Whatever sits under a final name is complete: exactly its input's documents, in order.
    for relpath, path in output_files(output).items():
        assert [row["id"] for row in read_jsonl(path)] == expected[relpath]
    assert not (output / "_lock").exists()

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert summary(output)["files_skipped"] == len(done)
    assert markers(output) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []


def test_ctrl_c_to_the_whole_process_group_lets_the_files_in_flight_finish(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=12, docs_per_file=150)
    # Two tasks (of three files) per worker: when the first marker appears, the next task is already on the
    # worker.
    args = run_args(
        inputs,
        output,
        tiny_domain_model,
        "--stop-grace",
        "300",
        "--tasks-per-worker",
        "2",
        "--group-bytes",
        group_bytes_for(inputs, 3),
    )
    stderr_path = tmp_path / "stderr.log"
    with open(stderr_path, "w") as stderr:
        # A process group of its own, as a shell gives a foreground job; killpg is what a terminal's Ctrl-C does.
        proc = subprocess.Popen(
            [*CLI, *args],
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            start_new_session=True,
        )
        wait_for(lambda: markers(output), timeout=180, what="a first completion marker")
        os.killpg(proc.pid, signal.SIGINT)
        stdout, _ = proc.communicate(timeout=300)
    log = stderr_path.read_text()

    assert proc.returncode == 3, log[-3000:]
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-3000:]
    # The dispatcher waited for the files in flight (dispatch._abandon logs "abandoning N file(s) in flight").
    assert "abandoning" not in log, log[-3000:]
    done = markers(output)
    s = summary(output)
    assert (s["interrupted"], s["signal"]) == (True, "SIGINT")
    # The file that was running when Ctrl-C came finished and is counted (the workers survived the signal).
    assert 2 <= s["files_processed"] == len(done) < len(expected), log[-3000:]
    assert f"{len(done)} file(s) processed" in stdout
    assert sorted(output_ids(output)) == sorted(i for rel in done for i in expected[rel])

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert summary(output)["files_processed"] == len(expected) - len(done)
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []


def test_ucxx_protocol_end_to_end_with_a_yaml_config(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    config = tmp_path / "run.yaml"
    config.write_text(f"protocol: ucxx\nmodel: {tiny_domain_model}\nmax-chars: 500\non_bad_row: skip\n")
    args = [
        "run",
        "--config",
        str(config),
        "--input",
        str(inputs),
        "--output",
        str(output),
        "--max-chars",
        "700",
    ]

    result = run_cli([*args, "--workers", "1", "--threads-per-worker", "1", "--device", "cpu"])

    assert result.returncode == 0, result.stderr[-3000:]
    s = summary(output)
    assert s["protocol"] == "ucxx" and s["scheduler_address"].startswith("ucxx://")
    assert s["files_processed"] == 3 and s["workers"] == 1
    assert sorted(output_ids(output)) == all_ids(expected)
    details = json.loads((output / "_run.json").read_text())["details"]["classifiers"][0]
    assert (details["model"]["model"], details["max_chars"]) == (
        str(tiny_domain_model),
        700,
    )  # the flag beat the file


def test_sigusr1_lets_the_files_in_flight_finish(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=24, docs_per_file=30)
    # --stop-grace 0 is for SIGTERM/SIGINT: the warning gets its own grace (the lead's 300 s less 60 s).
    args = run_args(
        inputs,
        output,
        tiny_domain_model,
        "--stop-grace",
        "0",
        "--tasks-per-worker",
        "2",
        "--group-bytes",
        group_bytes_for(inputs, 3),
    )
    proc = start_cli(args, tmp_path / "first.log")
    wait_for(lambda: len(markers(output)) >= 2, timeout=120, what="two completion markers")

    proc.send_signal(signal.SIGUSR1)  # what Slurm sends before the time limit (--signal=USR1@...)

    assert proc.wait(timeout=150) == 3, (tmp_path / "first.log").read_text()[-3000:]
    log = (tmp_path / "first.log").read_text()
    # The dispatcher waited for the files in flight (dispatch._abandon logs "abandoning N file(s) in flight").
    assert "abandoning" not in log, log[-3000:]
    assert "SIGUSR1 received" in log, log[-3000:]
    done = markers(output)
    s = summary(output)
    assert (s["signal"], len(done) < len(expected)) == ("SIGUSR1", True)
    # Nothing was abandoned: every file the driver had submitted finished, with its marker, and was counted.
    assert s["files_processed"] == len(done)
    assert set(output_files(output)) == done
    # The job's last minute goes to its requeue: no report (it reads every marker), the next run writes it.
    assert "no run report after SIGUSR1 (the job's last seconds are not for reading every marker)" in log, (
        log[-3000:]
    )
    assert not (output / "_report.html").exists() and not (output / "_report.json").exists()


def test_ctrl_c_when_the_last_files_then_finish_within_the_grace_exits_0(tmp_path, tiny_domain_model):
    inputs, output, gate = tmp_path / "in", tmp_path / "out", tmp_path / "gate"
    expected = make_corpus(inputs, n_files=2, docs_per_file=5)  # one task: both files in one group
    gate.mkdir()
    (gate / "hold").touch()
    preload = Path(__file__).parents[1] / "slurm" / "gate_preload.py"
    env = cli_env(
        HPC_CLASSIFY_TEST_GATE_DIR=str(gate), DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([str(preload)])
    )
    log_path = tmp_path / "run.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [*CLI, *run_args(inputs, output, tiny_domain_model, "--stop-grace", "300")],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        # The only task is on the worker, held at the gate: Ctrl-C now, then let it finish.
        wait_for(lambda: list(gate.glob("started-*")), timeout=180, what="the task to start classifying")
        os.killpg(proc.pid, signal.SIGINT)
        wait_for(lambda: "SIGINT received" in log_path.read_text(), timeout=60, what="the stop request")
        (gate / "hold").unlink()
        returncode = proc.wait(timeout=300)
    output_log = log_path.read_text()

    assert returncode == 0, output_log[-3000:]
    assert (
        "SIGINT received, but every file had finished (done or failed): the run is complete, not interrupted"
        in output_log
    )
    assert "exit code 0 (all files done)" in output_log
    s = summary(output)
    assert (s["exit_code"], s["interrupted"], s["files_processed"], s["files_remaining"]) == (0, False, 2, 0)
    assert markers(output) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    # Complete, but the job's last seconds are not for reading every marker: the report is left to the command.
    assert f"`hpc-classify report --output {output}` writes it later" in output_log, output_log[-3000:]
    assert not (output / "_report.html").exists() and not (output / "_report.json").exists()
