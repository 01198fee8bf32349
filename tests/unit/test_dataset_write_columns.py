"""DocumentDataset writes of columns that need their input to be written right (review findings on
writing / parquet_format): Parquet Map columns read with `read_parquet` are written as maps (Parquet) or JSON
objects (JSONL), as the driver writes them; a column that cannot be written names the output file (not the
hidden part) with a remedy the Python API has."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import DataLayoutError

MAP = pa.map_(pa.string(), pa.int64())


def _map_input(tmp_path, name="in.parquet"):
    table = pa.table({"text": ["a", "b"], "m": pa.array([[("k", 1)], [("j", 2)]], type=MAP)})
    path = tmp_path / "input" / name
    path.parent.mkdir(exist_ok=True)
    pq.write_table(table, path)
    return path


@pytest.mark.parametrize("write_to_filename", [True, False])
def test_map_columns_are_written_as_json_objects(tmp_path, write_to_filename):
    _map_input(tmp_path)
    ds = DocumentDataset.read_parquet(str(tmp_path / "input"), add_filename=True)
    out = tmp_path / "out"
    ds.to_json(str(out), write_to_filename=write_to_filename)
    name = "in.jsonl" if write_to_filename else "part.0.jsonl"
    rows = [json.loads(line) for line in (out / name).read_text().splitlines()]
    assert [row["m"] for row in rows] == [{"k": 1}, {"j": 2}]  # was [["k", 1]]


@pytest.mark.parametrize("options", [{"write_to_filename": True}, {}, {"partition_on": "text"}])
def test_map_columns_are_written_as_maps_to_parquet(tmp_path, options):
    _map_input(tmp_path)
    ds = DocumentDataset.read_parquet(str(tmp_path / "input"), add_filename=True)
    out = tmp_path / "out"
    ds.to_parquet(str(out), **options)  # was: a DataLayoutError naming a hidden part
    files = [os.path.join(d, f) for d, _, fs in os.walk(out) for f in fs]
    assert files and all(pq.read_schema(f).field("m").type == MAP for f in files)
    back = pd.concat([pq.read_table(f).to_pandas() for f in files])
    assert sorted(map(tuple, (list(m) for m in back["m"]))) == [(("j", 2),), (("k", 1),)]


def test_an_unwritable_column_names_the_output_and_a_python_remedy(tmp_path):
    ds = DocumentDataset.from_pandas(pd.DataFrame({"text": ["a", "b"], "mixed": [1, "one"]}))
    out = tmp_path / "out"
    with pytest.raises(DataLayoutError) as caught:
        ds.to_parquet(str(out))
    message = str(caught.value)
    assert message.startswith(f"{out / 'part.0.parquet'}: column 'mixed' cannot be written as Parquet (")
    assert ".tmp-" not in message
    assert "columns=[...]" in caught.value.hint and "to_json" in caught.value.hint
    assert not os.listdir(out)


def test_an_unwritable_column_of_a_read_file_names_the_output_and_the_input(tmp_path):
    source = tmp_path / "input" / "in.parquet"
    source.parent.mkdir()
    pd.DataFrame({"text": ["a", "b"], "n": [1, 2]}).to_parquet(source, index=False)
    ds = DocumentDataset.read_parquet(str(source), add_filename=True)
    ds = ds.map_partitions(lambda frame: frame.assign(n=frame["n"].astype(object).where(frame["n"] > 1, "x")))
    out = tmp_path / "out"
    with pytest.raises(DataLayoutError) as caught:
        ds.to_parquet(str(out), write_to_filename=True)
    assert str(caught.value).startswith(
        f"{out / 'in.parquet'} (rows read from {source}): column 'n' cannot be written as Parquet ("
    )
    assert ".tmp-" not in str(caught.value)
