"""`hpc-classify status --json` computed from the output directory alone, with exact values; --filter-by
keeping no row of a file: no output file, and the file still counts as done."""

from __future__ import annotations

import os
import socket
from collections import Counter

from driver_support import (
    make_corpus,
    markers,
    output_files,
    read_jsonl,
    run_args,
    run_cli,
    status_json,
    summary,
)

from hpc_classify.io.markers import marker_path, read_marker


def test_status_json_has_exact_counts(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=5, docs_per_file=6, bad_lines={4: ["not json"]})
    result = run_cli(run_args(inputs, output, tiny_domain_model))  # part-004 fails (bad row, policy error)
    assert result.returncode == 1, result.stderr[-3000:]
    os.remove(marker_path(str(output), "part-000.jsonl"))  # as if part-000 were still to do

    status = status_json(output)

    done = ["part-001.jsonl", "part-002.jsonl", "part-003.jsonl"]
    predictions = Counter(row["domain_pred"] for rel in done for row in read_jsonl(output / rel))
    assert status["files_planned"] == 5
    assert (status["files_done"], status["files_remaining"], status["files_failed"]) == (3, 1, 1)
    assert status["documents_in"] == status["documents_out"] == sum(len(expected[rel]) for rel in done)
    assert {k: v for k, v in status["labels"]["domain_pred"].items() if v} == dict(predictions)
    assert sum(status["labels"]["domain_pred"].values()) == status["documents_in"]
    assert status["nodes"] == [os.environ.get("SLURMD_NODENAME") or socket.gethostname()]
    assert [f["relpath"] for f in status["failed"]] == ["part-004.jsonl"]


def test_filter_by_writes_kept_rows_and_files_with_none_kept_count_as_done(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=6, docs_per_file=2)
    args = run_args(inputs, output, tiny_domain_model, "--filter-by", "Adult", "Games", "--prob-column", "p")

    first = run_cli(args)

    assert first.returncode == 0, first.stderr[-3000:]
    kept_total = 0
    for relpath, ids in expected.items():
        marker = read_marker(marker_path(str(output), relpath))
        rows = read_jsonl(output / relpath) if marker.rows_out else []
        assert (output / relpath).exists() == bool(rows)  # no row kept: no output file (as NeMo)
        assert all(row["domain_pred"] in ("Adult", "Games") and len(row["p"]) == 26 for row in rows)
        assert (marker.rows_in, marker.rows_out) == (len(ids), len(rows))
        assert marker.label_counts["domain_pred"]["Adult"] + marker.label_counts["domain_pred"][
            "Games"
        ] == len(rows)
        assert sum(marker.label_counts["domain_pred"].values()) == len(
            ids
        )  # labels are counted before filtering
        kept_total += len(rows)
    assert len(output_files(output)) < len(expected), "expected a file with no row kept"
    assert summary(output)["documents_out"] == kept_total

    second = run_cli(args)  # files with no row kept are done too: nothing is redone

    assert second.returncode == 0 and summary(output)["files_processed"] == 0
    assert markers(output) == set(expected)
