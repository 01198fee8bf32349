"""An --overwrite discards every output of the previous run's planned files, not only those its listing of
`_markers/` finds (driver/stale_outputs.py): a shared file system's cached listing may miss a marker another
node wrote a moment ago, and that file's output of the old settings would stay under its final name with no
marker once `_markers/` is removed: read by everyone who globs the directory, its documents twice, or those
of the old settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from driver_support import RUN_TIMEOUT, all_ids, cli_env, make_corpus, output_files, run_args, run_cli
from test_stale_outputs import data_ids

HERE = Path(__file__).resolve().parent
HIDDEN = "part-001.jsonl"


def overwrite_with_a_lagging_listing(inputs: Path, output: Path, model: Path, *settings: str):
    """`run --overwrite` whose listings of `_markers/` miss HIDDEN's marker while it discards the old run."""
    env = cli_env(HPC_TEST_HIDDEN_MARKER=str(output / "_markers" / f"{HIDDEN}.done.json"))
    return subprocess.run(
        [sys.executable, str(HERE / "lagging_markers_driver.py"),
         *run_args(inputs, output, model, "--overwrite", *settings)],
        env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip


def test_another_output_format_leaves_no_output_of_the_old_one(tmp_path, tiny_domain_model):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4, bad_lines={1: ['{"id": "x", "text": null}']})
    skip = ("--on-bad-row", "skip")  # HIDDEN's bad row is quarantined beside its output
    first = run_cli(run_args(inputs, output, tiny_domain_model, *skip))
    assert first.returncode == 0, first.stderr[-3000:]
    assert (output / f"_{HIDDEN}.quarantine").is_file()

    second = overwrite_with_a_lagging_listing(
        inputs, output, tiny_domain_model, "--output-format", "parquet", *skip
    )

    assert second.returncode == 0, second.stderr[-3000:]
    assert f"TEST: a listing of {output / '_markers'} missed {HIDDEN}.done.json" in second.stderr
    assert data_ids(output) == all_ids(expected)  # each of the 15 documents once: none of the old jsonl
    assert sorted(output_files(output)) == ["part-000.parquet", "part-001.parquet", "part-002.parquet"]
    assert sorted(p.name for p in output.glob("_*.quarantine*")) == ["_part-001.parquet.quarantine"]
    assert "removed 4 old output file(s)" in second.stderr  # 3 outputs and HIDDEN's quarantine


def test_a_file_that_fails_under_the_new_settings_keeps_no_output_of_the_old_ones(
    tmp_path, tiny_domain_model
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    with open(inputs / HIDDEN, "a", encoding="utf-8") as f:
        f.write("not json\n")  # the new run fails HIDDEN (--on-bad-row error)

    second = overwrite_with_a_lagging_listing(
        inputs, output, tiny_domain_model, "--keep-columns", "id", "text"
    )

    assert second.returncode == 1, second.stderr[-3000:]
    assert f"TEST: a listing of {output / '_markers'} missed {HIDDEN}.done.json" in second.stderr
    assert not (
        output / HIDDEN
    ).exists()  # same name under both settings: the old output is gone all the same
    assert sorted(output_files(output)) == ["part-000.jsonl", "part-002.jsonl"]
    assert data_ids(output) == sorted(expected["part-000.jsonl"] + expected["part-002.jsonl"])
    assert "removed 3 old output file(s)" in second.stderr
