"""Inputs changed between runs (appended, regenerated, truncated, deleted, only touched): found on resume
and by `status`; --on-changed-input error stops with exit 2 naming them, redo reclassifies them."""

from __future__ import annotations

import json
import os

from driver_support import (
    all_ids,
    make_corpus,
    markers,
    output_ids,
    run_args,
    run_cli,
    status_json,
    summary,
    temp_files,
)


def append_doc(path, doc_id: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": doc_id, "text": "an appended document about football"}) + "\n")


def test_changed_inputs_stop_the_run_then_redo_reclassifies_them(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=5, docs_per_file=5)
    assert run_cli(run_args(inputs, output, tiny_domain_model)).returncode == 0
    before = {rel: (output / rel).read_bytes() for rel in expected}

    append_doc(inputs / "part-000.jsonl", "f000-appended")  # appended
    expected["part-000.jsonl"].append("f000-appended")
    regenerated = make_corpus(
        tmp_path / "regen", n_files=2, docs_per_file=9, seed=7
    )  # regenerated, other size
    os.replace(tmp_path / "regen" / "part-001.jsonl", inputs / "part-001.jsonl")
    expected["part-001.jsonl"] = regenerated["part-001.jsonl"]
    lines = (inputs / "part-002.jsonl").read_text().splitlines(keepends=True)
    (inputs / "part-002.jsonl").write_text("".join(lines[:-2]))  # truncated
    expected["part-002.jsonl"] = expected["part-002.jsonl"][:-2]
    os.remove(inputs / "part-003.jsonl")  # deleted: its output stays (old documents, still valid)

    status = status_json(output)
    assert sorted(c["relpath"] for c in status["changed"]) == [
        "part-000.jsonl",
        "part-001.jsonl",
        "part-002.jsonl",
    ]
    assert [v["relpath"] for v in status["vanished"]] == ["part-003.jsonl"]
    assert (status["files_done"], status["files_remaining"], status["files_vanished"]) == (1, 3, 1)
    assert status["bytes_done"] < status["bytes_planned"]

    refused = run_cli(run_args(inputs, output, tiny_domain_model))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert "3 input file(s) changed after they were classified" in refused.stderr
    for rel in ("part-000.jsonl", "part-001.jsonl", "part-002.jsonl"):
        assert str(inputs / rel) in refused.stderr
    assert "--on-changed-input redo" in refused.stderr
    assert {rel: (output / rel).read_bytes() for rel in expected} == before  # nothing touched

    redone = run_cli(run_args(inputs, output, tiny_domain_model, "--on-changed-input", "redo"))
    assert redone.returncode == 0, redone.stderr[-3000:]
    assert "3 changed input file(s) will be classified again" in redone.stderr
    s = summary(output)
    assert (s["files_planned"], s["files_processed"], s["files_skipped"]) == (4, 3, 1)
    assert sorted(output_ids(output)) == all_ids(expected)  # each document once; part-003's output kept
    assert markers(output) == set(expected)
    assert temp_files(output) == []
    after = status_json(output)
    assert (after["files_done"], after["files_remaining"], after["changed"]) == (4, 0, [])
    assert [v["relpath"] for v in after["vanished"]] == ["part-003.jsonl"]

    rerun = run_cli(run_args(inputs, output, tiny_domain_model))  # now unchanged: a plain no-op resume
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert summary(output)["files_processed"] == 0


def test_verify_inputs_compares_contents_not_timestamps(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=5)
    assert run_cli(run_args(inputs, output, tiny_domain_model)).returncode == 0

    touched = inputs / "part-000.jsonl"
    os.utime(touched, (touched.stat().st_atime, touched.stat().st_mtime + 60))  # only the timestamp
    by_mtime = run_cli(run_args(inputs, output, tiny_domain_model))
    assert by_mtime.returncode == 2 and "modified at" in by_mtime.stderr, by_mtime.stderr[-3000:]
    by_hash = run_cli(run_args(inputs, output, tiny_domain_model, "--verify-inputs"))
    assert by_hash.returncode == 0, by_hash.stderr[-3000:]
    assert summary(output)["files_processed"] == 0

    # Same size and mtime, other content: only the hash sees it.
    edited = inputs / "part-001.jsonl"
    stat = edited.stat()
    edited.write_text(edited.read_text().replace('"f001-0"', '"g001-0"'))
    os.utime(edited, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    expected["part-001.jsonl"][0] = "g001-0"
    assert status_json(output)["changed"] == []
    assert [c["relpath"] for c in status_json(output, "--verify-inputs")["changed"]] == ["part-001.jsonl"]
    refused = run_cli(run_args(inputs, output, tiny_domain_model, "--verify-inputs"))
    assert refused.returncode == 2, refused.stderr[-3000:]
    assert f"{edited}: same size, different content" in refused.stderr

    redo = run_args(inputs, output, tiny_domain_model, "--verify-inputs", "--on-changed-input", "redo")
    result = run_cli(redo)
    assert result.returncode == 0, result.stderr[-3000:]
    assert summary(output)["files_processed"] == 1
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []
