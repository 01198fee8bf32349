"""An --overwrite takes the output directory over before it discards the old run's files (driver/fingerprint.py):
a kill at any point of it leaves a directory the next run finishes, every document once with the new settings.
Pieces left by a run of other settings, or by an older version that recorded no settings, are never assembled
into the new output: they are removed and their file classified again (driver/foreign_pieces.py)."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from driver_support import (
    RUN_TIMEOUT,
    all_ids,
    cli_env,
    make_corpus,
    output_files,
    read_jsonl,
    run_args,
    run_cli,
    start_cli,
    summary,
    wait_for,
)
from test_stale_outputs import data_ids

from hpc_classify.driver import piece_files

HERE = Path(__file__).resolve().parent
REL = "part-000.jsonl"


def _run_json(output: Path) -> dict:
    return json.loads((output / "_run.json").read_text())


@pytest.mark.parametrize("again", [(), ("--overwrite",)], ids=["new-settings", "overwrite-again"])
def test_an_overwrite_killed_during_its_discard_leaves_each_document_once_after_the_next_run(
    tmp_path, tiny_domain_model, again
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=3, docs_per_file=4)
    first = run_cli(run_args(inputs, output, tiny_domain_model))
    assert first.returncode == 0, first.stderr[-3000:]
    old = _run_json(output)["fingerprint"]
    new_settings = ("--output-format", "parquet")

    killed = subprocess.run(
        [sys.executable, str(HERE / "discard_crash_driver.py"),
         *run_args(inputs, output, tiny_domain_model, "--overwrite", *new_settings)],
        env=cli_env(), capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip

    assert killed.returncode == 17, killed.stderr[-3000:]
    assert _run_json(output)["fingerprint"] != old  # the old run's tasks were fenced out before the discard
    assert len(output_files(output)) == 2  # killed after removing one old output of three

    resumed = run_cli(run_args(inputs, output, tiny_domain_model, *new_settings, *again))

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "finishing the discard of a previous run that an --overwrite began" in resumed.stderr
    assert data_ids(output) == all_ids(expected)  # each of the 14 documents once, in the new format only
    assert sorted(output_files(output)) == ["part-000.parquet", "part-001.parquet", "part-002.parquet"]
    assert "discarding" not in _run_json(output)


def _stop_after_some_pieces(tmp_path: Path, inputs: Path, output: Path, args: list[str]) -> int:
    """Start the run, SIGTERM it once 3 pieces of REL are done; returns the pieces done (fewer than all)."""
    pieces = Path(piece_files.pieces_dir(str(output), REL))
    done = lambda: sorted(p.name for p in pieces.glob("0*.done")) if pieces.exists() else []  # noqa: E731
    proc = start_cli([*args, "--stop-grace", "0"], tmp_path / "stopped.log")
    wait_for(lambda: len(done()) >= 3, timeout=300, what="3 pieces done")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 3, (tmp_path / "stopped.log").read_text()[-3000:]
    total = len(json.loads((pieces / "layout").read_text())["pieces"])
    assert 3 <= len(done()) < total, "the file was finished before SIGTERM: the test proved nothing"
    return total


@pytest.mark.parametrize("left_by", ["other-settings", "older-version"])
def test_pieces_not_made_for_this_run_are_redone_each_document_once(tmp_path, tiny_domain_model, left_by):
    inputs, output = tmp_path / "in", tmp_path / "out"
    expected = make_corpus(inputs, n_files=1, docs_per_file=200)
    piece_bytes = str((inputs / REL).stat().st_size // 20)
    old_args = run_args(inputs, output, tiny_domain_model, "--piece-bytes", piece_bytes, "--max-chars", "60")
    total = _stop_after_some_pieces(tmp_path, inputs, output, old_args)
    new_args = run_args(inputs, output, tiny_domain_model, "--piece-bytes", piece_bytes)
    old_fingerprint = _run_json(output)["fingerprint"]
    if left_by == "other-settings":
        # The directory owned by the new settings, the old settings' pieces still in it: the new run's
        # _run.json, taken from a reference run of the new settings (which also gives the labels expected).
        reference = tmp_path / "reference"
        done = run_cli(run_args(inputs, reference, tiny_domain_model, "--piece-bytes", piece_bytes))
        assert done.returncode == 0, done.stderr[-3000:]
        shutil.copy(reference / "_run.json", output / "_run.json")
        why = (
            f"made under other settings (fingerprint {old_fingerprint}, "
            f"this run's {_run_json(reference)['fingerprint']})"
        )
    else:  # a layout as an older version wrote it, with no fingerprint nor input path
        layout_path = Path(piece_files.layout_path(str(output), REL))
        layout = json.loads(layout_path.read_text())
        layout.pop("fingerprint", None), layout.pop("input_path", None)
        layout_path.write_text(json.dumps(layout))
        new_args, reference = old_args, None
        why = "cut by an older version of hpc-classify, which recorded neither their settings nor their input"

    resumed = run_cli(new_args)

    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # One summary warning (each file's reason, `why`, at DEBUG: tests/unit/test_foreign_pieces.py).
    warning = (
        "removed 1 pieces directory made for another run (other settings, another input file, or an older "
        f"version that recorded neither); 1 of their files will be classified again from their first piece ({REL})"
    )
    assert resumed.stderr.count(warning) == 1, resumed.stderr[-3000:]
    assert why not in resumed.stderr
    assert summary(output)["pieces_processed"] == total  # every piece again, none taken from the old run
    rows = read_jsonl(output / REL)
    assert [row["id"] for row in rows] == expected[REL]  # each document once, in input order
    if reference is not None:  # labelled with the new settings, as a run of them alone labels them
        assert rows == read_jsonl(reference / REL)
