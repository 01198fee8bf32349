"""Pieces directories never nest: an input directory whose name ends in `.pieces` takes one more `+` under
`_pieces/`, an ordinary corpus's names are unchanged, and a nested one an earlier version made is removed at
run start (driver/piece_files.py)."""

from __future__ import annotations

import os

import pytest

from hpc_classify.driver import piece_files
from hpc_classify.driver.foreign_pieces import forget_pieces_of_other_runs
from hpc_classify.driver.piece_files import PieceLayout

RELPATHS = {  # relpath -> its pieces directory under _pieces/
    "big.jsonl": "big.jsonl.pieces",
    "sub/deep/a.jsonl": "sub/deep/a.jsonl.pieces",  # an ordinary corpus: as before
    "big.jsonl.pieces/a.jsonl": "big.jsonl.pieces+/a.jsonl.pieces",
    "big.jsonl.pieces+/a.jsonl": "big.jsonl.pieces++/a.jsonl.pieces",
    "x.pieces/y.pieces+/a.jsonl": "x.pieces+/y.pieces++/a.jsonl.pieces",
    "big.jsonl.piecesx/a.jsonl": "big.jsonl.piecesx/a.jsonl.pieces",
}


def _layout(out: str, relpath: str) -> None:
    piece_files.write_layout(out, relpath, PieceLayout(8, 8, 0.0, (), None, "this-run", f"/in/{relpath}"))


@pytest.mark.parametrize("relpath", sorted(RELPATHS))
def test_a_pieces_directory_is_never_within_another(tmp_path, relpath):
    out = str(tmp_path)
    assert piece_files.pieces_dir(out, relpath) == os.path.join(out, "_pieces", *RELPATHS[relpath].split("/"))


def test_every_file_in_pieces_is_found_under_its_own_relpath(tmp_path):
    out = str(tmp_path / "out")
    for relpath in RELPATHS:
        _layout(out, relpath)

    assert piece_files.files_in_pieces(out) == sorted(RELPATHS)
    assert piece_files.legacy_pieces_dirs(out) == []
    piece_files.remove_pieces(out, "big.jsonl")  # its assembly: the others' pieces stay
    assert piece_files.files_in_pieces(out) == sorted(set(RELPATHS) - {"big.jsonl"})


def test_a_pieces_directory_an_earlier_version_put_within_another_is_removed(tmp_path):
    out = str(tmp_path / "out")
    _layout(out, "big.jsonl")
    nested = os.path.join(out, "_pieces", "big.jsonl.pieces", "a.jsonl.pieces")
    os.makedirs(nested)
    with open(os.path.join(nested, piece_files.LAYOUT_FILE), "w") as f:
        f.write("{}")

    assert piece_files.files_in_pieces(out) == ["big.jsonl"]  # not taken for this version's
    assert piece_files.legacy_pieces_dirs(out) == ["big.jsonl.pieces/a.jsonl.pieces"]
    assert forget_pieces_of_other_runs(out, [], "this-run") == ["big.jsonl.pieces/a.jsonl"]
    assert not os.path.exists(nested)
    assert piece_files.files_in_pieces(out) == ["big.jsonl"]
