"""NeMo Curator 0.7.1's DocumentDataset / read_data / write_to_disk calls, as a NeMo user writes them."""

from __future__ import annotations

import json
import os
import pickle

import pandas as pd
import pytest

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError, DataLayoutError, InputFileError
from hpc_classify.utils.distributed_utils import (
    read_data,
    read_data_blocksize,
    read_single_partition,
    select_columns,
    write_to_disk,
)
from hpc_classify.utils.file_utils import get_all_files_paths_under


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def shards(tmp_path):
    """Four JSONL shards of 3 rows; ids are strings of digits, so dtypes show whether input_meta applied."""
    root = tmp_path / "in"
    root.mkdir()
    for s in range(4):
        rows = [
            {"text": f"doc {s}-{i}", "id": f"{s}{i}", "lang": "en" if i % 2 else "de", "x": i}
            for i in range(3)
        ]
        _write(root / f"shard_{s}.jsonl", rows)
    return root


def test_input_meta_sets_dtypes_and_keeps_only_its_columns(shards):
    for meta in (
        {"id": "int64", "text": "str"},
        '{"id": "int64", "text": "str"}',
        "{'id': 'int64', 'text': 'str'}",
    ):
        frame = DocumentDataset.read_json(str(shards), input_meta=meta).to_pandas()
        assert list(frame.columns) == ["id", "text"]
        assert str(frame["id"].dtype) == "int64" and frame["id"].tolist()[:3] == [0, 1, 2]


def test_columns_and_input_meta_together_and_errors(shards):
    frame = DocumentDataset.read_json(
        str(shards), columns=["x", "text"], input_meta={"x": "float64"}
    ).to_pandas()
    assert list(frame.columns) == ["text", "x"] and str(frame["x"].dtype) == "float64"  # sorted, as NeMo
    with pytest.raises(InputFileError, match="'nope'"):
        DocumentDataset.read_json(str(shards), columns=["nope"])
    with pytest.raises(InputFileError, match="cannot be read as int64"):
        DocumentDataset.read_json(str(shards), input_meta={"text": "int64"}).to_pandas()
    with pytest.raises(ConfigError, match="not a dtype"):
        DocumentDataset.read_json(str(shards), input_meta={"id": "integer-ish"})


