"""`separate_by_metadata` and `write_dataframe_by_meta` against NeMo Curator 0.7.1's.

From a directory of JSON Lines files, NeMo writes each line with its `write_record` (copied in
tests/nemo_file_oracles.py as `nemo_write_record`): ours writes the same tree, file for file, where NeMo loses
no line. From a Dask DataFrame, NeMo's outputs (observed with NeMo's code on these inputs) are
`<value>/<Path(file name).stem>.jsonl` without the file name column; where a file name is in several
partitions NeMo keeps the last partition's rows only, ours all of them.
"""

from __future__ import annotations

import json
import os

import dask
import dask.dataframe as dd
import pandas as pd
import pytest
from dask.delayed import Delayed
from nemo_file_oracles import nemo_write_record

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError, DataLayoutError, InputFileError
from hpc_classify.utils.file_utils import separate_by_metadata, write_dataframe_by_meta


def _tree(root) -> dict[str, str]:
    return {
        os.path.relpath(os.path.join(d, n), root): open(os.path.join(d, n)).read()
        for d, _, names in os.walk(root)
        for n in names
    }


def _rows(path) -> list[dict]:
    with open(path) as f:
        return [json.loads(line) for line in f]


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "in"
    files = {
        "a.jsonl": ['{"text": "\\u00e9 1", "dom": "Games", "n": 1}', '{"text": "x2", "dom": "News"}', "", '{"text": "x4", "dom": "Games"}'],
        "sub/b.jsonl": ['{"text": "y1", "dom": "News", "f": 1.25}', '{"text": "y2", "dom": "Sports"}'],
        "sub/deeper/c.jsonl": ['{"text": "z1", "dom": "Games"}'],
        "notes.txt": ['{"text": "not listed", "dom": "Games"}'],
    }  # fmt: skip
    for rel, lines in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("\n".join(lines) + "\n")
    return root


def _nemo_separate_files(input_dir, output_dir, field, include=None, exclude=None) -> dict:
    """NeMo's path for a directory of JSONL files: write_record on each line of each *.jsonl file."""
    counts: dict = {}
    for d, _, names in os.walk(input_dir):
        for name in sorted(n for n in names if n.endswith(".jsonl")):
            path = os.path.join(d, name)
            with open(path) as f:
                for line in f:
                    value = nemo_write_record(
                        str(input_dir), path, line, field, str(output_dir), include, exclude
                    )
                    if value is not None:
                        counts[value] = counts.get(value, 0) + 1
    return counts


@pytest.mark.parametrize(
    "include, exclude", [(None, None), (["Games"], None), (None, ["Games"]), ([], None), (None, [])]
)
def test_jsonl_files_as_nemos_write_record(corpus, tmp_path, include, exclude):
    result = separate_by_metadata(
        str(corpus), str(tmp_path / "ours"), "dom", include_values=include, exclude_values=exclude
    )
    assert isinstance(result, Delayed)
    expected = _nemo_separate_files(corpus, tmp_path / "nemo", "dom", include, exclude)
    assert result.compute() == expected
    assert _tree(tmp_path / "ours") == _tree(tmp_path / "nemo")


def test_jsonl_files_remove_metadata_and_rerun(corpus, tmp_path):
    out = tmp_path / "out"
    for _ in range(2):  # NeMo appends: a second run doubles every file; ours replaces them
        counts = separate_by_metadata(corpus, str(out), "dom", remove_metadata=True).compute()
    assert counts == {"Games": 3, "News": 2, "Sports": 1}
    assert _rows(out / "Games" / "a.jsonl") == [
        {"text": "é 1", "n": 1},
        {"text": "x4"},
    ]  # NeMo keeps "dom" here
    assert _rows(out / "News" / "sub" / "b.jsonl") == [{"text": "y1", "f": 1.25}]


