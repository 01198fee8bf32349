"""Kill the driver with SIGKILL in the middle of a run, rerun, and lose nothing, redo nothing, duplicate nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
from driver_support import (
    all_ids,
    group_bytes_for,
    kill_group,
    make_corpus,
    markers,
    output_files,
    output_ids,
    run_args,
    run_cli,
    start_cli,
    status_json,
    summary,
    temp_files,
    wait_for,
)

from hpc_classify.engine import resolve_precision
from hpc_classify.engine.attention_choice import attention_label, resolve_attention
from hpc_classify.engine.precision import precision_dtype


@pytest.mark.parametrize("files_per_task", [1, 3], ids=["one-file-per-task", "groups-of-three"])
def test_sigkill_mid_run_then_resume_gives_every_document_exactly_once(
    tmp_path, tiny_domain_model, files_per_task
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=24, docs_per_file=30)
    # Groups of three small files (sizes differ by a few percent), each file written and marked on its own:
    # the kill lands between groups or inside one, and the resume must neither lose nor repeat a file.
    group_bytes = group_bytes_for(inputs, files_per_task) if files_per_task > 1 else "0"
    args = run_args(
        inputs, output, tiny_domain_model, "--tasks-per-worker", "1", "--group-bytes", group_bytes
    )

    proc = start_cli(args, tmp_path / "first.log")
    wait_for(lambda: len(markers(output)) >= 3, timeout=120, what="three completion markers")
    kill_group(proc, signal.SIGKILL)  # the driver and its local cluster's processes, no chance to clean up

    done_before = markers(output)
    assert 3 <= len(done_before) < len(expected), f"the kill was not mid-run: {len(done_before)} markers"
    outputs_before = output_files(output)
    # Outputs whose marker exists are complete and must not be rewritten by the resume.
    mtimes_before = {rel: outputs_before[rel].stat().st_mtime_ns for rel in done_before}
    assert (output / "_lock").exists()  # left behind by the killed driver: the rerun must take it over

    second = run_cli(args)
    assert second.returncode == 0, second.stderr[-3000:]

    assert sorted(output_ids(output)) == all_ids(expected)  # every document, exactly once
    assert markers(output) == set(expected)
    assert temp_files(output) == []
    assert not (output / "_lock").exists()
    after = output_files(output)
    assert {rel: after[rel].stat().st_mtime_ns for rel in done_before} == mtimes_before
    s = summary(output)
    assert s["files_skipped"] == len(done_before)
    assert s["files_processed"] == len(expected) - len(done_before)
    assert s["exit_code"] == 0


def test_finished_run_reruns_as_a_no_op(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=4, docs_per_file=5)
    args = run_args(inputs, output, tiny_domain_model)
    first = run_cli(args)
    assert first.returncode == 0, first.stderr[-3000:]
    # How the engine ran, per classifier, counted over the 4 files' markers (auto: eager, the attention
    # measured faster on CPU: tiled, or bias where its kernel cannot be built).
    (engines,) = summary(output)["engines"].values()
    precision = resolve_precision(torch.device("cpu"), "auto")
    kernel, _ = resolve_attention("auto", torch.device("cpu"), "auto", precision)
    assert kernel in ("tiled", "bias")
    label = attention_label(
        kernel, precision_dtype(precision)
    )  # tiled: "(fused ...)" in bf16 with AVX-512 BF16
    assert engines == {f"{precision}, eager, {label} attention": 4}
    rewritten = {"_summary.json", "_report.html", "_report.json"}  # each run's summary and report
    tree = {p: p.stat().st_mtime_ns for p in output.rglob("*") if p.is_file() and p.name not in rewritten}

    second = run_cli(args)

    assert second.returncode == 0, second.stderr[-3000:]
    assert "0 file(s) processed, 4 already done" in second.stdout
    s = summary(output)
    assert (s["files_processed"], s["files_skipped"], s["documents_in"]) == (0, 4, 0)
    assert s["scheduler_address"] is None  # nothing to do: no cluster was started
    # Nothing but the summary and report is rewritten: outputs, markers, plan and fingerprint keep their mtimes.
    assert {p: p.stat().st_mtime_ns for p in tree} == tree
    assert sorted(output_ids(output)) == all_ids(expected)


def test_an_output_deleted_after_its_file_finished_is_remaining_and_redone(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    (inputs / "sub").mkdir()
    (inputs / "part-002.jsonl").rename(inputs / "sub" / "part-002.jsonl")
    args = run_args(inputs, output, tiny_domain_model)
    assert run_cli(args).returncode == 0
    (output / "sub" / "part-002.jsonl").unlink()  # a user's clean-up, a file moved away

    status = subprocess.run(
        [sys.executable, "-m", "hpc_classify.cli.main", "status", "--output", str(output)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "files:           2 done, 1 remaining" in status.stdout, status.stdout + status.stderr
    assert "lost outputs:    1 file(s) marked done have no output" in status.stdout

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "1 finished file(s) have no output" in rerun.stderr and "sub/part-002.jsonl" in rerun.stderr
    assert "1 file(s) processed, 2 already done" in rerun.stdout
    assert sorted(output_ids(output)) == all_ids(expected)


def test_a_late_marker_of_other_settings_is_classified_again_each_document_once(tmp_path, tiny_domain_model):
    # A task of a killed driver, left running on a joined cluster, finished after an --overwrite run with
    # other settings: it rewrote one file's output and marker under its own fingerprint.
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    args = run_args(inputs, output, tiny_domain_model)
    assert run_cli(args).returncode == 0
    marker_file = output / "_markers" / "part-001.jsonl.done.json"
    late = json.loads(marker_file.read_text())
    # Its output in another format: a name this run never writes, so never replaced, only removed.
    (output / "part-001.jsonl").rename(output / "part-001.parquet")
    late_output = late["output_path"].removesuffix(".jsonl") + ".parquet"
    marker_file.write_text(json.dumps({**late, "fingerprint": "of-a-killed-run", "output_path": late_output}))

    status = status_json(output)
    assert (status["files_done"], status["files_remaining"]) == (2, 1)
    assert status["files_other_settings"] == 1

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "1 file(s) whose marker was written under other settings" in rerun.stderr
    assert "removed 1 old output file(s)" in rerun.stderr and not (output / "part-001.parquet").exists()
    assert "1 file(s) processed, 2 already done" in rerun.stdout
    assert sorted(output_ids(output)) == all_ids(expected)  # every document, exactly once
    assert json.loads(marker_file.read_text())["fingerprint"] == summary(output)["fingerprint"]
