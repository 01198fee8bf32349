"""No output stays under its final name that no marker of the current plan stands for (driver/stale_outputs.py):
readers glob the output directory for data files, so such an output is read as data, its documents twice, or
those of an old version of the input.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pandas as pd
from driver_support import (
    all_ids,
    make_corpus,
    output_files,
    run_args,
    run_cli,
    status_json,
)


def data_ids(output: Path) -> list[str]:
    """Every document id in every data file a reader globbing the output directory finds (jsonl and parquet,
    duplicates kept)."""
    ids: list[str] = []
    for path in output_files(output).values():
        if path.suffix == ".parquet":
            ids.extend(pd.read_parquet(path)["id"])
        else:
            with open(path, encoding="utf-8") as f:
                ids.extend(json.loads(line)["id"] for line in f if line.strip())
    return sorted(ids)


def test_overwrite_with_another_output_format_leaves_each_document_once(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    assert data_ids(output) == all_ids(expected)

    second = run_cli(run_args(inputs, output, tiny_domain_model, "--overwrite", "--output-format", "parquet"))

    assert second.returncode == 0, second.stderr[-3000:]
    assert data_ids(output) == all_ids(expected)  # 15 documents, each once: no jsonl output of the old run
    assert sorted(output_files(output)) == ["part-000.parquet", "part-001.parquet", "part-002.parquet"]
    assert "removed 3 old output file(s)" in second.stderr
    status = status_json(output)
    assert (status["files_done"], status["documents_out"], status["files_outside_plan"]) == (3, 15, 0)


def test_a_failed_redo_of_a_changed_input_leaves_no_output_of_its_old_version(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=2, docs_per_file=10)  # part-000: 10 documents, part-001: 11
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    changed = inputs / "part-001.jsonl"
    lines = changed.read_text().splitlines()[:5] + ["not json"]
    changed.write_text("\n".join(lines) + "\n")
    os.utime(changed, (time.time() + 5, time.time() + 5))

    redo = run_cli(run_args(inputs, output, tiny_domain_model, "--on-changed-input", "redo"))

    assert redo.returncode == 1, redo.stderr[-3000:]  # the new version has a bad line: the file fails
    assert not (output / "part-001.jsonl").exists()
    assert data_ids(output) == sorted(expected["part-000.jsonl"])  # nothing of the old part-001
    assert "removed 1 old output file(s)" in redo.stderr
    status = status_json(output)
    assert (status["files_done"], status["files_failed"], status["documents_out"]) == (1, 1, 10)
    assert sum(status["labels"]["domain_pred"].values()) == 10  # the done file's labels only


def test_an_output_of_a_renamed_input_is_reported_and_kept(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=2, docs_per_file=10)
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    (inputs / "part-001.jsonl").rename(inputs / "renamed.jsonl")

    second = run_cli(run_args(inputs, output, tiny_domain_model))

    assert second.returncode == 0, second.stderr[-3000:]
    old_output = output / "part-001.jsonl"
    assert (
        "1 output(s) in" in second.stderr and "have a marker of no file this run's --input" in second.stderr
    )
    assert f"{old_output} (input {inputs / 'part-001.jsonl'} is gone)" in second.stderr
    assert "delete each output and its marker" in second.stderr
    # Not ours to judge: kept, so its 11 documents are there twice until the user deletes it.
    assert len(data_ids(output)) == len(all_ids(expected)) + 11
    status = status_json(output)
    assert status["files_outside_plan"] == 1
    assert status["outside_plan"] == [
        {
            "relpath": "part-001.jsonl",
            "output": str(old_output),
            "input_path": str(inputs / "part-001.jsonl"),
            "input_exists": False,
        }
    ]
    text = run_cli(["status", "--output", str(output)], timeout=120).stdout
    assert (
        f"OUTSIDE PLAN part-001.jsonl: output {old_output}; input {inputs / 'part-001.jsonl'} is gone" in text
    )
    assert "VANISHED part-001.jsonl" not in text  # said once, by the line above
