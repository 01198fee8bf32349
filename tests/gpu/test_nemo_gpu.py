"""NeMo Curator's GPU calls: get_client(cluster_type="gpu") on dask-cuda and DocumentDataset on cuDF."""

from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from hpc_classify import DocumentDataset, get_client

pytestmark = pytest.mark.gpu


@pytest.fixture
def shards(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for s in range(3):
        rows = [{"text": f"doc {s}-{i}", "id": f"{s}{i}", "lang": "en" if i % 2 else "de"} for i in range(4)]
        (root / f"shard_{s}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


def test_get_client_gpu_starts_dask_cuda(caplog):
    pytest.importorskip("dask_cuda")
    # Without RAPIDS (cuDF, RMM) NeMo's spilling and RMM defaults cannot take effect: turn them off.
    options = {"enable_spilling": False, "set_torch_to_use_rmm": False}
    client = get_client(cluster_type="gpu", rmm_pool_size=None, rmm_async=False, n_workers=3, **options)
    try:
        assert type(client.cluster).__name__ == "LocalCUDACluster"
        # One worker per GPU, as in NeMo: the CPU cluster's n_workers is named as unused, not swallowed.
        assert "n_workers=3 do(es) not apply to a GPU cluster" in caplog.text
        assert client.submit(lambda: 1).result(timeout=120) == 1
    finally:
        client.shutdown()


def test_cudf_backend_reads_with_input_meta_and_writes_by_file_name(shards, tmp_path):
    pytest.importorskip("dask_cudf")
    dataset = DocumentDataset.read_json(
        str(shards),
        backend="cudf",
        files_per_partition=2,
        add_filename="src",
        input_meta={"id": "int64", "text": "str"},
    )
    assert dataset.df.npartitions == 2
    frame = dataset.to_pandas()
    assert isinstance(frame, pd.DataFrame) and str(frame["id"].dtype) == "int64"
    assert list(frame.columns) == ["id", "src", "text"]  # sorted, as NeMo
    dataset.to_json(str(tmp_path / "out"), write_to_filename="src")
    assert sorted(os.listdir(tmp_path / "out")) == [f"shard_{s}.jsonl" for s in range(3)]


def test_cudf_backend_partition_on(shards, tmp_path):
    pytest.importorskip("dask_cudf")
    DocumentDataset.read_json(str(shards), backend="cudf").to_parquet(
        str(tmp_path / "pq"), partition_on="lang"
    )
    assert sorted(os.listdir(tmp_path / "pq")) == ["lang=de", "lang=en"]
    assert len(pd.read_parquet(tmp_path / "pq")) == 12


def test_cudf_partitions_match_the_dataset_metadata(tmp_path):
    pytest.importorskip("dask_cudf")
    (tmp_path / "a.jsonl").write_text(
        "".join(json.dumps({"id": i, "text": f"a{i}"}) + "\n" for i in range(3))
    )
    (tmp_path / "b.jsonl").write_text(
        "".join(json.dumps({"text": f"b{i}", "id": i}) + "\n" for i in range(2))
    )
    ddf = DocumentDataset.read_json(str(tmp_path), backend="cudf", files_per_partition=1, blocksize=None).df
    assert list(ddf.columns) == ["id", "text"]  # sorted, as NeMo
    for index in range(ddf.npartitions):
        part = ddf.partitions[index].compute()
        assert list(part.columns) == ["id", "text"] and list(part.dtypes) == list(ddf._meta.dtypes)
    assert ddf.map_partitions(lambda d: d.iloc[:, 0]).compute().to_pandas().tolist() == [0, 1, 2, 0, 1]


def test_cudf_backend_checks_the_text_field_naming_the_line(tmp_path):
    pytest.importorskip("dask_cudf")
    from hpc_classify.errors import InputFileError

    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "fine", "id": 1}\n{"text": null, "id": 2}\n')
    with pytest.raises(InputFileError, match=r"bad.jsonl:2: text field 'text' is null"):
        DocumentDataset.read_json(str(path), backend="cudf", text_field="text").df.compute()
    good = DocumentDataset.read_json(str(tmp_path / "bad.jsonl"), backend="cudf")  # no text_field: no check
    assert type(good.df.compute()).__module__.startswith("cudf")
