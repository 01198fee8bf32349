"""DocumentDataset on a real local Dask cluster (2 worker processes): files larger than `blocksize` are cut
into pieces that both workers read, and `write_to_filename` still gives one output per input file, its rows
in order (issue 20 item 6). Expected rows come from pandas reading the sources directly."""

from __future__ import annotations

import os

import pandas as pd
import pytest
from distributed import Client, LocalCluster, get_worker
from nemo_corpus import write_jsonl_files

from hpc_classify.datasets import DocumentDataset


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with Client(cluster) as client:
            client.wait_for_workers(2)
            yield client


def _where_read(part: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"worker": [get_worker().address], "file": [part["file_name"].iloc[0]]})


def test_pieces_are_shared_by_the_workers_and_written_back_per_file(client, tmp_path):
    files = write_jsonl_files(tmp_path / "in")
    dataset = DocumentDataset.read_json(files, blocksize="1kb", add_filename=True)
    assert dataset.df.npartitions > len(files)
    readers = dataset.df.map_partitions(_where_read, meta={"worker": object, "file": object}).compute()
    assert set(readers["worker"]) == set(client.scheduler_info()["workers"])  # both workers read pieces
    assert sorted(readers["file"].unique()) == [os.path.basename(p) for p in files]

    kept = dataset.map_partitions(lambda d: d[~d["id"].str.endswith("7")])
    out = tmp_path / "out"
    kept.to_parquet(str(out), write_to_filename=True)
    assert sorted(os.listdir(out)) == [os.path.basename(p).replace(".jsonl", ".parquet") for p in files]
    for path in files:
        source = pd.read_json(path, lines=True, dtype=False)
        expected = source[~source["id"].str.endswith("7")].reset_index(drop=True)
        written = pd.read_parquet(out / os.path.basename(path).replace(".jsonl", ".parquet"))
        pd.testing.assert_frame_equal(written, expected)
