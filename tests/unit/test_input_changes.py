"""Changed inputs: how a marker is compared with its input now, and the --on-changed-input policies."""

from __future__ import annotations

import hashlib
import os

import pytest

from hpc_classify.config import RunConfig
from hpc_classify.driver.input_changes import (
    VANISHED,
    apply_changed_input_policy,
    describe_change,
    find_changed_inputs,
)
from hpc_classify.driver.plan import list_input_files
from hpc_classify.errors import ConfigError, InputsChangedError
from hpc_classify.io.hashing import file_sha256
from hpc_classify.io.markers import CompletionMarker, marker_path, read_marker, write_marker


def _mark(output: str, path: str, relpath: str, *, with_hash: bool = True) -> CompletionMarker:
    stat = os.stat(path)
    marker = CompletionMarker(
        input_path=path,
        input_size=stat.st_size,
        input_mtime=stat.st_mtime,
        output_path=os.path.join(output, relpath),
        rows_in=1,
        rows_out=1,
        rows_bad=0,
        label_counts={},
        seconds=0.1,
        node="n",
        worker="w",
        fingerprint="f",
        input_sha256=file_sha256(path) if with_hash else None,
    )
    write_marker(marker_path(output, relpath), marker)
    return marker


def test_file_sha256_streams_in_chunks(tmp_path):
    path = tmp_path / "a.bin"
    data = os.urandom(100_001)
    path.write_bytes(data)
    assert file_sha256(str(path), chunk_bytes=4096) == hashlib.sha256(data).hexdigest()


def test_describe_change_by_size_mtime_and_hash(tmp_path):
    path = tmp_path / "a.jsonl"
    path.write_text('{"text": "abc"}\n')
    marker = _mark(str(tmp_path / "out"), str(path), "a.jsonl")
    assert describe_change(marker, str(path), verify=False) is None
    stat = path.stat()
    path.write_text('{"text": "abd"}\n')  # same size
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert describe_change(marker, str(path), verify=False) is None  # size and mtime cannot see it
    assert describe_change(marker, str(path), verify=True) == "same size, different content (SHA-256)"
    os.utime(path, (stat.st_atime, stat.st_mtime + 5))
    assert describe_change(marker, str(path), verify=False).startswith("modified at")
    path.write_text('{"text": "abcdef"}\n')
    assert describe_change(marker, str(path), verify=True) == "size 16 -> 19 bytes"
    path.unlink()
    assert describe_change(marker, str(path), verify=False) == VANISHED


def test_find_changed_inputs_and_policies(tmp_path):
    inputs, output = tmp_path / "in", str(tmp_path / "out")
    inputs.mkdir()
    for name in ("a", "b", "c"):
        (inputs / f"{name}.jsonl").write_text(f'{{"text": "{name}"}}\n')
        _mark(output, str(inputs / f"{name}.jsonl"), f"{name}.jsonl")
    (inputs / "d.jsonl").write_text('{"text": "d"}\n')  # not done yet: never a change
    (inputs / "b.jsonl").write_text('{"text": "bbb"}\n')
    touched = inputs / "c.jsonl"
    os.utime(touched, (touched.stat().st_atime, touched.stat().st_mtime + 5))
    files = list_input_files([str(inputs)], output, "jsonl")

    changes = find_changed_inputs(files, output, verify=False)
    assert [(c.relpath, c.what.split()[0]) for c in changes] == [("b.jsonl", "size"), ("c.jsonl", "modified")]
    with pytest.raises(InputsChangedError, match="2 input file") as caught:
        apply_changed_input_policy(changes, "error", output)
    assert str(inputs / "b.jsonl") in str(caught.value) and "--on-changed-input redo" in str(caught.value)
    assert apply_changed_input_policy(changes, "redo", output) == {"b.jsonl", "c.jsonl"}

    # By content, the touched file is unchanged, and its marker takes the new mtime.
    assert [c.relpath for c in find_changed_inputs(files, output, verify=True)] == ["b.jsonl"]
    assert read_marker(marker_path(output, "c.jsonl")).input_mtime == touched.stat().st_mtime
    assert [c.relpath for c in find_changed_inputs(files, output, verify=False)] == ["b.jsonl"]


def test_markers_without_hash_fall_back_to_size_and_mtime(tmp_path):
    inputs, output = tmp_path / "in", str(tmp_path / "out")
    inputs.mkdir()
    (inputs / "a.jsonl").write_text('{"text": "a"}\n')
    _mark(output, str(inputs / "a.jsonl"), "a.jsonl", with_hash=False)
    files = list_input_files([str(inputs)], output, "jsonl")
    assert find_changed_inputs(files, output, verify=True) == []


