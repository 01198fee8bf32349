"""File discovery: deterministic listing, input expansion, output names."""

from __future__ import annotations

import os

import pytest

from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.io.discovery import InputFile, absolute_spec, expand_inputs, output_relpath
from hpc_classify.io.nemo_files import get_all_files_paths_under


def _touch(root, *relpaths):
    for rel in relpaths:
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write("{}\n")


@pytest.fixture
def corpus(tmp_path):
    _touch(
        tmp_path,
        "b.jsonl",
        "a.jsonl.gz",
        "c.parquet",
        "notes.txt",
        "sub/d.jsonl.zst",
        "sub/deeper/e.json",
        ".hidden.jsonl",
        "_summary.json",
        "_markers/a.jsonl.gz.done.json",
        ".cache/f.jsonl",
        ".b.jsonl.tmp-1-abcd",
    )
    return tmp_path


def test_get_all_files_paths_under_sorted_and_skips_bookkeeping(corpus):
    rels = [os.path.relpath(p, corpus) for p in get_all_files_paths_under(str(corpus))]
    assert rels == ["a.jsonl.gz", "b.jsonl", "c.parquet", "notes.txt", "sub/d.jsonl.zst", "sub/deeper/e.json"]


def test_get_all_files_paths_under_keeps_root_prefix(corpus):
    paths = get_all_files_paths_under(str(corpus), keep_extensions="jsonl")
    assert paths == [os.path.join(str(corpus), "b.jsonl")]


def test_get_all_files_paths_under_no_recursion(corpus):
    rels = [
        os.path.relpath(p, corpus)
        for p in get_all_files_paths_under(str(corpus), recurse_subdirectories=False)
    ]
    assert rels == ["a.jsonl.gz", "b.jsonl", "c.parquet", "notes.txt"]


def test_get_all_files_paths_under_extensions_with_and_without_dot(corpus):
    paths = get_all_files_paths_under(str(corpus), keep_extensions=[".jsonl.gz", "parquet", "jsonl.zst"])
    assert [os.path.relpath(p, corpus) for p in paths] == ["a.jsonl.gz", "c.parquet", "sub/d.jsonl.zst"]


def test_expand_directory_relpaths(corpus):
    inputs = expand_inputs([str(corpus)])
    assert [i.relpath for i in inputs] == [
        "a.jsonl.gz",
        "b.jsonl",
        "c.parquet",
        "sub/d.jsonl.zst",
        "sub/deeper/e.json",
    ]
    assert all(os.path.isabs(i.path) and i.path == os.path.join(str(corpus), i.relpath) for i in inputs)


def test_expand_file_and_glob_use_base_name_and_dedupe(corpus):
    inputs = expand_inputs(
        [str(corpus / "sub" / "d.jsonl.zst"), str(corpus / "*.jsonl*"), str(corpus / "b.jsonl")]
    )
    assert inputs == [
        InputFile(str(corpus / "a.jsonl.gz"), "a.jsonl.gz"),
        InputFile(str(corpus / "b.jsonl"), "b.jsonl"),
        InputFile(str(corpus / "sub" / "d.jsonl.zst"), "d.jsonl.zst"),
    ]


def test_recursive_glob_skips_bookkeeping_dirs(corpus):
    inputs = expand_inputs([str(corpus / "**" / "*.json")])
    assert [i.relpath for i in inputs] == ["e.json"]


def test_expand_same_relpath_from_two_places_is_refused(tmp_path):
    _touch(tmp_path, "x/a.jsonl", "y/a.jsonl")
    with pytest.raises(ConfigError, match="would both write output 'a.jsonl'"):
        expand_inputs([str(tmp_path / "x" / "a.jsonl"), str(tmp_path / "y" / "a.jsonl")])


def test_expand_missing_path_and_empty_glob(tmp_path):
    with pytest.raises(InputFileError, match="no such file or directory") as missing:
        expand_inputs([str(tmp_path / "missing.jsonl")])
    assert missing.value.hint is not None
    with pytest.raises(InputFileError, match="pattern matches no document files"):
        expand_inputs([str(tmp_path / "*.jsonl")])


def test_expand_unsupported_file_is_refused(corpus):
    with pytest.raises(InputFileError, match="not a supported document file"):
        expand_inputs([str(corpus / "notes.txt")])


@pytest.mark.parametrize(
    ("relpath", "fmt", "expected"),
    [
        ("a/x.jsonl.gz", "jsonl", "a/x.jsonl.gz"),
        ("x.jsonl.zst", "jsonl", "x.jsonl.zst"),
        ("x.jsonl", "jsonl", "x.jsonl"),
        ("x.jsonl.gz", "parquet", "x.parquet"),
        ("x.parquet", "jsonl", "x.jsonl"),
        ("x.parquet", "parquet", "x.parquet"),
        ("x.json", "parquet", "x.parquet"),
    ],
)
def test_output_relpath(relpath, fmt, expected):
    assert output_relpath(relpath, fmt) == expected


def test_output_relpath_rejects_unknown():
    with pytest.raises(ConfigError):
        output_relpath("x.txt", "jsonl")
    with pytest.raises(ConfigError):
        output_relpath("x.jsonl", "csv")


def test_hidden_documents_and_directories_left_out_of_a_directory_are_said(corpus, caplog):
    """`hpc-classify run` skipped `_part-0001.jsonl` shards without a word (the Python listing warns)."""
    _touch(corpus, "_part-0001.jsonl", "sub/_part-0002.parquet", "_x.jsonl.quarantine.jsonl", "_SUCCESS")
    with caplog.at_level("WARNING", logger="hpc_classify.io.discovery"):
        expand_inputs([str(corpus)])
    hidden = [m for m in caplog.messages if "hidden or" in m]
    assert hidden == [
        f"{corpus}: 4 hidden or '_'-prefixed name(s) left out (.cache{os.sep}, .hidden.jsonl, _part-0001.jsonl, "
        "...): names starting with '.' or '_' are never read from a directory; rename them, or give such a "
        "file as an input by its own path"
    ]
    assert expand_inputs([str(corpus / "_part-0001.jsonl")])[0].relpath == "_part-0001.jsonl"  # the remedy


def test_bookkeeping_and_hidden_non_documents_are_not_said(tmp_path, caplog):
    _touch(
        tmp_path, "a.jsonl", "_summary.json", "_markers/a.jsonl.done.json", ".a.jsonl.tmp-1-abcd", "_SUCCESS"
    )
    _touch(tmp_path, "_a.jsonl.quarantine.jsonl", ".DS_Store", ".gitattributes", "_notes.txt")
    with caplog.at_level("WARNING", logger="hpc_classify.io.discovery"):
        assert [i.relpath for i in expand_inputs([str(tmp_path)])] == ["a.jsonl"]
    assert caplog.messages == []


def test_absolute_spec_resolves_against_the_base_given_an_existing_path_normalised_a_glob_only_joined(
    tmp_path, monkeypatch
):
    (tmp_path / "data" / "corp[1]").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)  # not the base: the base decides, the cwd only where none is given
    base = str(tmp_path / "data")

    assert absolute_spec("./corp[1]/", base) == str(tmp_path / "data" / "corp[1]")  # a path, literally
    assert absolute_spec("../data/*.jsonl", base) == os.path.join(base, "../data/*.jsonl")  # `..` kept
    assert absolute_spec("/abs/x.jsonl", base) == "/abs/x.jsonl"
    assert absolute_spec("data/./corp[1]") == str(tmp_path / "data" / "corp[1]")
    assert absolute_spec("x/../y.jsonl", base, exists=True) == os.path.join(base, "y.jsonl")  # not looked up
