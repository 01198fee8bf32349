"""`reshard_jsonl` against NeMo Curator 0.7.1's (nemo_curator/utils/file_utils.py: `dask.bag.read_text` with the
size as blocksize, then `_save_jsonl`). The first test's expected files are what NeMo's own code wrote for
this input (run with its file_utils on this Dask), byte for byte."""

from __future__ import annotations

import json
import os

import pytest

from hpc_classify.errors import ConfigError, DataLayoutError
from hpc_classify.utils.file_utils import reshard_jsonl


def _outputs(directory) -> dict[str, bytes]:
    return {name: open(os.path.join(directory, name), "rb").read() for name in sorted(os.listdir(directory))}


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    with open(root / "a.jsonl", "w") as f:  # 1462 bytes: one block of 1 KiB (dask: size // blocksize blocks)
        for i in range(40):
            f.write('  {"text": "%s"}  \n' % ("x" * i))
        f.write("\n\n")
    (root / "sub" / "b.jsonl").write_text('{"t":1}\n{"t":2}')
    (root / "empty.jsonl").write_text("")  # no block at all
    return root


def test_as_nemos_output(corpus, tmp_path):
    reshard_jsonl(str(corpus), str(tmp_path / "out"), output_file_size="1k", start_index=3, file_prefix="p-")
    a_lines = ['{"text": "%s"}' % ("x" * i) for i in range(40)] + ["", ""]
    assert _outputs(tmp_path / "out") == {
        "p-00003.jsonl": "\n".join(
            a_lines
        ).encode(),  # 1301 bytes with NeMo: lines stripped, no final newline
        "p-00004.jsonl": b'{"t":1}\n{"t":2}',
    }
    assert len(_outputs(tmp_path / "out")["p-00003.jsonl"]) == 1301


def test_a_large_file_is_cut_at_line_ends_into_numbered_shards(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    lines = [json.dumps({"id": i, "text": "é" * (i % 7)}, ensure_ascii=False) for i in range(500)]
    (root / "big.jsonl").write_text("".join(line + "\n" for line in lines))
    reshard_jsonl(str(root), str(tmp_path / "out"), output_file_size="2K")
    shards = _outputs(tmp_path / "out")
    size = os.path.getsize(root / "big.jsonl")
    assert list(shards) == [f"{i:05d}.jsonl" for i in range(size // 2048)] and len(shards) > 3
    assert [line for data in shards.values() for line in data.decode().split("\n")] == lines
    assert all(1800 < len(data) < 2600 for data in shards.values())


def test_refusals(corpus, tmp_path):
    for size in ["100", "10T", "0k", "-1M"]:  # NeMo: "100" is 10 bytes, "10T" 10 bytes, below 1: never ends
        with pytest.raises(ConfigError, match="Invalid size|below one byte"):
            reshard_jsonl(str(corpus), str(tmp_path / "out"), output_file_size=size)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no files to reshard"):
        reshard_jsonl(str(tmp_path / "empty"), str(tmp_path / "out"))
    (corpus / "c.jsonl.gz").write_bytes(b"\x1f\x8b")
    with pytest.raises(DataLayoutError, match="compressed file"):
        reshard_jsonl(str(corpus), str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()
