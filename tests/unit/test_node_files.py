"""The job directory's JSON files (cluster/node_files.write_json): a failed write leaves neither a temp file
nor a partial final file, and an earlier version of the file stays whole."""

from __future__ import annotations

import json

import pytest

from hpc_classify.cluster import node_files


def test_a_write_that_fails_leaves_no_temp_file_and_the_old_file_whole(tmp_path, monkeypatch) -> None:
    path = tmp_path / "heartbeat.json"
    node_files.write_json(path, {"beat": 1})

    def refused(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(node_files.os, "replace", refused)
    with pytest.raises(OSError, match="No space left on device"):
        node_files.write_json(path, {"beat": 2})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heartbeat.json"]
    assert json.loads(path.read_text()) == {"beat": 1}


def test_the_file_is_fsynced_before_its_rename(tmp_path, monkeypatch) -> None:
    events = []
    real_fsync, real_replace = node_files.os.fsync, node_files.os.replace
    monkeypatch.setattr(node_files.os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(node_files.os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    node_files.write_json(tmp_path / "node-exit.json", {"exit_code": 3})
    assert events == ["fsync", "replace"]
    assert json.loads((tmp_path / "node-exit.json").read_text()) == {"exit_code": 3}
