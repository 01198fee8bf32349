"""What protects an output directory: the run fingerprint and the run lock."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

from driver_support import (
    all_ids,
    make_corpus,
    output_ids,
    run_args,
    run_cli,
    start_cli,
    summary,
    wait_for,
)


def test_resume_with_other_settings_is_refused_unless_overwrite(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    tree = {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()}
    old_fingerprint = json.loads((output / "_run.json").read_text())["fingerprint"]

    refused = run_cli(run_args(inputs, output, tiny_domain_model, "--max-chars", "100"))

    assert refused.returncode == 2
    assert "holds the output of a different run" in refused.stderr
    assert "classifiers.0.max_chars: 2000 -> 100" in refused.stderr
    assert "--overwrite" in refused.stderr  # the hint
    assert {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file()} == tree  # nothing touched

    accepted = run_cli(run_args(inputs, output, tiny_domain_model, "--max-chars", "100", "--overwrite"))

    assert accepted.returncode == 0, accepted.stderr[-3000:]
    s = summary(output)
    assert (s["files_processed"], s["files_skipped"]) == (3, 0)  # every file redone with the new settings
    run = json.loads((output / "_run.json").read_text())
    assert run["fingerprint"] != old_fingerprint and run["details"]["classifiers"][0]["max_chars"] == 100
    assert sorted(output_ids(output)) == all_ids(expected)


def test_a_first_run_into_a_directory_of_other_files_is_refused_unless_overwrite(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=2, docs_per_file=3)
    output.mkdir()
    (output / "part-000.jsonl").write_text('{"precious": 1}\n')  # the user's own file, an output's name
    (output / "notes").mkdir()

    refused = run_cli(run_args(inputs, output, tiny_domain_model))

    assert refused.returncode == 2
    assert "already holds files that no hpc-classify run wrote (notes/, part-000.jsonl)" in refused.stderr
    assert (output / "part-000.jsonl").read_text() == '{"precious": 1}\n'
    assert sorted(p.name for p in output.iterdir() if not p.name.startswith("_")) == [
        "notes",
        "part-000.jsonl",
    ]

    accepted = run_cli(run_args(inputs, output, tiny_domain_model, "--overwrite"))

    assert accepted.returncode == 0, accepted.stderr[-3000:]
    assert sorted(output_ids(output)) == all_ids(expected)


def test_bookkeeping_and_hidden_files_are_no_obstacle_and_another_corpus_is_warned_of(
    tmp_path, tiny_domain_model
):
    inputs, other, output = tmp_path / "in", tmp_path / "other", tmp_path / "out"
    make_corpus(inputs, n_files=2, docs_per_file=3)
    (output / "_jobs" / "123").mkdir(parents=True)  # the Slurm launcher's, made before the driver runs
    (output / ".nfs0001").write_text("")
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    make_corpus(other, n_files=1, docs_per_file=3, seed=5)
    (other / "part-000.jsonl").rename(other / "another.jsonl")

    second = run_cli(run_args(other, output, tiny_domain_model))

    assert second.returncode == 0, second.stderr[-3000:]
    assert f"--input differs from the last run's into {output} ({inputs}, now {other})" in second.stderr
    status = subprocess.run(
        [sys.executable, "-m", "hpc_classify.cli.main", "status", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "outside plan:    2 output(s) of files the last run's --input no longer lists" in status.stdout


def test_concurrent_run_is_refused_and_a_stale_lock_is_taken_over(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=20, docs_per_file=20)
    args = run_args(inputs, output, tiny_domain_model, "--tasks-per-worker", "1")
    first = start_cli(args, tmp_path / "first.log")
    lock = output / "_lock"
    owner = wait_for(lambda: lock.exists() and lock.read_text(), timeout=60, what="the first run's lock")
    assert json.loads(owner)["pid"] == first.pid

    second = run_cli(args)

    assert first.poll() is None, "the first run ended before the second was refused: the test proved nothing"
    assert second.returncode == 2
    assert "is in use by another run" in second.stderr and f"pid {first.pid}" in second.stderr
    assert first.wait(timeout=240) == 0, (tmp_path / "first.log").read_text()[-3000:]
    assert not lock.exists()

    # A lock left by a driver that died (same host, pid gone) is taken over.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": dead.pid, "started": 0, "token": "x"}))
    third = run_cli(args)
    assert third.returncode == 0, third.stderr[-3000:]
    assert f"taking over the stale lock of host {socket.gethostname()} pid {dead.pid}" in third.stderr
    assert not lock.exists()
    assert sorted(output_ids(output)) == all_ids(expected)