def test_partition_counts_files_per_partition_and_blocksize(shards):
    files = get_all_files_paths_under(str(shards), keep_extensions="jsonl")
    size = os.path.getsize(files[0])
    assert (
        DocumentDataset.read_json(files, files_per_partition=None).df.npartitions == 1
    )  # NeMo's call, "1gb"
    assert DocumentDataset.read_json(files, files_per_partition=3).df.npartitions == 2
    assert DocumentDataset.read_json(files, files_per_partition=1, blocksize=None).df.npartitions == 4
    assert DocumentDataset.read_json(files, blocksize=2 * size).df.npartitions == 2
    tiny = DocumentDataset.read_json(files, blocksize=size // 2)  # each file cut in pieces, as NeMo (pandas)
    assert tiny.df.npartitions > 4
    assert tiny.df.compute()["id"].tolist() == [f"{s}{i}" for s in range(4) for i in range(3)]
    with pytest.raises(ConfigError, match="cannot both be set"):
        DocumentDataset.read_json(files, files_per_partition=2, blocksize="256MB")
    with pytest.raises(ConfigError, match="not a size"):
        DocumentDataset.read_json(files, blocksize="lots")
    assert len(DocumentDataset.read_json(files, blocksize=2 * size)) == 12


def test_custom_filename_column_through_read_and_write(shards, tmp_path):
    dataset = DocumentDataset.read_json(str(shards), add_filename="source")
    assert list(dataset.df.columns) == ["id", "lang", "source", "text", "x"]  # sorted, as NeMo
    kept = dataset.df[dataset.df["x"] > 0]
    out = tmp_path / "out"
    DocumentDataset(kept, dataset.source_files).to_json(str(out), write_to_filename="source")
    assert sorted(os.listdir(out)) == [f"shard_{s}.jsonl" for s in range(4)]
    assert [r["id"] for r in _read(out / "shard_2.jsonl")] == ["21", "22"]
    assert "source" not in _read(out / "shard_2.jsonl")[0]
    with pytest.raises(ConfigError, match="add_filename='other'"):
        dataset.to_json(str(tmp_path / "o2"), write_to_filename="other")


def test_partition_on_layout_jsonl_and_parquet(shards, tmp_path):
    dataset = DocumentDataset.read_json(str(shards), files_per_partition=2)
    dataset.to_json(str(tmp_path / "js"), partition_on="lang")
    assert sorted(os.listdir(tmp_path / "js")) == ["lang=de", "lang=en"]
    assert sorted(os.listdir(tmp_path / "js" / "lang=en")) == ["part.0.jsonl", "part.1.jsonl"]
    assert {r["lang"] for r in _read(tmp_path / "js" / "lang=en" / "part.1.jsonl")} == {"en"}
    dataset.to_parquet(str(tmp_path / "pq"), partition_on="lang")
    back = pd.read_parquet(tmp_path / "pq")  # hive layout: the column comes back from the directory names
    assert sorted(back["id"]) == sorted(dataset.to_pandas()["id"])
    assert (back.sort_values("id")["lang"].astype(str).tolist()) == dataset.to_pandas().sort_values("id")[
        "lang"
    ].tolist()
    with pytest.raises(ConfigError, match="cannot be used together"):
        DocumentDataset.read_json(str(shards), add_filename=True).to_json(
            str(tmp_path / "x"), write_to_filename=True, partition_on="lang"
        )
    with pytest.raises(ConfigError, match="not a column"):
        dataset.to_json(str(tmp_path / "y"), partition_on="nope")


def test_from_pandas_to_pandas_round_trip_and_repartition():
    frame = pd.DataFrame({"text": ["a", "b", "c", "d", "e"], "n": [1, 2, 3, 4, 5], "meta": [{"k": 1}] * 5})
    dataset = DocumentDataset.from_pandas(frame, npartitions=2)
    assert dataset.df.npartitions == 2
    pd.testing.assert_frame_equal(dataset.to_pandas(), frame)  # strings stay object, dicts stay dicts
    assert DocumentDataset.from_pandas(frame, chunksize=2).df.npartitions == 3
    assert DocumentDataset.from_pandas(frame, npartitions=2, sort=False).to_pandas()["n"].tolist() == [
        1,
        2,
        3,
        4,
        5,
    ]
    assert dataset.repartition(npartitions=1).df.npartitions == 1
    with pytest.raises(ConfigError, match="name"):
        DocumentDataset.from_pandas(frame, name="docs")


def test_pickle_round_trip(shards, tmp_path):
    dataset = DocumentDataset.read_json(str(shards), add_filename=True)
    dataset.to_pickle(str(tmp_path / "pk"), write_to_filename=True)
    assert sorted(os.listdir(tmp_path / "pk")) == [f"shard_{s}.pkl" for s in range(4)]
    back = DocumentDataset.read_pickle(str(tmp_path / "pk"), columns=["id", "text"])
    assert back.df.npartitions == 4 and list(back.df.columns) == ["id", "text"]
    assert back.to_pandas()["id"].tolist() == dataset.to_pandas()["id"].tolist()
    DocumentDataset.from_pandas(pd.DataFrame({"a": [1]})).to_pickle(str(tmp_path / "pp"))
    with open(tmp_path / "pp" / "part.0.pkl", "rb") as f:
        assert pickle.load(f)["a"].tolist() == [1]


def test_mixed_file_types_raise_with_the_remedy(shards, tmp_path):
    (shards / "README.md").write_text("notes")
    with pytest.raises(ConfigError, match="several types") as info:
        DocumentDataset.read_json(str(shards))
    assert "keep_extensions" in str(info.value)
    assert (
        len(DocumentDataset.read_json(get_all_files_paths_under(str(shards), keep_extensions="jsonl"))) == 12
    )
    pd.DataFrame({"text": ["p"]}).to_parquet(tmp_path / "a.parquet")
    with pytest.raises(ConfigError, match="several types"):
        DocumentDataset.read_json([str(shards / "shard_0.jsonl"), str(tmp_path / "a.parquet")])
    with pytest.raises(ConfigError, match="reads jsonl only"):
        DocumentDataset.read_json([str(tmp_path / "a.parquet")])


def test_unsupported_reader_options_are_refused(shards):
    with pytest.raises(ConfigError, match="does not take lines"):
        DocumentDataset.read_json(str(shards), lines=True)
    with pytest.raises(ConfigError, match="True, False or a column name"):
        DocumentDataset.read_json(str(shards), add_filename=3)


def test_read_data_write_to_disk_and_select_columns(shards, tmp_path):
    files = get_all_files_paths_under(str(shards))
    df = read_data(files, file_type="jsonl", backend="pandas", add_filename=True)
    assert df.npartitions == 4  # read_data's default: one file per partition
    assert list(select_columns(df, ["id"], "jsonl", True).columns) == ["id", "file_name"]
    write_to_disk(df, str(tmp_path / "out"), write_to_filename=True, output_type="parquet")
    assert sorted(os.listdir(tmp_path / "out")) == [f"shard_{s}.parquet" for s in range(4)]
    one = read_data(files[:1], file_type="jsonl", backend="pandas")
    write_to_disk(one, str(tmp_path / "single.jsonl"))
    assert len(_read(tmp_path / "single.jsonl")) == 3
    with pytest.raises(ConfigError, match="repartition"):
        write_to_disk(df, str(tmp_path / "many.jsonl"))


def test_nemo_import_paths_and_top_level_names():
    import hpc_classify
    from hpc_classify.datasets import DocumentDataset as FromDatasets
    from hpc_classify.utils.distributed_utils import get_client

    assert hpc_classify.DocumentDataset is FromDatasets
    assert hpc_classify.get_client is get_client
    for name in (
        "read_data",
        "write_to_disk",
        "start_dask_cpu_local_cluster",
        "start_dask_gpu_local_cluster",
    ):
        assert callable(getattr(hpc_classify, name))


def test_get_all_files_paths_under_followlinks(tmp_path):
    (tmp_path / "real").mkdir()
    _write(tmp_path / "real" / "a.jsonl", [{"text": "x"}])
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(tmp_path / "real", root / "linked")
    assert get_all_files_paths_under(str(root)) == []
    assert get_all_files_paths_under(str(root), True, True) == [str(root / "linked" / "a.jsonl")]


def test_gpu_cluster_without_rapids_names_the_options_that_need_it(monkeypatch):
    """NeMo's GPU defaults need cuDF (spilling) and RMM (pool, torch allocator): without RAPIDS, one clear
    error naming them, before dask-cuda or any worker fails on an import; turned off, they are not named."""
    import importlib.util

    from hpc_classify.cluster import nemo_client
    from hpc_classify.errors import ConfigError

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name in ("cudf", "rmm") else real_find_spec(name, *a),
    )
    with pytest.raises(ConfigError) as error:
        nemo_client.start_dask_gpu_local_cluster()
    message = error.value.one_line()
    for option in (
        "enable_spilling=True",
        "rmm_pool_size='1024M'",
        "rmm_async=True",
        "set_torch_to_use_rmm=True",
    ):
        assert option in message
    assert "cudf and rmm not installed" in message and "enable_spilling=False" in message
    with pytest.raises(ConfigError) as error:
        nemo_client.start_dask_gpu_local_cluster(enable_spilling=False, rmm_pool_size=None)
    message = error.value.one_line()
    assert "enable_spilling=True" not in message and "rmm_pool_size=" not in message.split(";")[0]
    assert "rmm_async=True" in message


