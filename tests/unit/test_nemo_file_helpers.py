"""NeMo Curator 0.7.1's small `file_utils` helpers against NeMo's own code, copied verbatim as oracles into
tests/nemo_file_oracles.py: the same results on many inputs, except the sizes NeMo's
`parse_str_of_num_bytes` misreads ("100" is 10 bytes there), which are a ValueError here."""

from __future__ import annotations

import math
import os
import pathlib

import pytest
from nemo_file_oracles import (
    NEMO_HOME,
    nemo_merge_counts,
    nemo_mkdir,
    nemo_parse_str_of_num_bytes,
    nemo_remove_path_extension,
    nemo_write_record,
)

from hpc_classify.errors import ConfigError, InputFileError
from hpc_classify.utils import file_utils
from hpc_classify.utils.file_utils import (
    NEMO_CURATOR_HOME,
    merge_counts,
    mkdir,
    parse_str_of_num_bytes,
    remove_path_extension,
    write_record,
)

# --- the comparisons ---------------------------------------------------------------------------------------


def test_every_public_name_of_nemos_module_is_here():
    nemo_names = {
        "NEMO_CURATOR_HOME",
        "mkdir",
        "expand_outdir_and_mkdir",
        "filter_files_by_extension",
        "get_all_files_paths_under",
        "get_remaining_files",
        "get_batched_files",
        "write_dataframe_by_meta",
        "merge_counts",
        "write_record",
        "separate_by_metadata",
        "parse_str_of_num_bytes",
        "reshard_jsonl",
        "remove_path_extension",
    }
    assert nemo_names <= set(file_utils.__all__)
    assert all(hasattr(file_utils, name) for name in nemo_names)


def test_nemo_curator_home_as_nemos():
    assert NEMO_CURATOR_HOME == NEMO_HOME


PATHS = [
    "a.jsonl",
    "a",
    "dir/a.b.c",
    "/abs/x.tar.gz",
    ".hidden",
    ".hidden.jsonl",
    "a.",
    "a/",
    "..",
    ".",
    "",
    "~/x.jsonl",
    "dir/sub/",
    "/",
    "a..b",
    pathlib.Path("d/e.parquet"),
    pathlib.PurePosixPath("/x/y"),
]


@pytest.mark.parametrize("path", PATHS, ids=repr)
def test_remove_path_extension_as_nemos(path):
    assert remove_path_extension(path) == nemo_remove_path_extension(path)


def test_mkdir_as_nemos(tmp_path):
    for make in (mkdir, nemo_mkdir):
        target = tmp_path / make.__name__ / "a" / "b"
        assert make(str(target)) is None and target.is_dir()
        assert make(target) is None  # exists: fine
        (tmp_path / "file").write_text("")
        with pytest.raises(FileExistsError):
            make(tmp_path / "file")


def test_merge_counts_as_nemos():
    cases = [
        ({}, {}),
        ({"a": 1}, {}),
        ({}, {"a": 2}),
        ({"a": 1, "b": 2}, {"b": 3, "c": 4}),
        ({1: 1}, {1: 1, None: 2}),
    ]
    for first, second in cases:
        ours_first, nemo_first = dict(first), dict(first)
        result = merge_counts(ours_first, dict(second))
        assert result is ours_first  # changed in place and returned, as NeMo's
        assert result == nemo_merge_counts(nemo_first, dict(second))
        assert list(result) == list(nemo_first)


SIZES = [
    "100M", "100m", "1k", "1K", "2g", "2G", "1.5k", "0.1k", "10b", "10B", " 10M", "-1k", "1e3k", "0k", "007m",
    "1_000k", "abc", "k", "10kb", "10M ", "x10M", "1,5k", "nank", "infk", "100", "1.5", "10T", "10x", "", "0",
]  # fmt: skip


def _nemo(s):
    try:
        return nemo_parse_str_of_num_bytes(s)
    except Exception as exc:  # noqa: BLE001
        return type(exc)


