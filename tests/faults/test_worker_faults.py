"""Workers that die: a poison document fails only its file (with the real reason); all workers gone and
none coming back stops the run within --worker-wait, naming them (exit 3; 5 if no file had finished); a rerun
completes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import psutil
import pytest
from driver_support import (
    all_ids,
    cli_env,
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

PRELOAD = str(Path(__file__).with_name("fault_preload.py"))


def fault_env(**extra: str) -> dict[str, str]:
    # The scheduler's own re-runs after a worker death: 0 hands each death straight to the driver.
    return cli_env(
        DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([PRELOAD]),
        DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES="0",
        **extra,
    )


def test_poison_document_fails_only_its_file(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=5, docs_per_file=6)
    with open(inputs / "part-002.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "poison", "text": "a document that crashes the tokenizer XPOISONX"}) + "\n")

    args = run_args(inputs, output, tiny_domain_model, "--max-retries", "2")
    result = run_cli(args, env=fault_env(HPC_CLASSIFY_TEST_POISON="XPOISONX"))

    assert result.returncode == 1, result.stderr[-3000:]
    [failure] = read_jsonl(output / "_failures.ndjson")
    assert (failure["relpath"], failure["attempts"], failure["error_type"]) == (
        "part-002.jsonl",
        3,
        "KilledWorker",
    )
    assert "worker process running it died (KilledWorker) in 3 of 3 attempt(s)" in failure["reason"]
    assert "part-002.jsonl failed: the worker process running it died" in result.stderr
    del expected["part-002.jsonl"]
    assert markers(output) == set(expected)
    # The failed file left nothing under a final name: no partial or duplicated rows of it anywhere.
    assert set(output_files(output)) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []
    assert summary(output)["failures"] == ["part-002.jsonl"]


def run_beside_poison(tmp_path, model, docs_per_file: int, *extra: str, beside: bool = False):
    """part-000 (the largest: submitted first) holds a poison document; one file per task, two tasks in
    flight on the one worker, one retry. Returns the run and the other files' expected ids."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=docs_per_file)
    with open(inputs / "part-000.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "poison", "text": "XPOISONX " + "filler " * 300}) + "\n")
    args = run_args(
        inputs, output, model, "--max-retries", "1", "--tasks-per-worker", "2", "--group-bytes", "0", *extra
    )
    poison = {
        "HPC_CLASSIFY_TEST_POISON": "XPOISONX",
        "HPC_CLASSIFY_TEST_POISON_BESIDE": "1" if beside else "0",
    }
    result = run_cli(args, env=fault_env(**poison))
    assert result.returncode == 1, result.stderr[-3000:]
    [failure] = read_jsonl(output / "_failures.ndjson")
    assert (failure["relpath"], failure["attempts"]) == ("part-000.jsonl", 2)
    assert set(re.findall(r"(part-\d+\.jsonl) failed", result.stderr)) == {"part-000.jsonl"}
    del expected["part-000.jsonl"]
    assert markers(output) == set(expected)
    # The failed file left nothing under a final name: no partial or duplicated rows of it anywhere.
    assert set(output_files(output)) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    return result, failure


def test_a_file_queued_behind_a_poison_document_is_not_blamed(tmp_path, tiny_domain_model):
    # One task thread: the next file waits on the worker part-000 kills (Dask fails every task assigned to a
    # dead worker); it never began, so its attempts are not spent.
    result, _ = run_beside_poison(tmp_path, tiny_domain_model, 4)
    assert re.findall(
        r"(part-00[12]\.jsonl) was waiting on a worker that died before it began", result.stderr
    )


def test_a_file_running_beside_a_poison_document_is_retried_alone_and_not_blamed(tmp_path, tiny_domain_model):
    # Two task threads: part-001 is in the middle of its file when part-000's poison kills their worker
    # process. Either could be the killer: both are retried alone in their worker, uncounted; alone,
    # part-001 finishes and part-000 dies again, which counts.
    result, failure = run_beside_poison(
        tmp_path, tiny_domain_model, 8, "--threads-per-worker", "2", beside=True
    )
    assert "died (KilledWorker) in 2 of 2 attempt(s)" in failure["reason"]
    beside = re.findall(r"(part-\d+\.jsonl): the worker process running it died while 1 other", result.stderr)
    assert sorted(beside) == ["part-000.jsonl", "part-001.jsonl"]
    assert temp_files(tmp_path / "out") == []


@pytest.mark.parametrize(
    ("finished_before", "exit_code"),
    [
        (3, 3),
        (0, 5),
    ],  # 5: a run that finished nothing is not requeued (workers dying at every start would loop)
    ids=["after-progress", "before-progress"],
)
def test_all_workers_killed_and_none_back_stops_then_resumes(
    tmp_path, tiny_domain_model, finished_before, exit_code
):
    inputs, output, stall = tmp_path / "in", tmp_path / "out", tmp_path / "stall"
    stall.mkdir()
    expected = make_corpus(inputs, n_files=4, docs_per_file=5)
    env = {"HPC_CLASSIFY_TEST_STALL_DIR": str(stall)}
    if finished_before:  # only part-003 stalls: the others finish first
        with open(inputs / "part-003.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"id": "stall", "text": "XSTALLX waits for the kill"}) + "\n")
        expected["part-003.jsonl"] = [*expected["part-003.jsonl"], "stall"]
        env["HPC_CLASSIFY_TEST_STALL_TEXT"] = "XSTALLX"
    # Two task threads: the others finish beside the stalled file.
    extra = ("--group-bytes", "0", "--threads-per-worker", "2")
    args = run_args(inputs, output, tiny_domain_model, "--worker-wait", "15", *extra)
    proc = start_cli(args, tmp_path / "run1.log", env=fault_env(**env))
    try:
        wait_for(lambda: list(stall.iterdir()), timeout=240, what="a worker to start classifying")
        wait_for(
            lambda: len(markers(output)) == finished_before, timeout=240, what="the other files to finish"
        )
        (stall / "no-workers").touch()  # from now on, the nanny's restarted workers exit at once
        # The worker processes (the scheduler and the nannies live in the driver process).
        workers = [
            p
            for p in psutil.Process(proc.pid).children(recursive=True)
            if "resource_tracker" not in str(p.cmdline())
        ]
        assert workers
        for child in workers:
            child.kill()
        code = proc.wait(timeout=180)  # 15 s --worker-wait plus generous slack on a busy machine
    finally:
        if proc.poll() is None:
            proc.kill()
    log = (tmp_path / "run1.log").read_text()
    assert code == exit_code, log[-3000:]
    assert "no Dask worker for 15 s (--worker-wait): the workers last seen were" in log
    assert "local workers log into this process's output above" in log
    s = summary(output)
    assert s["exit_code"] == exit_code and s["stop_reason"].startswith("no Dask worker for 15 s")
    assert s["files_processed"] == finished_before == len(markers(output))
    assert temp_files(output) == []

    result = run_cli(args)  # workers can run again: the rerun resumes and completes
    assert result.returncode == 0, result.stderr[-3000:]
    assert markers(output) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []
