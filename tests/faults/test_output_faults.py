"""The output file system refuses writes: a tiny tmpfs fills up (ENOSPC), then is remounted read-only.
Each time the run stops with exit 4 naming the path, leaves no temp or partial file under a final name,
and resumes cleanly once space is freed."""

from __future__ import annotations

import pytest
from driver_support import (
    all_ids,
    make_corpus,
    markers,
    output_files,
    read_jsonl,
    run_args,
    run_cli,
    temp_files,
)
from mounts import mount, tmpfs


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 96 KiB tmpfs (24 pages: a handful of outputs and markers) at tmp_path/out, unmounted afterwards."""
    with tmpfs(tmp_path / "out", "size=96k") as mountpoint:
        yield mountpoint


def _assert_outputs_complete(output, expected) -> None:
    """Every final-named output holds exactly its input's documents (complete, never partial)."""
    for rel, path in output_files(output).items():
        assert [row["id"] for row in read_jsonl(path)] == expected[rel], rel


def test_disk_full_then_read_only_then_resume(tmp_path, tiny_tmpfs, tiny_domain_model):
    inputs, output = tmp_path / "in", tiny_tmpfs
    expected = make_corpus(inputs, n_files=24, docs_per_file=12)
    args = run_args(inputs, output, tiny_domain_model)

    full = run_cli(args)
    assert full.returncode == 4, full.stderr[-3000:]
    assert f"cannot write {output}/" in full.stderr and "No space left on device" in full.stderr
    assert "HINT: free space" in full.stderr
    assert temp_files(output) == []
    assert 0 < len(markers(output)) < len(expected)
    _assert_outputs_complete(output, expected)

    mount("-o", "remount,ro", str(output))
    read_only = run_cli(args)
    assert read_only.returncode == 4, read_only.stderr[-3000:]
    assert f"cannot write {output}/" in read_only.stderr and "Read-only file system" in read_only.stderr

    mount("-o", "remount,rw,size=16m", str(output))  # space freed
    resumed = run_cli(args)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert markers(output) == set(expected)
    ids = [row["id"] for path in output_files(output).values() for row in read_jsonl(path)]
    assert sorted(ids) == all_ids(expected)  # every document exactly once
    assert temp_files(output) == []
    _assert_outputs_complete(output, expected)
