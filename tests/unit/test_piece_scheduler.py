"""The driver's piece bookkeeping on real files, without a cluster: the input's hash reaches the layout
from the background thread (the dispatch never waits for it), a finished piece costs no listing of the
pieces directory until the last one, and --verify-inputs tells a touched partly done file from a changed one."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import shutil
import threading
import time

from fake_markers import marker_of

from hpc_classify.driver import piece_files, pieces
from hpc_classify.driver.pieces import PieceScheduler, changed_partial_inputs
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.hashing import HashCancelled, file_sha256
from hpc_classify.io.markers import marker_path, write_marker


def big_jsonl(path, rows: int = 400) -> PlannedFile:
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"id": i, "text": f"document {i} " + "word " * 20}) + "\n")
    stat = os.stat(path)
    return PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)


def test_the_layout_gets_the_inputs_hash_from_the_background(tmp_path):
    planned = big_jsonl(tmp_path / "big.jsonl")
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    jobs = scheduler.expand(planned)
    scheduler.close()
    layout = piece_files.read_layout(out, planned.relpath)
    assert len(jobs) == len(layout.pieces) > 5
    assert layout.input_sha256 == file_sha256(planned.path)
    assert (layout.input_size, layout.input_mtime) == (planned.size, planned.mtime)


def test_no_finished_piece_lists_the_pieces_directory(tmp_path, monkeypatch):
    planned = big_jsonl(tmp_path / "big.jsonl")
    scheduler = PieceScheduler(str(tmp_path / "out"), 4096)
    jobs = scheduler.expand(planned)
    scheduler.close()
    listings = []
    all_done = {job.work.piece.index for job in jobs}
    monkeypatch.setattr(piece_files, "done_piece_indices", lambda *a: listings.append(a) or all_done)
    follows = [scheduler.after(job) for job in reversed(jobs)]  # in any order
    assert follows[:-1] == [None] * (len(jobs) - 1) and listings == []
    assert follows[-1].work is None and follows[-1].relpath == "big.jsonl#assemble"


def test_the_last_piece_queues_the_assembly_though_the_listing_misses_its_marker(tmp_path, monkeypatch):
    # An NFS client lists a directory from its cache for up to a minute: the marker the last piece's
    # worker wrote on another node is not in it yet. The run knows the piece is done (its task returned).
    planned = big_jsonl(tmp_path / "big.jsonl")
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    jobs = scheduler.expand(planned)
    scheduler.close()
    newest = jobs[-1].work.piece.index
    monkeypatch.setattr(piece_files, "done_piece_indices", lambda *a: set(range(newest)))  # lagging
    follows = [scheduler.after(job) for job in jobs]
    assert [f.relpath for f in follows if f is not None] == ["big.jsonl#assemble"]
    assert follows[-1] is not None and follows[-1].work is None
    assert scheduler.after(jobs[0]) is None  # a piece reported again: still one assembly


def test_a_stream_that_succeeded_queues_the_assembly_without_a_listing(tmp_path, monkeypatch):
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(400):
            f.write(json.dumps({"id": i, "text": f"document {i} " + "word " * 20}) + "\n")
    stat = os.stat(path)
    planned = PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)
    scheduler = PieceScheduler(str(tmp_path / "out"), 4096)
    [stream] = scheduler.expand(planned)
    scheduler.close()
    assert stream.work.piece is None
    monkeypatch.setattr(piece_files, "done_piece_indices", lambda *a: set())  # nothing listed yet
    follow = scheduler.after(stream)
    assert follow is not None and follow.relpath == "big.jsonl.gz#assemble"


def test_verify_inputs_on_a_partly_done_file_compares_contents(tmp_path):
    planned = big_jsonl(tmp_path / "big.jsonl")
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    scheduler.expand(planned)
    scheduler.close()

    os.utime(planned.path, (1, 1))  # touched: same content, another mtime
    assert [c.relpath for c in changed_partial_inputs([planned], out, verify=False)] == ["big.jsonl"]
    assert changed_partial_inputs([planned], out, verify=True) == []
    assert piece_files.read_layout(out, planned.relpath).input_mtime == 1  # recorded: not hashed again

    text = open(planned.path, encoding="utf-8").read()
    with open(planned.path, "w", encoding="utf-8") as f:  # same size, other content
        f.write(text.replace("document 7 ", "document X "))
    os.utime(planned.path, (2, 2))
    [change] = changed_partial_inputs([planned], out, verify=True)
    assert "different content (SHA-256)" in change.what


def test_a_stop_abandons_the_hash_being_computed_and_the_next_run_computes_it(tmp_path, monkeypatch):
    planned = big_jsonl(tmp_path / "big.jsonl")
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    started, chunks = threading.Event(), []

    def slow_sha256(path, *, cancelled):  # a file too large to hash within a stop's grace
        started.set()
        while not cancelled():
            chunks.append(1)
            time.sleep(0.01)
        raise HashCancelled(path)

    monkeypatch.setattr(pieces, "file_sha256", slow_sha256)
    scheduler.expand(planned)
    assert started.wait(10)
    scheduler.close(abandon=True)  # returns: it does not wait for the whole file
    assert piece_files.read_layout(out, planned.relpath).input_sha256 is None
    monkeypatch.undo()
    rerun = PieceScheduler(out, 4096)
    rerun.expand(planned)
    rerun.close()
    assert piece_files.read_layout(out, planned.relpath).input_sha256 == file_sha256(planned.path)


def test_no_layout_is_left_for_a_file_assembled_just_before_its_hash_is_stored(tmp_path, monkeypatch):
    planned = big_jsonl(tmp_path / "big.jsonl")
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    scheduler.expand(planned)
    scheduler.close()  # the hash is stored: forget it, and store it again with the assembly in between
    layout = piece_files.read_layout(out, planned.relpath)
    piece_files.write_layout(out, planned.relpath, dataclasses.replace(layout, input_sha256=None))
    real_write = piece_files.write_layout

    def assembled_then_written(output_dir, relpath, new_layout):
        # The assembly finishes between the look for the layout and this write: marker, then pieces removed.
        write_marker(marker_path(out, relpath), marker_of(planned))
        shutil.rmtree(piece_files.pieces_dir(out, relpath))
        real_write(output_dir, relpath, new_layout)

    rerun = PieceScheduler(out, 4096)
    monkeypatch.setattr(piece_files, "write_layout", assembled_then_written)
    rerun._add_sha256(planned, piece_files.read_layout(out, planned.relpath))
    assert not os.path.exists(piece_files.pieces_dir(out, planned.relpath))


def test_a_failed_stream_keeps_the_pieces_it_marked_though_the_listing_lags(tmp_path, monkeypatch):
    """A stream's worker died after marking pieces 0-2, and the driver's listing does not show piece 2's
    marker yet (written on another node): the three are counted, and the retry streams from piece 3."""
    path = tmp_path / "big.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as f:
        for i in range(400):
            f.write(json.dumps({"id": i, "text": f"document {i} " + "word " * 20}) + "\n")
    stat = os.stat(path)
    planned = PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    [stream] = scheduler.expand(planned)
    scheduler.close()
    for index, end_line in enumerate((50, 100, 150)):
        marker = dataclasses.replace(
            marker_of(planned),
            extra={"piece": index, "end_line": end_line, "end_row": end_line, "last": False},
        )
        write_marker(piece_files.piece_marker_path(out, planned.relpath, index), marker)
    monkeypatch.setattr(piece_files, "done_piece_indices", lambda *a: {0, 1})  # a lagging listing

    assert [m.extra["piece"] for m in scheduler.markers_of_failed(stream)] == [0, 1, 2]
    [retry] = scheduler.expand(planned)
    assert (retry.work.piece, retry.work.first_index, retry.work.skip_lines) == (None, 3, 150)