def test_packed_files_are_indexed_from_0_per_partition_as_nemo(tmp_path):
    # NeMo's test_keep_extensions: NeMo reads one partition per file, each indexed from 0, so its computed
    # frame equals pd.concat of the files. Here the small files share one partition (blocksize packs them),
    # indexed from 0 as NeMo's partitions are: the same rows, numbered on through the partition.
    first = pd.DataFrame({"a": [1, 2, 3], "b": [4, 5, 6]})
    second = pd.DataFrame({"a": [7, 8, 9], "b": [10, 11, 12]})
    first.to_json(tmp_path / "json_1.jsonl", orient="records", lines=True)
    second.to_json(tmp_path / "json_2.jsonl", orient="records", lines=True)
    files = get_all_files_paths_under(str(tmp_path), keep_extensions="jsonl")
    both = pd.concat([first, second], ignore_index=True)
    assert both.equals(DocumentDataset.read_json(files).df.compute())
    assert both.equals(DocumentDataset.read_json(files, files_per_partition=2).df.compute())
    assert pd.concat([first, second]).equals(
        DocumentDataset.read_json(files, files_per_partition=1).df.compute()
    )


def test_file_type_json_documents_are_refused_naming_the_difference(tmp_path):
    # NeMo 0.7.1 reads file type "json" as one JSON document per file; it was read here as JSON Lines.
    path = tmp_path / "recs.json"
    path.write_text('[{"text": "a", "id": 1}, {"text": "b", "id": 2}]')
    for read in (
        lambda: read_data([str(path)], file_type="json", backend="pandas"),
        lambda: read_single_partition([str(path)], backend="pandas", filetype="json"),
        lambda: read_data_blocksize([str(path)], backend="pandas", file_type="json", blocksize="1MB"),
    ):
        with pytest.raises(DataLayoutError, match=r"(?s)one JSON document per file.*file_type='jsonl'"):
            read()
