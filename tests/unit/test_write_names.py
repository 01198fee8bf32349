"""The names `write_to_filename` gives outputs, against NeMo Curator 0.7.1's rule.

NeMo's `single_partition_write_with_filename` (nemo_curator/utils/distributed_utils.py) names each output
`Path(filename).stem` plus ".jsonl" or ".parquet", whatever the input's suffix: `nemo_name` below is that
rule. Ours is NeMo's except for compressed names (docs/nemo-differences.md): their `.gz`/`.zst` is set aside
first, and JSONL output keeps it.
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path

import pandas as pd
import pytest
import zstandard

from hpc_classify.datasets import DocumentDataset
from hpc_classify.errors import ConfigError
from hpc_classify.utils.distributed_utils import single_partition_write_with_filename


def nemo_name(file_name: str, output_type: str) -> str:
    """NeMo 0.7.1's output name for `file_name` (single_partition_write_with_filename)."""
    return Path(file_name).stem + "." + output_type


# Distinct stems: no two of these share an output name. Unknown suffixes, none, upper case, several dots.
PLAIN_NAMES = [
    "a.jsonl",
    "b.json",
    "c.ndjson",
    "d.txt",
    "e",
    "f.parquet",
    "g.JSONL",
    "h.PARQUET",
    "i.v2.jsonl",
    "j.",
]


def _frame(names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"text": [f"doc {i}" for i in range(len(names))], "file_name": names})


def _write(dataset: DocumentDataset, out, output_type: str) -> list[str]:
    write = dataset.to_json if output_type == "jsonl" else dataset.to_parquet
    write(str(out), write_to_filename=True)
    return sorted(os.listdir(out))


@pytest.mark.parametrize("output_type", ["jsonl", "parquet"])
def test_names_without_compression_are_nemos(tmp_path, output_type):
    """Old: an unknown suffix was kept (c.ndjson.jsonl, d.txt.parquet), `.json` and upper case too (b.json,
    g.JSONL, h.PARQUET)."""
    dataset = DocumentDataset.from_pandas(_frame(PLAIN_NAMES), npartitions=2)
    assert _write(dataset, tmp_path / "o", output_type) == sorted(
        nemo_name(n, output_type) for n in PLAIN_NAMES
    )


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    if path.name.lower().endswith(".gz"):
        data = gzip.compress(data)
    elif path.name.lower().endswith(".zst"):
        data = zstandard.ZstdCompressor().compress(data)
    path.write_bytes(data)


@pytest.mark.parametrize("name", ["x.ndjson", "x.txt", "x", "x.json", "x.JSONL"])
def test_files_read_with_any_suffix_are_written_under_nemos_name(tmp_path, name):
    _write_jsonl(tmp_path / name, [{"text": "one"}, {"text": "two"}])
    dataset = DocumentDataset.read_json(str(tmp_path / name), add_filename=True)
    assert _write(dataset, tmp_path / "js", "jsonl") == [nemo_name(name, "jsonl")] == ["x.jsonl"]
    assert _write(dataset, tmp_path / "pq", "parquet") == [nemo_name(name, "parquet")] == ["x.parquet"]
    rows = pd.read_json(tmp_path / "js" / "x.jsonl", lines=True)
    assert rows["text"].tolist() == ["one", "two"] and "file_name" not in rows


def test_parquet_to_jsonl_and_back_as_nemo(tmp_path):
    pd.DataFrame({"text": ["p"]}).to_parquet(tmp_path / "p.parquet", index=False)
    from_parquet = DocumentDataset.read_parquet(str(tmp_path / "p.parquet"), add_filename=True)
    assert _write(from_parquet, tmp_path / "js", "jsonl") == [nemo_name("p.parquet", "jsonl")]
    from_jsonl = DocumentDataset.read_json(str(tmp_path / "js" / "p.jsonl"), add_filename=True)
    assert _write(from_jsonl, tmp_path / "pq", "parquet") == [nemo_name("p.jsonl", "parquet")]