def test_jsonl_lines_nemo_would_drop_are_errors(corpus, tmp_path):
    (corpus / "a.jsonl").write_text('{"text": "ok", "dom": "Games"}\n{"text": "no label"}\n')
    with pytest.raises(InputFileError, match=r"a\.jsonl:2: no value in field 'dom' \(missing\)"):
        separate_by_metadata(str(corpus), str(tmp_path / "out"), "dom")
    # With include_values such a line is simply not one of those asked for, as in NeMo.
    counts = separate_by_metadata(
        str(corpus), str(tmp_path / "inc"), "dom", include_values=["Games"]
    ).compute()
    assert counts == {"Games": 2}
    (corpus / "a.jsonl").write_text('{"text": "ok", "dom": "Games"}\nnot json\n')
    with pytest.raises(InputFileError, match=r"a\.jsonl:2: invalid JSON \(Expecting value at column 1\)"):
        separate_by_metadata(str(corpus), str(tmp_path / "bad"), "dom")
    # Rows the readers refuse are refused here too: nested too deep, an integer too long (were bare errors).
    deep = "[" * 300 + "]" * 300
    for line, why in (
        (f'{{"dom": "Games", "x": {deep}}}', "nesting too deep"),
        ('{"x": ' + "9" * 5000 + "}", "integer too long"),
    ):
        (corpus / "a.jsonl").write_text(line + "\n")
        with pytest.raises(InputFileError, match=rf"a\.jsonl:1: {why}"):
            separate_by_metadata(str(corpus), str(tmp_path / "deep"), "dom")


def _frame() -> dd.DataFrame:
    frame = pd.DataFrame(
        {
            "text": ["a", "b", "c", "d", "e"],
            "dom": ["Games", "News", "Games", "Games", "News"],
            "file_name": ["f.jsonl", "f.jsonl", "g.json", "f.jsonl", "h.jsonl"],
        }
    )
    return dd.from_pandas(frame, npartitions=2)  # rows a b c | d e: f.jsonl's Games rows in both


@pytest.mark.parametrize("as_dataset", [False, True])
def test_dataframe_duplicates_joined_remove_metadata(tmp_path, as_dataset):
    frame = _frame()
    data = DocumentDataset(frame) if as_dataset else frame
    result = separate_by_metadata(data, str(tmp_path / "out"), "dom", remove_metadata=True)
    assert isinstance(result, Delayed)
    assert result.compute() == {"Games": 3, "News": 2}
    assert _tree(tmp_path / "out") == {
        "Games/f.jsonl": '{"text": "a"}\n{"text": "d"}\n',  # NeMo: only "d" (the second partition overwrites)
        "Games/g.jsonl": '{"text": "c"}\n',
        "News/f.jsonl": '{"text": "b"}\n',
        "News/h.jsonl": '{"text": "e"}\n',
    }


def test_dataframe_parquet_keeps_metadata_and_filters(tmp_path):
    counts = separate_by_metadata(
        _frame(), str(tmp_path / "out"), "dom", output_type="parquet", exclude_values=["News"]
    )
    assert counts.compute() == {"Games": 3}
    assert sorted(_tree_names(tmp_path / "out")) == ["Games/f.parquet", "Games/g.parquet"]
    back = pd.read_parquet(tmp_path / "out" / "Games" / "f.parquet")
    assert back.to_dict("records") == [{"text": "a", "dom": "Games"}, {"text": "d", "dom": "Games"}]


def _tree_names(root) -> list[str]:
    return [os.path.relpath(os.path.join(d, n), root) for d, _, names in os.walk(root) for n in names]


def test_a_directory_of_parquet_files_goes_through_read_data(tmp_path):
    inp = tmp_path / "in"
    inp.mkdir()
    pd.DataFrame({"text": ["a", "b"], "score": [3, 5]}).to_parquet(inp / "x.parquet")
    pd.DataFrame({"text": ["c"], "score": [3]}).to_parquet(inp / "y.parquet")
    counts = separate_by_metadata(str(inp), str(tmp_path / "out"), "score", input_type="parquet").compute()
    assert counts == {
        3: 2,
        5: 1,
    }  # NeMo: a TypeError (os.path.join of an int); the value's str names the folder
    assert sorted(_tree_names(tmp_path / "out")) == ["3/x.jsonl", "3/y.jsonl", "5/x.jsonl"]
    assert _rows(tmp_path / "out" / "3" / "x.jsonl") == [{"text": "a", "score": 3}]


