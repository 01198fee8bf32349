"""Changing the --input root between runs into one --output: nothing classified twice under new names,
and no marker taken for another file of the same size and mtime (driver/input_roots.py,
driver/input_changes.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from driver_support import make_corpus, output_ids, read_jsonl, run_args, run_cli, summary


def _nest(root: Path) -> tuple[list[str], list[str]]:
    """`root/top.jsonl` (ids t000-*) and `root/en/part-00{0,1}.jsonl` (f000-*, f001-*); returns (top ids,
    en ids)."""
    make_corpus(root / "top", n_files=1, docs_per_file=10, seed=1)
    rows = read_jsonl(root / "top" / "part-000.jsonl")
    (root / "top.jsonl").write_text("".join(json.dumps({**r, "id": "t" + r["id"][1:]}) + "\n" for r in rows))
    (root / "top" / "part-000.jsonl").unlink()
    (root / "top").rmdir()
    expected = make_corpus(root / "en", n_files=2, docs_per_file=10, seed=2)
    top_ids = [row["id"] for row in read_jsonl(root / "top.jsonl")]
    return top_ids, [i for part in expected.values() for i in part]


def _snapshot(output: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(output)): (p.stat().st_size, p.stat().st_mtime_ns) for p in output.rglob("*")}


@pytest.mark.parametrize(("first", "second"), [("", "en"), ("en", "")], ids=["narrowed", "widened"])
def test_another_input_root_over_the_same_files_is_refused_before_anything_is_written(
    tmp_path, tiny_domain_model, first, second
):
    nest, output = tmp_path / "nest", tmp_path / "out"
    top_ids, en_ids = _nest(nest)
    done = run_cli(run_args(nest / first, output, tiny_domain_model))
    assert done.returncode == 0, done.stderr[-3000:]
    before = _snapshot(output)

    again = run_cli(run_args(nest / second, output, tiny_domain_model))

    assert again.returncode == 2, again.stderr[-3000:]
    assert f"listed under another input root (--input {nest / first}" in again.stderr
    assert "give the original --input to resume this output directory, or a new --output" in again.stderr
    assert _snapshot(output) == before  # nothing written by the refused run
    # Each document of the first run's inputs exactly once.
    assert sorted(output_ids(output)) == sorted(en_ids + (top_ids if first == "" else []))


def test_a_new_file_under_an_old_files_output_name_is_never_skipped_for_its_marker(
    tmp_path, tiny_domain_model
):
    """`nest2/x.jsonl` and `nest2/en/x.jsonl`: other documents, the same size and mtime."""
    nest, output = tmp_path / "nest2", tmp_path / "out"
    make_corpus(nest / "en", n_files=1, docs_per_file=10, seed=3)
    en = nest / "en" / "part-000.jsonl"
    rows = read_jsonl(en)
    top = nest / "part-000.jsonl"
    top.write_text("".join(json.dumps({**r, "id": r["id"].replace("f", "g")}) + "\n" for r in rows))
    os.utime(top, ns=(en.stat().st_atime_ns, en.stat().st_mtime_ns))
    assert top.stat().st_size == en.stat().st_size
    top_ids = sorted(r["id"] for r in read_jsonl(top))

    done = run_cli(run_args(nest / "en", output, tiny_domain_model))
    assert done.returncode == 0, done.stderr[-3000:]
    # The whole tree: en/part-000.jsonl would be renamed, and part-000.jsonl take its marker: refused.
    wider = run_cli(run_args(nest, output, tiny_domain_model))
    assert wider.returncode == 2, wider.stderr[-3000:]
    assert "under another input root" in wider.stderr
    # The top file alone, by its path: its output name is the old file's, whose marker is not its own.
    alone = run_cli(run_args(top, output, tiny_domain_model))
    assert alone.returncode == 2, alone.stderr[-3000:]
    assert f"{top}: classified from another input file, {en}, which still exists" in alone.stderr
    assert sorted(output_ids(output)) == sorted(r["id"] for r in rows)  # untouched

    redo = run_cli(run_args(top, output, tiny_domain_model, "--on-changed-input", "redo"))

    assert redo.returncode == 0, redo.stderr[-3000:]
    assert summary(output)["files_processed"] == 1
    assert sorted(output_ids(output)) == top_ids  # the top file's documents, each once
