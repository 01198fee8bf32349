"""NeMo Curator 0.7.1's `nemo_curator.utils.file_utils` helpers, compared with what NeMo's return on small trees."""

from __future__ import annotations

import logging
import os

import pytest

from hpc_classify.utils.file_utils import get_all_files_paths_under


@pytest.fixture
def tree(tmp_path):
    """NeMo would list every file here: .x.jsonl, B.JSONL, _private/c.jsonl, _shard_000.jsonl, a.jsonl, sub/d.jsonl."""
    root = tmp_path / "gd"
    for rel in [".x.jsonl", "B.JSONL", "_private/c.jsonl", "_shard_000.jsonl", "a.jsonl", "sub/d.jsonl"]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text('{"text": "x"}\n')
    return str(root)


def test_hidden_and_underscore_names_are_skipped_with_a_warning_naming_them(tree, caplog):
    with caplog.at_level(logging.WARNING, logger="hpc_classify.io.discovery"):
        paths = get_all_files_paths_under(tree)
    assert paths == [os.path.join(tree, p) for p in ["B.JSONL", "a.jsonl", os.path.join("sub", "d.jsonl")]]
    [record] = caplog.records
    assert record.getMessage() == (
        f"{tree}: 3 hidden or '_'-prefixed name(s) skipped, not listed (.x.jsonl, _private, _shard_000.jsonl): "
        "bookkeeping such as _SUCCESS, _markers/ or temp files; NeMo would list them"
    )


def test_nothing_skipped_no_warning(tree, caplog):
    with caplog.at_level(logging.WARNING, logger="hpc_classify.io.discovery"):
        assert get_all_files_paths_under(os.path.join(tree, "sub")) == [os.path.join(tree, "sub", "d.jsonl")]
    assert not caplog.records


def test_keep_extensions_is_case_sensitive_as_nemos_and_warns_when_it_leaves_files_out(tree):
    with pytest.warns(
        UserWarning, match=r"Skipped 1 of 3 file\(s\) not ending with \.jsonl \(case-sensitive\)"
    ):
        paths = get_all_files_paths_under(tree, keep_extensions="jsonl")
    assert paths == [os.path.join(tree, "a.jsonl"), os.path.join(tree, "sub", "d.jsonl")]
    assert get_all_files_paths_under(tree, keep_extensions=".JSONL") == [os.path.join(tree, "B.JSONL")]


def test_without_recursion_only_the_top_level_files(tree):
    assert get_all_files_paths_under(tree, recurse_subdirectories=False) == [
        os.path.join(tree, "B.JSONL"),
        os.path.join(tree, "a.jsonl"),
    ]