@pytest.mark.parametrize(
    ("name", "jsonl", "parquet"),
    [
        # NeMo: x.jsonl.jsonl (uncompressed) and x.jsonl.parquet; ours as docs/nemo-differences.md says.
        ("x.jsonl.gz", "x.jsonl.gz", "x.parquet"),
        ("x.json.gz", "x.jsonl.gz", "x.parquet"),
        ("x.ndjson.zst", "x.jsonl.zst", "x.parquet"),
        ("x.JSONL.GZ", "x.jsonl.gz", "x.parquet"),
        ("x.gz", "x.jsonl.gz", "x.parquet"),
    ],
)
def test_compressed_names_set_their_compression_aside_and_jsonl_keeps_it(tmp_path, name, jsonl, parquet):
    """Old: x.json.gz kept its name, and x.ndjson.zst, x.gz were written as uncompressed x.ndjson.zst.jsonl,
    x.gz.jsonl (x.ndjson.zst.parquet, x.gz.parquet)."""
    _write_jsonl(tmp_path / name, [{"text": "one"}])
    dataset = DocumentDataset.read_json(str(tmp_path / name), add_filename=True)
    assert _write(dataset, tmp_path / "js", "jsonl") == [jsonl]
    assert _write(dataset, tmp_path / "pq", "parquet") == [parquet]
    data = (tmp_path / "js" / jsonl).read_bytes()
    data = (
        gzip.decompress(data)
        if jsonl.endswith(".gz")
        else zstandard.ZstdDecompressor().decompressobj().decompress(data)
    )
    assert json.loads(data) == {"text": "one"}


def test_a_path_is_written_under_its_last_parts_name_as_nemos(tmp_path):
    """NeMo's `Path(name).stem` drops the directories: nothing is written outside the output directory.
    Old: refused as not a plain file name."""
    names = ["sub/a.jsonl", "../b.ndjson", f"{tmp_path}/c.parquet", "d/"]
    for output_type in ("jsonl", "parquet"):
        dataset = DocumentDataset.from_pandas(_frame(names), npartitions=2)
        expected = sorted(nemo_name(n, output_type) for n in names)
        assert _write(dataset, tmp_path / output_type, output_type) == expected
    assert sorted(os.listdir(tmp_path)) == ["jsonl", "parquet"]
    with pytest.raises(
        ConfigError, match="inputs x/a.jsonl and y/a.json would both write the output 'a.jsonl'"
    ):
        DocumentDataset.from_pandas(_frame(["x/a.jsonl", "y/a.json"])).to_json(
            str(tmp_path / "o"), write_to_filename=True
        )


@pytest.mark.parametrize(("first", "second"), [("a.json", "a.jsonl"), ("a.jsonl", "a.txt"), ("a", "a.jsonl")])
def test_two_file_names_of_one_output_name_are_an_error_naming_both(tmp_path, first, second):
    """NeMo writes both to a.jsonl: the second overwrites the first (or, in one partition, NeMo's loop does),
    losing rows silently. Refused before anything is written, in one partition or two."""
    for npartitions in (1, 2):
        dataset = DocumentDataset.from_pandas(_frame([first, second]), npartitions=npartitions)
        out = tmp_path / f"o{npartitions}"
        with pytest.raises(ConfigError) as info:
            dataset.to_json(str(out), write_to_filename=True)
        assert f"inputs {first} and {second} would both write the output 'a.jsonl'" in str(info.value)
        assert os.listdir(out) == []


def test_two_input_files_of_one_output_name_are_an_error_naming_both(tmp_path):
    for name in ("a.json", "a.jsonl"):
        _write_jsonl(tmp_path / name, [{"text": name}])
    dataset = DocumentDataset.read_json(
        [str(tmp_path / "a.json"), str(tmp_path / "a.jsonl")], add_filename=True
    )
    with pytest.raises(ConfigError, match="inputs a.json and a.jsonl would both write the output 'a.jsonl'"):
        dataset.to_json(str(tmp_path / "o"), write_to_filename=True)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("output_type", ["jsonl", "parquet"])
def test_single_partition_write_with_filename_names_as_nemo(tmp_path, output_type):
    single_partition_write_with_filename(_frame(PLAIN_NAMES), str(tmp_path), output_type=output_type)
    assert sorted(os.listdir(tmp_path)) == sorted(nemo_name(n, output_type) for n in PLAIN_NAMES)
    with pytest.raises(ConfigError, match="inputs a.json and a.jsonl would both write the output"):
        single_partition_write_with_filename(_frame(["a.json", "a.jsonl"]), str(tmp_path / "o"))