@pytest.mark.parametrize("size", SIZES, ids=repr)
def test_parse_str_of_num_bytes_as_nemos_where_nemo_reads_a_unit(size):
    expected = _nemo(size)
    unit_read = size[-1:].lower() in ("k", "m", "g", "b")
    if unit_read and isinstance(expected, int):
        assert parse_str_of_num_bytes(size) == expected
        assert parse_str_of_num_bytes(size, return_str=True) is size
        return
    # NeMo fails (ValueError, or OverflowError and IndexError from inside), or reads a unit it does not know
    # by dropping the last character ("100" -> 10, "10T" -> 10): a ValueError naming the size here.
    with pytest.raises(ValueError, match="Invalid size") as caught:
        parse_str_of_num_bytes(size)
    assert isinstance(caught.value, ConfigError) and "K, M or G" in caught.value.hint
    if not unit_read and isinstance(expected, int):
        assert expected != (int(size) if size.isdigit() else None)  # what NeMo got wrong


def test_parse_str_of_num_bytes_examples():
    assert parse_str_of_num_bytes("100M") == 100 * 1024**2
    assert parse_str_of_num_bytes("1.5k") == 1536
    assert nemo_parse_str_of_num_bytes("100") == 10  # NeMo's misreading, refused here
    with pytest.raises(TypeError, match="string such as"):
        parse_str_of_num_bytes(100)
    assert math.isclose(parse_str_of_num_bytes("0.5G"), 2**29)


LINES = [
    '{"text": "a", "dom": "Games"}\n',
    '{"text": "\\u00e9 b", "dom": "News", "n": 1.5}',
    '{"text": "c"}\n',  # no field: None
    "not json\n",
    "\n",
    '{"text": "d", "dom": "Games", "nested": {"x": [1, 2]}}\n',
    '{"text": "e", "dom": "Sports"}\n',
]


@pytest.mark.parametrize(
    "include, exclude",
    [(None, None), (["Games"], None), (None, ["Games"]), ([], []), (["News", "Sports"], ["News"])],
)
def test_write_record_as_nemos(tmp_path, include, exclude):
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    for name, write in (("ours", write_record), ("nemo", nemo_write_record)):
        returned = []
        for file_name in (inp / "a.jsonl", inp / "sub" / "b.jsonl"):
            for line in LINES:
                returned.append(
                    write(str(inp), str(file_name), line, "dom", str(tmp_path / name), include, exclude)
                )
        if name == "ours":
            ours_returned = returned
        else:
            assert ours_returned == returned
    assert _tree(tmp_path / "ours") == _tree(tmp_path / "nemo")


@pytest.mark.parametrize("depth", [201, 3000, 100_000])
def test_write_record_of_a_row_deeper_than_the_readers_read_is_their_error(tmp_path, depth):
    """NeMo's json.loads lets a RecursionError through (3000, 100000 levels; fewer levels are written, and
    then refused by every reader here): the readers' error, naming the file, nothing written."""
    line = '{"dom": "Games", "v": ' + "[" * depth + "]" * depth + "}\n"
    inp = str(tmp_path / "in")
    with pytest.raises(
        InputFileError, match=r"/in/a\.jsonl: nesting too deep \(more than 200 levels"
    ) as caught:
        write_record(inp, f"{inp}/a.jsonl", line, "dom", str(tmp_path / "out"))
    assert "flatten or remove that row" in caught.value.hint
    assert not (tmp_path / "out").exists()
    if depth > 1000:
        with pytest.raises(RecursionError):
            nemo_write_record(inp, f"{inp}/a.jsonl", line, "dom", str(tmp_path / "nemo"))
    shallow = '{"dom": "Games", "v": ' + "[" * 199 + "]" * 199 + "}\n"  # 200 levels with the object
    assert write_record(inp, f"{inp}/a.jsonl", shallow, "dom", str(tmp_path / "out")) == "Games"


def _tree(root) -> dict[str, str]:
    return {
        os.path.relpath(os.path.join(d, n), root): open(os.path.join(d, n)).read()
        for d, _, names in os.walk(root)
        for n in names
    }
