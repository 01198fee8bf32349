"""Atomic writers: exact round trips, compression by extension, no temp files left behind."""

from __future__ import annotations

import gzip
import json
import os

import numpy as np
import pandas as pd
import pytest
import zstandard

from hpc_classify.errors import ConfigError
from hpc_classify.io.readers import read_documents
from hpc_classify.io.writers import (
    TEMP_MARKER,
    is_temp_file,
    temp_path_for,
    write_atomically,
    write_frame,
    write_json_atomically,
    write_jsonl_records,
)


def _leftovers(directory) -> list[str]:
    return sorted(n for n in os.listdir(directory) if is_temp_file(n))


def test_jsonl_writes_nan_and_infinities_as_null_as_pandas_does(tmp_path):
    """JSON has no infinity: an input's non-standard Infinity (Python's json reads it) or a Parquet inf."""
    frame = pd.DataFrame(
        {"x": [1.5, float("inf"), -float("inf"), float("nan")], "o": [{"v": float("inf")}] * 4}
    )
    path = tmp_path / "o.jsonl"
    write_frame(frame, str(path), "jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    expected = [json.loads(line) for line in frame[["x"]].to_json(orient="records", lines=True).splitlines()]
    assert [{"x": r["x"]} for r in rows] == expected == [{"x": 1.5}, {"x": None}, {"x": None}, {"x": None}]
    assert [r["o"] for r in rows] == [{"v": None}] * 4


def test_write_atomically_success_leaves_only_final_file(tmp_path):
    final = tmp_path / "sub" / "out.bin"
    write_atomically(str(final), lambda f: f.write(b"payload"))
    assert final.read_bytes() == b"payload"
    assert os.listdir(tmp_path / "sub") == ["out.bin"]


def test_write_atomically_failure_removes_temp_and_keeps_old_file(tmp_path):
    final = tmp_path / "out.bin"
    final.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_atomically(str(final), fail)
    assert final.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["out.bin"]


def test_directories_created_on_the_way_are_synced_in_their_parents(tmp_path, monkeypatch):
    """A node crash must not keep a marker's new directory and lose its output's: each directory made for a
    file is made durable in its parent (top down) before the file is renamed into it."""
    from hpc_classify.io import writers

    synced = []
    real_fsync_directory = writers._fsync_directory
    monkeypatch.setattr(writers, "_fsync_directory", lambda d: synced.append(d) or real_fsync_directory(d))
    write_atomically(str(tmp_path / "a" / "b" / "c.txt"), lambda f: f.write(b"x"))
    assert synced == [str(tmp_path), str(tmp_path / "a"), str(tmp_path / "a" / "b")]
    synced.clear()
    write_atomically(str(tmp_path / "a" / "b" / "d.txt"), lambda f: f.write(b"y"))
    assert synced == [str(tmp_path / "a" / "b")]  # nothing created: only the rename's directory
    assert (tmp_path / "a" / "b" / "c.txt").read_bytes() == b"x"


def test_temp_name_is_hidden_in_same_directory(tmp_path):
    tmp = temp_path_for(str(tmp_path / "x.jsonl.gz"))
    assert os.path.dirname(tmp) == str(tmp_path)
    assert os.path.basename(tmp).startswith(f".x.jsonl.gz{TEMP_MARKER}{os.getpid()}-")
    assert is_temp_file(tmp) and not is_temp_file("x.jsonl.gz") and not is_temp_file(".hidden")


FRAME = pd.DataFrame(
    {
        "id": [1, 2, 3],
        "text": ["héllo 中文", "", "x\ny"],
        "score": [0.5, float("nan"), 1.25],
        "probs": [np.array([0.1, 0.9], dtype=np.float32), np.array([1.0, 0.0]), np.array([0.5, 0.5])],
        "tags": [["a"], [], None],
        "flag": [True, False, True],
    }
)
EXPECTED_ROWS = [
    {
        "id": 1,
        "text": "héllo 中文",
        "score": 0.5,
        "probs": [0.1, 0.9],  # float32: the shortest text that reads back as the same float32
        "tags": ["a"],
        "flag": True,
    },
    {"id": 2, "text": "", "score": None, "probs": [1.0, 0.0], "tags": [], "flag": False},
    {"id": 3, "text": "x\ny", "score": 1.25, "probs": [0.5, 0.5], "tags": None, "flag": True},
]


def _decompress(path) -> bytes:
    data = open(path, "rb").read()
    if str(path).endswith(".gz"):
        return gzip.decompress(data)
    if str(path).endswith(".zst"):
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    return data


@pytest.mark.parametrize("name", ["out.jsonl", "out.jsonl.gz", "out.jsonl.zst"])
def test_write_frame_jsonl_exact_lines(tmp_path, name):
    path = tmp_path / name
    write_frame(FRAME, str(path), "jsonl")
    text = _decompress(path).decode("utf-8")
    assert text.endswith("\n") and "中文" in text  # ensure_ascii=False: UTF-8, not \u escapes
    assert [json.loads(line) for line in text.splitlines()] == EXPECTED_ROWS
    assert _leftovers(tmp_path) == []


def test_write_frame_jsonl_round_trips_through_reader(tmp_path):
    frame = pd.DataFrame({"text": [f"doc {i}" for i in range(5000)], "n": range(5000)})
    path = str(tmp_path / "rt.jsonl.zst")
    write_frame(frame, path, "jsonl")
    back = read_documents(path).frame
    assert back["text"].tolist() == frame["text"].tolist() and back["n"].tolist() == list(range(5000))


def test_write_frame_parquet_round_trip(tmp_path):
    path = str(tmp_path / "out.parquet")
    frame = FRAME.drop(columns=["probs", "tags"])
    write_frame(frame, path, "parquet")
    back = pd.read_parquet(path)
    assert list(back.columns) == list(frame.columns)
    assert back["text"].tolist() == frame["text"].tolist()
    assert back["id"].tolist() == [1, 2, 3]
    assert np.isnan(back["score"].iloc[1]) and back["score"].iloc[2] == 1.25


def test_write_frame_empty_and_bad_format(tmp_path):
    path = tmp_path / "empty.jsonl.gz"
    write_frame(pd.DataFrame({"text": pd.Series([], dtype="str")}), str(path), "jsonl")
    assert _decompress(path) == b""
    with pytest.raises(ConfigError):
        write_frame(FRAME, str(tmp_path / "x.csv"), "csv")


def test_write_json_atomically_and_records(tmp_path):
    write_json_atomically(str(tmp_path / "s.json"), {"a": [1, 2], "b": "é"})
    assert json.loads((tmp_path / "s.json").read_text("utf-8")) == {"a": [1, 2], "b": "é"}
    records = [{"line": 3, "reason": "invalid JSON", "raw": "{oops"}]
    write_jsonl_records(str(tmp_path / "q.jsonl.gz"), records)
    assert [json.loads(x) for x in _decompress(tmp_path / "q.jsonl.gz").splitlines()] == records
    assert _leftovers(tmp_path) == []
