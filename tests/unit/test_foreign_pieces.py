"""At run start, pieces made for another run's settings, another input file, or by an older version that
recorded neither, are removed with one warning per file; those of this run are kept (driver/foreign_pieces.py)."""

from __future__ import annotations

import dataclasses
import os

from hpc_classify.driver import piece_files
from hpc_classify.driver.foreign_pieces import forget_pieces_of_other_runs
from hpc_classify.driver.piece_files import PieceLayout
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.pieces import Piece

REDONE = ": removed, the file is classified again from its first piece"


def _planned(root, name: str) -> PlannedFile:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('{"text": "x"}\n' * 4)
    stat = path.stat()
    return PlannedFile(str(path), name, stat.st_size, stat.st_mtime)


def _pieces_of(out: str, planned: PlannedFile, **fields) -> None:
    layout = PieceLayout(8, planned.size, planned.mtime, (Piece(0, 0, 8),), None, "this-run", planned.path)
    piece_files.write_layout(out, planned.relpath, dataclasses.replace(layout, **fields))
    with open(piece_files.piece_marker_path(out, planned.relpath, 0), "w") as f:
        f.write("{}")


def test_pieces_of_other_settings_another_input_or_an_older_version_are_removed(tmp_path, caplog):
    out = str(tmp_path / "out")
    mine, other, copied, older, moved = (
        _planned(tmp_path / "in", name)
        for name in ("mine.jsonl", "other.jsonl", "c.jsonl", "o.jsonl", "m.jsonl")
    )
    elsewhere = _planned(tmp_path / "elsewhere", "c.jsonl")  # same relpath, another file that still exists
    _pieces_of(out, mine)
    _pieces_of(out, other, fingerprint="killed-run")
    _pieces_of(out, copied, input_path=elsewhere.path)
    _pieces_of(out, older, fingerprint=None, input_path=None)
    _pieces_of(out, moved, input_path=str(tmp_path / "gone" / "m.jsonl"))  # a corpus moved since: kept
    unplanned = _planned(tmp_path / "in", "not-listed.jsonl")
    _pieces_of(out, unplanned, fingerprint="killed-run")

    forgotten = forget_pieces_of_other_runs(out, [mine, other, copied, older, moved], "this-run")

    assert forgotten == ["c.jsonl", "not-listed.jsonl", "o.jsonl", "other.jsonl"]
    assert piece_files.files_in_pieces(out) == ["m.jsonl", "mine.jsonl"]
    assert piece_files.done_piece_indices(out, "mine.jsonl") == {0}
    assert [r.getMessage() for r in caplog.records] == [
        f"c.jsonl: its pieces were made from another input file, {elsewhere.path}, which still exists"
        + REDONE,
        "not-listed.jsonl: its pieces were made under other settings (fingerprint killed-run, this run's "
        "this-run)" + REDONE,
        "o.jsonl: its pieces were cut by an older version of hpc-classify, which recorded neither their "
        "settings nor their input" + REDONE,
        "other.jsonl: its pieces were made under other settings (fingerprint killed-run, this run's this-run)"
        + REDONE,
    ]


def test_a_new_layout_records_the_runs_fingerprint_and_the_input_path(tmp_path):
    out = str(tmp_path / "out")
    planned = _planned(tmp_path / "in", "big.jsonl")

    scheduler = PieceScheduler(out, 16, "this-run")
    scheduler.expand(planned)
    scheduler.close()

    layout = piece_files.read_layout(out, "big.jsonl")
    assert (layout.fingerprint, layout.input_path) == ("this-run", planned.path)
    assert os.path.isabs(layout.input_path)
    assert forget_pieces_of_other_runs(out, [planned], "this-run") == []
