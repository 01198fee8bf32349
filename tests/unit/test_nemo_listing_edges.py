"""`get_all_files_paths_under` at its edges, against NeMo Curator 0.7.1's own function.

`nemo_get_all_files_paths_under` below is NeMo 0.7.1's (nemo_curator/utils/file_utils.py), copied as the
reference: it imports nothing but `os` and `warnings`. Ours differs on purpose only where
docs/nemo-differences.md says (hidden and `_` names, directories without recursion, link loops, unlistable
subdirectories); the trees here have none of those, so the lists must be equal.
"""

from __future__ import annotations

import logging
import os
import warnings

import pytest

from hpc_classify.errors import InputFileError
from hpc_classify.utils.file_utils import get_all_files_paths_under


def nemo_filter_files_by_extension(files_list, keep_extensions):
    filtered_files = []
    if isinstance(keep_extensions, str):
        keep_extensions = [keep_extensions]
    file_extensions = [s if s.startswith(".") else "." + s for s in keep_extensions]
    for file in files_list:
        if file.endswith(tuple(file_extensions)):
            filtered_files.append(file)
    if len(files_list) != len(filtered_files):
        warnings.warn("Skipped at least one file due to unmatched file extension(s).", stacklevel=2)
    return filtered_files


def nemo_get_all_files_paths_under(
    root, recurse_subdirectories=True, followlinks=False, keep_extensions=None
):
    if recurse_subdirectories:
        file_ls = [
            os.path.join(r, f) for r, subdirs, files in os.walk(root, followlinks=followlinks) for f in files
        ]
    else:
        file_ls = [entry.path for entry in os.scandir(root)]
    file_ls.sort()
    if keep_extensions is not None:
        file_ls = nemo_filter_files_by_extension(file_ls, keep_extensions)
    return file_ls


LOGGER = "hpc_classify.io.nemo_files"


@pytest.fixture
def corpus(tmp_path):
    """Names whose order is not the walk's (`b-1` < `b.jsonl` < `b/` < `b0/` as strings), links to a file,
    to nothing and to a directory outside, and no hidden or `_` name."""
    root = tmp_path / "c"
    for rel in [
        "a.jsonl",
        "A.jsonl",
        "b-1.jsonl",
        "b.jsonl",
        "b/x.jsonl",
        "b0/y.parquet",
        "z.txt",
        "sub dir/q.jsonl",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("{}\n")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "r.jsonl").write_text("{}\n")
    (root / "link.jsonl").symlink_to(root / "a.jsonl")
    (root / "broken.jsonl").symlink_to(root / "gone.jsonl")
    (root / "ldir").symlink_to(tmp_path / "elsewhere")
    return root


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"followlinks": True},
        {"keep_extensions": "jsonl"},
        {"keep_extensions": ".parquet"},
        {"keep_extensions": ["jsonl", ".parquet"]},
        {"keep_extensions": ("txt",)},
        {"keep_extensions": []},
    ],
)
@pytest.mark.parametrize("spelling", ["absolute", "trailing slash", "relative", "dot"])
def test_lists_what_nemos_lists_in_nemos_order(corpus, monkeypatch, kwargs, spelling):
    root = {"absolute": str(corpus), "trailing slash": f"{corpus}/", "relative": "c", "dot": "."}[spelling]
    monkeypatch.chdir(corpus if spelling == "dot" else corpus.parent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert get_all_files_paths_under(root, **kwargs) == nemo_get_all_files_paths_under(root, **kwargs)


def test_without_recursion_the_files_nemo_lists(corpus):
    """NeMo lists the directories too (`os.scandir`): a documented difference; the files are the same."""
    nemo = [p for p in nemo_get_all_files_paths_under(str(corpus), False) if not os.path.isdir(p)]
    assert get_all_files_paths_under(str(corpus), recurse_subdirectories=False) == nemo
    assert os.path.join(str(corpus), "broken.jsonl") in nemo


def test_keep_extensions_from_an_iterator_is_read_once(corpus):
    """The extensions are read for the skipped-names warning as well as the filter: an iterator must not be
    spent on the first (old: nothing listed at all)."""
    (corpus / "_x.parquet").write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        got = get_all_files_paths_under(str(corpus), keep_extensions=iter(["parquet"]))
        nemo = nemo_get_all_files_paths_under(str(corpus), keep_extensions=iter(["parquet"]))
    assert got == [p for p in nemo if "_x" not in p] == [str(corpus / "b0" / "y.parquet")]


@pytest.mark.parametrize("what", ["missing", "a file"])
def test_a_root_that_is_no_directory_lists_nothing_as_nemos_with_a_warning(tmp_path, caplog, what):
    root = tmp_path / "corpus"
    if what == "a file":
        root.write_text("{}\n")
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert get_all_files_paths_under(str(root)) == nemo_get_all_files_paths_under(str(root)) == []
        assert get_all_files_paths_under(str(root), keep_extensions="jsonl") == []
    reason = "no such directory" if what == "missing" else "not a directory"
    assert (
        caplog.messages
        == [
            f"{root}: {reason}: no files listed (as NeMo's os.walk); pass the directory that holds the corpus files"
        ]
        * 2
    )


@pytest.mark.parametrize(
    ("what", "builtin"), [("missing", FileNotFoundError), ("a file", NotADirectoryError)]
)
def test_without_recursion_a_root_that_is_no_directory_raises_nemos_error(tmp_path, what, builtin):
    root = tmp_path / "corpus"
    if what == "a file":
        root.write_text("{}\n")
    with pytest.raises(builtin):
        nemo_get_all_files_paths_under(str(root), recurse_subdirectories=False)
    with pytest.raises(builtin) as info:
        get_all_files_paths_under(str(root), recurse_subdirectories=False)
    assert isinstance(info.value, InputFileError) and info.value.filename == str(root)
    reason = "no such directory" if what == "missing" else "not a directory"
    assert info.value.one_line() == f"{root}: {reason}; HINT: pass the directory that holds the corpus files"
