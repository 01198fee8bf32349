"""--on-changed-input redo and files in pieces, without a cluster: a redo forgets the old version (its
completion marker, and pieces cut from another version) before anything runs, keeps pieces cut from the
current version, lists each changed file once; a pieces directory without a layout never counts as done."""

from __future__ import annotations

import dataclasses
import json
import os

from fake_markers import marker_of

from hpc_classify.driver import piece_files
from hpc_classify.driver.input_changes import (
    apply_changed_input_policy,
    find_changed_inputs,
    forget_old_versions,
    merge_changes,
)
from hpc_classify.driver.pieces import PieceScheduler, changed_partial_inputs
from hpc_classify.driver.plan import PlannedFile, pending_files
from hpc_classify.io.markers import iter_marker_relpaths, marker_path, write_marker


def big_jsonl(path, rows: int = 400) -> PlannedFile:
    with open(path, "a", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"id": i, "text": f"document {i} " + "word " * 20}) + "\n")
    stat = os.stat(path)
    return PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)


def old_marker(output: str, planned: PlannedFile) -> None:
    """A completion marker of an earlier, smaller version of the file."""
    write_marker(
        marker_path(output, planned.relpath),
        marker_of(planned, size=planned.size - 1, mtime=planned.mtime - 60),
    )


def test_a_redo_forgets_the_old_version_and_keeps_pieces_of_the_new_one(tmp_path):
    out = str(tmp_path / "out")
    (tmp_path / "in").mkdir()
    resumed = big_jsonl(tmp_path / "in" / "resumed.jsonl")  # a stopped redo: pieces, no marker any more
    stale = big_jsonl(tmp_path / "in" / "stale.jsonl")  # done, with pieces left of a version since changed
    # Done, with pieces left (a kill before their removal) whose layout matches the new version's size and
    # mtime (`cp -p` of new content): they are still the marker's version.
    leftover = big_jsonl(tmp_path / "in" / "leftover.jsonl")
    scheduler = PieceScheduler(out, 4096)
    for planned in (resumed, stale, leftover):
        scheduler.expand(planned)
    scheduler.close()
    stale = big_jsonl(tmp_path / "in" / "stale.jsonl", rows=10)  # changed again
    old_marker(out, stale)
    old_marker(out, leftover)
    files = [resumed, stale, leftover]

    classified = find_changed_inputs(files, out, verify=False)
    cut = changed_partial_inputs(files, out, verify=False)
    assert [c.relpath for c in cut] == ["stale.jsonl"]  # leftover's pieces match its current size and mtime
    merged = merge_changes(classified, cut)
    assert sorted(c.relpath for c in merged) == ["leftover.jsonl", "stale.jsonl"]  # each once
    assert apply_changed_input_policy(merged, "redo", out) == {"leftover.jsonl", "stale.jsonl"}
    forget_old_versions(out, classified, cut)

    assert list(iter_marker_relpaths(out)) == []  # pending now, as files never finished
    assert sorted(f.relpath for f in pending_files(files, out)) == [
        "leftover.jsonl",
        "resumed.jsonl",
        "stale.jsonl",
    ]
    assert piece_files.read_layout(out, "resumed.jsonl") is not None  # resumed from its done pieces
    assert not os.path.exists(piece_files.pieces_dir(out, "stale.jsonl"))
    assert not os.path.exists(piece_files.pieces_dir(out, "leftover.jsonl"))  # cut again from the new content
    # A resume finds nothing changed: the redo goes on without --on-changed-input redo.
    assert find_changed_inputs(files, out, verify=False) == []
    assert changed_partial_inputs(files, out, verify=False) == []


def test_a_pieces_directory_without_a_layout_is_cleared_before_a_new_layout(tmp_path):
    (tmp_path / "in").mkdir()
    planned = big_jsonl(tmp_path / "in" / "big.jsonl")
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    jobs = scheduler.expand(planned)
    scheduler.close()  # its background hash has written the layout: it cannot bring it back below
    # What an interrupted removal of another version's pieces can leave: piece markers, no layout.
    os.remove(piece_files.layout_path(out, planned.relpath))
    marker = piece_files.piece_marker_path(out, planned.relpath, 0)
    with open(marker, "w", encoding="utf-8") as f:
        f.write("{}")

    scheduler = PieceScheduler(out, 4096)
    again = scheduler.expand(dataclasses.replace(planned))
    scheduler.close()
    assert [j.relpath for j in again] == [j.relpath for j in jobs]  # piece 0 too: nothing counts as done
    assert not os.path.exists(marker)
