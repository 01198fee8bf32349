"""`partition_on` value directories that read back as written (review findings on value_dirs / writing):
values that are one integer twice (`12`, `0012`), `%` in a value, relative paths under a value directory,
and a categorical partition column written again."""

from __future__ import annotations

import os

import dask.dataframe as dd
import pandas as pd
import pyarrow.parquet as pq
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.datasets.value_dirs import partition_dtypes, path_values, value_dir


def _write_values(out, values, writer="to_parquet"):
    frame = pd.DataFrame({"text": [f"t{i}" for i in range(len(values))], "code": values})
    getattr(DocumentDataset.from_pandas(frame), writer)(str(out), partition_on="code")


def _pairs(frame):
    return sorted(zip(frame["text"], frame["code"].astype(object), strict=True))


def test_values_that_are_one_integer_twice_read_back_as_strings(tmp_path):
    out = tmp_path / "out"
    _write_values(out, ["007", "0012", "12"])
    back = DocumentDataset.read_parquet(str(out)).df.compute()  # was: Categorical categories must be unique
    assert back["code"].dtype.categories.tolist() == ["0012", "007", "12"]
    assert _pairs(back) == [("t0", "007"), ("t1", "0012"), ("t2", "12")]


def test_integer_values_written_differently_but_distinct_stay_integers_as_dask_reads_them(tmp_path):
    out = tmp_path / "out"
    _write_values(out, ["007", "12"])
    back = DocumentDataset.read_parquet(str(out)).df.compute()
    assert back["code"].dtype == pd.CategoricalDtype(pd.Index([7, 12], dtype="int32"))
    theirs = dd.read_parquet(str(out)).compute()
    assert back["code"].dtype.categories.tolist() == theirs["code"].dtype.categories.tolist()


def test_a_plus_sign_is_a_string_as_pyarrow_reads_it():
    assert partition_dtypes(["c=+5/p.parquet", "c=6/p.parquet"])["c"].categories.tolist() == ["+5", "6"]
    assert partition_dtypes(["c=-5/p.parquet", "c=6/p.parquet"])["c"].categories.tolist() == [-5, 6]


@pytest.mark.parametrize("writer", ["to_parquet", "to_json"])
def test_percent_spaces_and_ampersands_round_trip(tmp_path, writer):
    values = ["a%20b", "50%", "en US", "Food & Drink", "%25"]
    out = tmp_path / "out"
    _write_values(out, values, writer)
    names = sorted(os.listdir(out))
    assert names == sorted(["code=a%2520b", "code=50%25", "code=en US", "code=Food & Drink", "code=%2525"])
    if writer == "to_parquet":
        back = DocumentDataset.read_parquet(str(out)).df.compute()
        assert _pairs(back) == sorted(zip([f"t{i}" for i in range(5)], values, strict=True))
        theirs = dd.read_parquet(str(out)).compute()  # Dask decodes our names to the same values
        assert _pairs(theirs) == _pairs(back)
    else:
        assert {path_values(str(out / name / "part.0.jsonl"))["code"] for name in names} == set(values)


def test_value_dir_escapes_only_the_percent_sign():
    assert value_dir("lang", "en US") == "lang=en US"
    assert value_dir("lang", "a&b=c%") == "lang=a&b=c%25"


def test_a_relative_path_under_a_value_directory_gets_its_column_as_dask_gives_it(tmp_path, monkeypatch):
    (tmp_path / "run=3" / "corpus").mkdir(parents=True)
    pd.DataFrame({"text": ["a", "b"]}).to_parquet(tmp_path / "run=3" / "corpus" / "a.parquet", index=False)
    monkeypatch.chdir(tmp_path / "run=3")
    assert path_values(os.path.join("corpus", "a.parquet")) == {"run": "3"}
    ours = DocumentDataset.read_parquet([os.path.join("corpus", "a.parquet")]).df.compute()
    theirs = dd.read_parquet([os.path.join("corpus", "a.parquet")]).compute()
    assert list(ours.columns) == sorted(theirs.columns) == ["run", "text"]
    assert ours["run"].tolist() == theirs["run"].tolist() == [3, 3]
    # The same file named both ways is one value, not a value and a null.
    both = DocumentDataset.read_parquet(
        [os.path.join("corpus", "a.parquet"), str(tmp_path / "run=3" / "corpus" / "a.parquet")]
    ).df.compute()
    assert both["run"].tolist() == [3, 3, 3, 3]


def test_a_categorical_partition_column_writes_only_the_values_its_rows_have(tmp_path):
    first = tmp_path / "first"
    _write_values(first, ["x", "y", "z"])
    read = DocumentDataset.read_parquet(str(first))
    only_x = DocumentDataset(read.df[read.df["code"] == "x"])
    assert list(only_x.df["code"].compute().cat.categories) == ["x", "y", "z"]
    again = tmp_path / "again"
    only_x.to_parquet(str(again), partition_on="code")
    files = [os.path.join(d, f) for d, _, fs in os.walk(again) for f in fs]
    assert sorted(os.listdir(again)) == ["code=x"]
    assert all(pq.read_metadata(f).num_rows for f in files)


def test_partition_groups_pass_observed_true_so_pandas_2_writes_no_empty_files(tmp_path, monkeypatch):
    """pandas 3's default is observed=True already; pandas 2.2 (which pyproject allows) groups unobserved
    categories too: the writer must say so itself."""
    calls = []
    groupby = pd.DataFrame.groupby

    def spy(self, *args, **kwargs):
        calls.append(kwargs)
        return groupby(self, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "groupby", spy)
    frame = pd.DataFrame({"text": ["a"], "code": pd.Categorical(["a"], categories=["a", "b", "c"])})
    DocumentDataset.from_pandas(frame).to_json(str(tmp_path / "out"), partition_on="code")
    assert calls and all(call.get("observed") is True for call in calls)
    assert os.listdir(tmp_path / "out") == ["code=a"]