def test_config_checks_the_new_policies():
    with pytest.raises(ConfigError, match="on_changed_input"):
        RunConfig(inputs=("x",), output="o", classifiers=(object(),), on_changed_input="ignore")
    with pytest.raises(ConfigError, match="worker_wait"):
        RunConfig(inputs=("x",), output="o", classifiers=(object(),), worker_wait=-1)


def test_a_corrupt_marker_is_a_changed_input_with_one_remedy(tmp_path):
    """The marker's own hint (delete it) nested inside the policy's error gave two remedies in one line."""
    inputs, output = tmp_path / "in", str(tmp_path / "out")
    inputs.mkdir()
    (inputs / "a.jsonl").write_text('{"text": "a"}\n')
    _mark(output, str(inputs / "a.jsonl"), "a.jsonl")
    with open(marker_path(output, "a.jsonl"), "w") as f:
        f.write("{")
    files = list_input_files([str(inputs)], output, "jsonl")

    [change] = find_changed_inputs(files, output, verify=False)

    assert change.what.startswith("corrupt completion marker (") and "HINT" not in change.what
    with pytest.raises(InputsChangedError) as caught:
        apply_changed_input_policy([change], "error", output)
    assert str(caught.value).count("HINT") == 1


def test_a_marker_of_another_existing_file_is_not_this_files_whatever_size_and_mtime(tmp_path):
    out = str(tmp_path / "out")
    (tmp_path / "en").mkdir()
    then, now = tmp_path / "en" / "shard-000.jsonl", tmp_path / "shard-000.jsonl"
    then.write_text('{"text": "abc"}\n')
    now.write_text('{"text": "xyz"}\n')  # same size
    os.utime(now, ns=(then.stat().st_atime_ns, then.stat().st_mtime_ns))
    marker = _mark(out, str(then), "shard-000.jsonl")

    expected = f"classified from another input file, {then}, which still exists"
    assert describe_change(marker, str(now), verify=False) == expected
    assert describe_change(marker, str(now), verify=True) == "same size, different content (SHA-256)"
    # The same file through a link (another mount path) is the same file.
    os.symlink(tmp_path / "en", tmp_path / "link")
    assert describe_change(marker, str(tmp_path / "link" / "shard-000.jsonl"), verify=False) is None
    # A copy with the same content: refused by size and mtime, unchanged by content, and then recorded.
    now.write_bytes(then.read_bytes())
    os.utime(now, ns=(then.stat().st_atime_ns, then.stat().st_mtime_ns))
    assert describe_change(marker, str(now), verify=False) == expected
    files = list_input_files([str(now)], out, "jsonl")
    assert find_changed_inputs(files, out, verify=True) == []
    assert read_marker(marker_path(out, "shard-000.jsonl")).input_path == str(now)
    assert find_changed_inputs(files, out, verify=False) == []
    # The recorded file gone (the corpus moved): size and mtime decide, as before.
    marker.input_path = str(tmp_path / "gone" / "shard-000.jsonl")
    assert describe_change(marker, str(now), verify=False) is None


def test_verify_inputs_stats_a_recorded_path_that_differs_once_per_file(tmp_path, monkeypatch):
    """Copies (same content and mtime, new paths): each recorded path is stat'ed once, not again to decide
    that the copy's path is to be recorded."""
    out = str(tmp_path / "out")
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    recorded = []
    for name in ("a.jsonl", "b.jsonl"):
        then, now = tmp_path / "old" / name, tmp_path / "new" / name
        then.write_text('{"text": "abc"}\n')
        now.write_bytes(then.read_bytes())
        os.utime(now, ns=(then.stat().st_atime_ns, then.stat().st_mtime_ns))
        _mark(out, str(then), name)
        recorded.append(str(then))
    files = list_input_files([str(tmp_path / "new")], out, "jsonl")
    stats: list[str] = []
    real_stat = os.stat

    def counting_stat(path, *args, **kwargs):
        stats.append(os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", counting_stat)
    assert find_changed_inputs(files, out, verify=True) == []
    assert sorted(p for p in stats if p in recorded) == recorded  # once each
    monkeypatch.undo()
    assert [read_marker(marker_path(out, n)).input_path for n in ("a.jsonl", "b.jsonl")] == [
        str(tmp_path / "new" / n) for n in ("a.jsonl", "b.jsonl")
    ]