def test_write_dataframe_by_meta_one_frame(tmp_path):
    frame = _frame().compute()
    counts = write_dataframe_by_meta(frame, str(tmp_path / "out"), "dom", include_values=["News"])
    assert counts == {"News": 2}
    assert _tree(tmp_path / "out") == {
        "News/f.jsonl": '{"text": "b", "dom": "News"}\n',
        "News/h.jsonl": '{"text": "e", "dom": "News"}\n',
    }


def test_what_nemo_loses_or_fails_on_is_an_error(tmp_path):
    frame = _frame()
    with pytest.raises(ConfigError, match="mutually exclusive"):  # NeMo prints this and returns None
        separate_by_metadata(frame, str(tmp_path / "o"), "dom", include_values=["a"], exclude_values=["b"])
    nulls = dd.from_pandas(frame.compute().assign(dom=["Games", None, "Games", None, "News"]), npartitions=1)
    with pytest.raises(
        DataLayoutError, match="2 row\\(s\\) have no value in column 'dom'"
    ):  # NeMo drops them
        separate_by_metadata(nulls, str(tmp_path / "nulls"), "dom")
    assert separate_by_metadata(nulls, str(tmp_path / "inc"), "dom", include_values=["Games"]).compute() == {
        "Games": 2
    }
    for bad in ["..", "", "a/b", "/etc"]:  # NeMo writes into output_dir itself, its parent, or elsewhere
        values = dd.from_pandas(frame.compute().assign(dom=bad), npartitions=1)
        with pytest.raises(ConfigError, match="cannot name a directory under output_dir"):
            separate_by_metadata(values, str(tmp_path / "bad"), "dom")
    assert not _tree_names(tmp_path / "bad")
    with pytest.raises(ConfigError, match="filename_col='file_name' is not a column"):
        separate_by_metadata(frame[["text", "dom"]], str(tmp_path / "nofile"), "dom")
    with pytest.raises(ConfigError, match="output_type must be one of"):
        separate_by_metadata(frame, str(tmp_path / "json"), "dom", output_type="json")


def test_two_names_of_one_output_in_a_value_folder_are_refused_before_any_is_written(tmp_path):
    frame = dd.from_pandas(
        pd.DataFrame(
            {"text": ["a", "b", "c"], "dom": ["G", "H", "G"], "file_name": ["x.jsonl", "y.jsonl", "x.json"]}
        ),
        npartitions=2,
    )
    with pytest.raises(ConfigError, match="would both write the output 'x.jsonl'"):
        separate_by_metadata(frame, str(tmp_path / "out"), "dom")
    assert _tree_names(tmp_path / "out") == []  # no final file, no part left


def test_computed_on_the_active_scheduler(tmp_path):
    with dask.config.set(scheduler="threads"):
        assert separate_by_metadata(_frame(), str(tmp_path / "t"), "dom").compute() == {"Games": 3, "News": 2}


@pytest.mark.parametrize("include", [None, ["Games", "Legal"]])
def test_unused_categories_get_an_empty_folder_and_a_zero_count_as_in_nemo(tmp_path, include):
    # NeMo 0.7.1's write_dataframe_by_meta counts with value_counts, which lists a categorical column's
    # unused categories with 0, and makes each one's folder (an empty partition writes no file).
    frame = _frame().compute()
    frame["dom"] = frame["dom"].astype(pd.CategoricalDtype(["Games", "Legal", "News"]))
    counts = write_dataframe_by_meta(frame, str(tmp_path / "one"), "dom", include_values=include)
    expected = {"Games": 3, "Legal": 0, "News": 2}
    expected = {k: v for k, v in expected.items() if include is None or k in include}
    assert counts == expected
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(expected)
    assert list((tmp_path / "one" / "Legal").iterdir()) == []
    # Through a Dask frame: every partition's zero merged into one count of 0.
    total = separate_by_metadata(
        dd.from_pandas(frame, npartitions=2), str(tmp_path / "all"), "dom", include_values=include
    ).compute()
    assert total == expected
    assert list((tmp_path / "all" / "Legal").iterdir()) == []
