"""An assembly on a node that does not see every piece marker yet (an NFS client's cached directory, or a
name's cached absence, right after a worker on another node wrote it): it looks again until they appear,
within a bound, and otherwise fails naming the file and the missing marker, never assembling a part."""

from __future__ import annotations

import gzip
import json
import os

import pytest
from fake_markers import marker_of

from hpc_classify.driver import piece_files
from hpc_classify.driver.assembly import wait_for_pieces
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import write_marker


def planned_file(path) -> PlannedFile:
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wt", encoding="utf-8") as f:
        for i in range(400):
            f.write(json.dumps({"id": i, "text": f"document {i} " + "word " * 20}) + "\n")
    stat = os.stat(path)
    return PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)


def cut(tmp_path, name: str):
    planned = planned_file(tmp_path / name)
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    scheduler.expand(planned)
    scheduler.close()
    return out, planned, piece_files.read_layout(out, planned.relpath)


def mark(out: str, planned: PlannedFile, index: int, **extra) -> None:
    marker = marker_of(planned)
    marker.extra.update({"piece": index, **extra})
    write_marker(piece_files.piece_marker_path(out, planned.relpath, index), marker)


def test_a_marker_that_appears_late_is_waited_for_by_its_name(tmp_path, monkeypatch):
    out, planned, layout = cut(tmp_path, "big.jsonl")
    count = len(layout.pieces)
    for index in range(count - 1):
        mark(out, planned, index)
    monkeypatch.setattr(piece_files, "done_piece_indices", lambda *a: pytest.fail("listed"))
    last = piece_files.piece_marker_path(out, planned.relpath, count - 1)
    exists, looks = os.path.exists, []

    def looking(path: str) -> bool:
        if path == last:
            looks.append(path)
            if len(looks) == 3:  # this node sees it from its third look on
                mark(out, planned, count - 1)
        return exists(path)

    monkeypatch.setattr(os.path, "exists", looking)
    indices = wait_for_pieces(planned.path, layout, out, planned.relpath, timeout=30)
    assert indices == list(range(count)) and count > 5
    assert len(looks) == 3  # the wait ends at the look that sees it, not at the bound


def test_each_marker_is_looked_up_until_seen_once_not_at_every_look(tmp_path, monkeypatch):
    out, planned, layout = cut(tmp_path, "big.jsonl")
    count = len(layout.pieces)
    for index in range(count - 1):
        mark(out, planned, index)
    last = piece_files.piece_marker_path(out, planned.relpath, count - 1)
    looked_up: list[str] = []
    exists = os.path.exists

    def counting_exists(path):
        # os.path.exists is the whole process's: a call of another thread (another test's) is not counted.
        if str(path).startswith(out + os.sep):
            looked_up.append(path)
        if looked_up.count(last) == 3:  # the last piece's marker appears late, after three looks
            mark(out, planned, count - 1)
        return exists(path)

    monkeypatch.setattr("hpc_classify.driver.assembly.os.path.exists", counting_exists)
    indices = wait_for_pieces(planned.path, layout, out, planned.relpath, timeout=60)
    assert indices == list(range(count)) and count > 5
    # Every marker once, the late one at each of the three looks (the old wait looked every marker up again
    # at each look: 3 x count lookups; 10,000 pieces and a minute's NFS lag made that a million stats).
    assert looked_up.count(last) == 3 and len(looked_up) == count - 1 + 3


def test_a_marker_never_seen_fails_naming_the_file_and_the_marker(tmp_path):
    out, planned, layout = cut(tmp_path, "big.jsonl")
    count = len(layout.pieces)
    for index in range(count):
        if index != 3:
            mark(out, planned, index)
    with pytest.raises(InputFileError) as raised:
        wait_for_pieces(planned.path, layout, out, planned.relpath, timeout=0.2)
    message = str(raised.value)
    assert planned.path in message
    assert f"piece 3 of {count}" in message
    assert piece_files.piece_marker_path(out, planned.relpath, 3) in message


def test_a_streamed_file_is_listed_again_until_its_last_piece_is_seen(tmp_path, monkeypatch):
    out, planned, layout = cut(tmp_path, "big.jsonl.gz")
    assert layout.pieces is None
    for index in range(4):
        mark(out, planned, index, last=index == 3)
    listed = piece_files.done_piece_indices
    listings = []

    def lagging(output_dir, relpath):  # the first two listings miss the last piece's marker
        listings.append(1)
        done = listed(output_dir, relpath)
        return done - {3} if len(listings) <= 2 else done

    monkeypatch.setattr(piece_files, "done_piece_indices", lagging)
    assert wait_for_pieces(planned.path, layout, out, planned.relpath, timeout=30) == [0, 1, 2, 3]
    assert len(listings) == 3

    monkeypatch.setattr(piece_files, "done_piece_indices", lambda *a: {0, 1, 2})
    with pytest.raises(InputFileError, match="streamed piece 3"):
        wait_for_pieces(planned.path, layout, out, planned.relpath, timeout=0.1)
