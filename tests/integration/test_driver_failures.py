"""Failures: a worker dying mid-file is retried; a file that keeps failing ends in _failures.ndjson with exit 1;
bad rows follow --on-bad-row with exact counts."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from driver_support import (
    all_ids,
    cli_env,
    make_corpus,
    markers,
    output_ids,
    read_jsonl,
    run_args,
    run_cli,
    summary,
    temp_files,
)

from hpc_classify.driver.failures import read_failures
from hpc_classify.io.markers import marker_path, read_marker

PRELOAD = str(Path(__file__).with_name("driver_crash_preload.py"))


def crash_env(tmp_path: Path, filename: str, mode: str, allowed_failures: int) -> dict[str, str]:
    return cli_env(
        DASK_DISTRIBUTED__WORKER__PRELOAD=json.dumps([PRELOAD]),
        # The scheduler's own re-runs after a worker death; 0 hands the first death straight to the driver.
        DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES=str(allowed_failures),
        HPC_CLASSIFY_TEST_CRASH_FILE=filename,
        HPC_CLASSIFY_TEST_CRASH_FLAG=str(tmp_path / "crashed-once"),
        HPC_CLASSIFY_TEST_CRASH_MODE=mode,
    )


def test_worker_killed_mid_file_is_retried_and_the_run_completes(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=5, docs_per_file=6)
    env = crash_env(tmp_path, "part-002.jsonl", mode="once", allowed_failures=0)

    # One file per task, one task in flight: the worker's death then hits only the crashing file (not a
    # bystander), so retries == 1. (Deaths inside a group of files: the test after the next.)
    args = run_args(
        inputs,
        output,
        tiny_domain_model,
        "--max-retries",
        "2",
        "--tasks-per-worker",
        "1",
        "--group-bytes",
        "0",
    )
    result = run_cli(args, env=env)

    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "crashed-once").exists()  # the worker really died once
    assert "part-002.jsonl failed (attempt 1 of 3), retrying: KilledWorker" in result.stderr
    s = summary(output)
    assert (s["files_processed"], s["files_failed"], s["retries"]) == (5, 0, 1)
    assert markers(output) == set(expected)
    assert sorted(output_ids(output)) == all_ids(expected)
    assert temp_files(output) == []
    assert read_failures(str(output)) == []


def test_file_that_keeps_failing_is_recorded_and_the_others_finish(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=4, docs_per_file=5)
    env = crash_env(tmp_path, "part-001.jsonl", mode="always", allowed_failures=0)

    args = run_args(
        inputs,
        output,
        tiny_domain_model,
        "--max-retries",
        "1",
        "--tasks-per-worker",
        "1",
        "--group-bytes",
        "0",
    )
    result = run_cli(args, env=env)

    assert result.returncode == 1, result.stderr[-3000:]
    failures = read_jsonl(output / "_failures.ndjson")
    assert [(f["relpath"], f["attempts"], f["error_type"]) for f in failures] == [
        ("part-001.jsonl", 2, "KilledWorker")
    ]
    s = summary(output)
    assert (s["files_processed"], s["files_failed"], s["retries"], s["failures"]) == (
        3,
        1,
        1,
        ["part-001.jsonl"],
    )
    assert markers(output) == set(expected) - {"part-001.jsonl"}
    # Its output was written before each crash, but it has no marker: not done, and redone by the next run.
    assert (output / "part-001.jsonl").exists()
    assert len(output_ids(output)) == len(all_ids(expected))


def test_a_worker_death_in_a_group_redoes_only_the_unfinished_files_each_alone(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=4, docs_per_file=5)
    # The group holds the small files largest first: the worker finishes the largest, then dies writing the
    # second one's marker, every time.
    by_size = sorted(expected, key=lambda name: -(inputs / name).stat().st_size)
    first, crasher = by_size[0], by_size[1]
    env = crash_env(tmp_path, crasher, mode="always", allowed_failures=0)

    args = run_args(inputs, output, tiny_domain_model, "--max-retries", "1", "--tasks-per-worker", "1")
    result = run_cli(args, env=env)

    assert result.returncode == 1, result.stderr[-3000:]
    failures = read_jsonl(output / "_failures.ndjson")
    assert [(f["relpath"], f["attempts"], f["error_type"]) for f in failures] == [
        (crasher, 2, "KilledWorker")
    ]
    assert f"{first} was finished before its task failed" in result.stderr
    s = summary(output)
    # Retried: the crasher and the two files after it in the group (each alone); not the finished one.
    assert (s["files_processed"], s["files_failed"], s["retries"]) == (3, 1, 3)
    assert markers(output) == set(expected) - {crasher}
    ids = [i for i in output_ids(output) if not i.startswith(f"f{crasher[5:8]}-")]
    assert sorted(ids) == sorted(i for name in set(expected) - {crasher} for i in expected[name])
    assert temp_files(output) == []


BAD_LINES = {
    1: ['{"id": "bad-json", "text": ', '{"id": "no-text"}'],
    3: ['{"id": "number-text", "text": 42}'],
}


def test_bad_rows_fail_the_file_by_default(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=4, docs_per_file=5, bad_lines=BAD_LINES)

    result = run_cli(run_args(inputs, output, tiny_domain_model, "--max-retries", "3"))

    assert result.returncode == 1, result.stderr[-3000:]
    failures = {f["relpath"]: f for f in read_jsonl(output / "_failures.ndjson")}
    assert sorted(failures) == ["part-001.jsonl", "part-003.jsonl"]
    # Deterministic input errors are not retried; the error names the file and line (6 good rows, then line 7).
    assert failures["part-001.jsonl"]["attempts"] == 1
    assert "part-001.jsonl:7" in failures["part-001.jsonl"]["error"]
    assert "part-003.jsonl:6" in failures["part-003.jsonl"]["error"]
    assert markers(output) == {"part-000.jsonl", "part-002.jsonl"}
    assert summary(output)["retries"] == 0
    assert len(output_ids(output)) == len(expected["part-000.jsonl"]) + len(expected["part-002.jsonl"])


def test_bad_rows_are_quarantined_with_skip(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=4, docs_per_file=5, bad_lines=BAD_LINES)

    result = run_cli(run_args(inputs, output, tiny_domain_model, "--on-bad-row", "skip"))

    assert result.returncode == 0, result.stderr[-3000:]
    assert sorted(output_ids(output)) == all_ids(expected)  # every good row, once; no bad row
    for relpath, ids in expected.items():
        marker = read_marker(marker_path(str(output), relpath))
        bad = BAD_LINES.get(int(relpath[5:8]), [])
        assert (marker.rows_in, marker.rows_out, marker.rows_bad) == (len(ids), len(ids), len(bad))
        assert sum(marker.label_counts["domain_pred"].values()) == len(ids)
        quarantine = output / f"_{relpath}.quarantine"
        if not bad:
            assert marker.quarantine_path is None and not quarantine.exists()
            continue
        assert marker.quarantine_path == str(quarantine)
        rows = read_jsonl(quarantine)
        assert [r["raw"] for r in rows] == bad
        assert [r["line"] for r in rows] == list(range(len(ids) + 1, len(ids) + 1 + len(bad)))
        assert all(r["reason"] for r in rows)
    s = summary(output)
    assert (s["rows_bad"], s["documents_in"]) == (3, len(all_ids(expected)))


@pytest.mark.parametrize("piece_bytes", ["0", "300"])  # the file whole (in a group), or cut into pieces
def test_skip_sets_aside_rows_bad_in_any_classifiers_text_field(tmp_path, tiny_domain_model, piece_bytes):
    """Two classifiers reading different fields: a row whose second field is null, missing or not a string is
    quarantined (for both), not the whole file failed; the counts cover rows bad in either field."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    good = [{"id": f"g{i}", "text": f"sports game {i}", "prompt": f"a game {i}"} for i in range(6)]
    bad = [
        {"id": "null-prompt", "text": "sports", "prompt": None},
        {"id": "no-prompt", "text": "sports"},
        {"id": "number-prompt", "text": "sports", "prompt": 7},
        {"id": "null-text", "text": None, "prompt": "a game"},
    ]
    rows = [good[0], bad[0], *good[1:3], bad[1], good[3], bad[2], *good[4:], bad[3]]
    (inputs / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    config = tmp_path / "two.yaml"
    config.write_text(
        f"input: {inputs}\noutput: {output}\non_bad_row: skip\ndevice: cpu\npiece_bytes: {piece_bytes}\n"
        "classifiers:\n"
        f"  - classifier: domain\n    model: {tiny_domain_model}\n"
        f"  - classifier: domain\n    model: {tiny_domain_model}\n    text_field: prompt\n"
        "    pred_column: prompt_pred\n"
    )

    result = run_cli(["run", "--config", str(config), "--workers", "1", "--threads-per-worker", "1"])

    assert result.returncode == 0, result.stderr[-3000:]
    written = read_jsonl(output / "a.jsonl")
    assert [row["id"] for row in written] == [row["id"] for row in good]
    assert all(row["domain_pred"] and row["prompt_pred"] for row in written)
    quarantined = {json.loads(row["raw"])["id"]: row for row in read_jsonl(output / "_a.jsonl.quarantine")}
    assert sorted(quarantined) == sorted(row["id"] for row in bad)
    assert quarantined["null-prompt"]["reason"] == "text field 'prompt' is null"
    assert quarantined["no-prompt"]["reason"] == "missing text field 'prompt'"
    assert quarantined["number-prompt"]["reason"] == "text field 'prompt' is a JSON number, not a string"
    assert quarantined["null-text"]["reason"] == "text field 'text' is null"
    assert [quarantined[row["id"]]["line"] for row in bad] == [2, 5, 7, 10]
    s = summary(output)
    assert (s["rows_bad"], s["documents_in"], s["documents_out"]) == (4, 6, 6)
    pieces = read_marker(marker_path(str(output), "a.jsonl")).extra.get("pieces", [])
    assert (len(pieces) > 1) == (piece_bytes != "0")


def test_rows_json_cannot_read_and_whole_file_problems_through_the_cli(tmp_path, tiny_domain_model):
    """A first file opening with a row nested 3000 deep crashed the pre-run column check (rc 1, a traceback);
    such rows and a 5000-digit integer are quarantined under skip. gzip data named .jsonl fails its file
    once, not retried, naming the remedy (every line was a bad row). Hidden shards are said."""
    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    good = "".join(json.dumps({"id": i, "text": f"sports game {i}"}) + "\n" for i in range(4))
    deep = '{"text": "x", "v": ' + "[" * 3000 + "]" * 3000 + "}\n"
    huge = '{"text": "x", "n": ' + "9" * 5000 + "}\n"
    (inputs / "a.jsonl").write_text(deep + good + huge)
    (inputs / "b.jsonl").write_bytes(gzip.compress(good.encode()))
    (inputs / "_c.jsonl").write_text(good)

    result = run_cli(run_args(inputs, output, tiny_domain_model, "--on-bad-row", "skip"))

    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert "1 hidden or '_'-prefixed name(s) left out (_c.jsonl)" in result.stderr
    assert [row["id"] for row in read_jsonl(output / "a.jsonl")] == [0, 1, 2, 3]
    quarantined = read_jsonl(output / "_a.jsonl.quarantine")
    assert [(row["line"], row["reason"].split(" (")[0]) for row in quarantined] == [
        (1, "nesting too deep"),
        (6, "integer too long"),
    ]
    (failure,) = read_jsonl(output / "_failures.ndjson")
    assert (failure["relpath"], failure["attempts"]) == ("b.jsonl", 1)
    assert "this file is gzip-compressed" in failure["error"] and "name it b.jsonl.gz" in failure["error"]


@pytest.mark.parametrize("piece_bytes", ["0", "1"])
def test_a_parquet_file_without_the_text_column_fails_once_whole_or_in_pieces(
    tmp_path, tiny_domain_model, piece_bytes
):
    """Its every row was quarantined ("missing text field 'text'") and the file counted done: one error for
    the file, naming its columns and --text-field, not retried. The pre-run check sees only the first file."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    inputs, output = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    pq.write_table(pa.table({"id": [0, 1], "text": ["sports game", "a recipe"]}), inputs / "a.parquet")
    other = pa.table({"id": [2, 3, 4], "content": ["sports", "cooking", "news"]})
    pq.write_table(other, inputs / "b.parquet", row_group_size=1)

    result = run_cli(
        run_args(inputs, output, tiny_domain_model, "--on-bad-row", "skip", "--piece-bytes", piece_bytes)
    )

    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert [row["id"] for row in read_jsonl(output / "a.jsonl")] == [0, 1]
    assert not (output / "b.jsonl").exists() and not (output / "_b.jsonl.quarantine").exists()
    (failure,) = read_jsonl(output / "_failures.ndjson")
    assert (failure["relpath"], failure["attempts"]) == ("b.parquet", 1)
    assert "has no text column 'text' (its columns: 'id', 'content')" in failure["error"]
    assert "--text-field content" in failure["error"]
    assert summary(output)["rows_bad"] == 0
