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
    assert piece_files.scan_pieces(out).legacy == []
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
    assert piece_files.scan_pieces(out).legacy == ["big.jsonl.pieces/a.jsonl.pieces"]
    assert forget_pieces_of_other_runs(out, [], "this-run") == ["big.jsonl.pieces/a.jsonl"]
    assert not os.path.exists(nested)
    assert piece_files.files_in_pieces(out) == ["big.jsonl"]


def test_older_versions_directories_under_a_pieces_named_directory_are_their_own_files(tmp_path, caplog):
    """`_pieces/a.pieces/` of a version before the escape holds only directories: no pieces directory of a
    file `a`, but the parent of older ones (`a.pieces/g.jsonl`'s pieces named as outputs; `big.jsonl.pieces/`
    holding `a.jsonl`'s, nested). Each is removed as its own file's; this run's `a.pieces+/` is kept."""
    caplog.set_level("DEBUG", logger="hpc_classify.driver.foreign_pieces")
    out = str(tmp_path / "out")
    _layout(out, "a.pieces/f.jsonl")  # this run's, escaped: `_pieces/a.pieces+/f.jsonl.pieces/`
    older = {
        "a.pieces/g.jsonl": ("a.pieces", "g.jsonl", "000000.jsonl"),  # before `<relpath>.pieces/`
        "big.jsonl.pieces/a.jsonl": ("big.jsonl.pieces", "a.jsonl.pieces", piece_files.LAYOUT_FILE),  # nested
    }
    for *directories, name in older.values():
        os.makedirs(os.path.join(out, "_pieces", *directories))
        with open(os.path.join(out, "_pieces", *directories, name), "w") as f:
            f.write("{}")

    assert forget_pieces_of_other_runs(out, [], "this-run") == sorted(older)

    assert sorted(os.listdir(os.path.join(out, "_pieces"))) == ["a.pieces+"]
    assert piece_files.files_in_pieces(out) == ["a.pieces/f.jsonl"]
    assert [(r.levelname, r.getMessage().split(":")[0]) for r in caplog.records] == [
        ("DEBUG", "a.pieces/g.jsonl"),
        ("DEBUG", "big.jsonl.pieces/a.jsonl"),
        ("WARNING", out),
    ]
    assert "removed 2 pieces directories" in caplog.records[-1].getMessage()


def test_the_run_start_lists_each_pieces_directory_of_this_version_once(tmp_path, monkeypatch):
    """On a parallel file system a listing is metadata requests: the run start's look for other runs' and
    older versions' pieces lists each file's pieces directory once (for its layout and any older one nested
    within), not once per kind it looks for."""
    out = str(tmp_path / "out")
    relpaths = ["big.jsonl", "sub/a.jsonl", "x.pieces/b.jsonl"]
    for relpath in relpaths:
        _layout(out, relpath)
    listed: list[str] = []
    scandir = os.scandir

    def counting_scandir(path="."):
        if str(path).startswith(out):  # this test's paths only
            listed.append(os.path.relpath(path, os.path.join(out, "_pieces")))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", counting_scandir)

    assert forget_pieces_of_other_runs(out, [], "this-run") == []

    monkeypatch.undo()
    own = {os.path.relpath(piece_files.pieces_dir(out, r), os.path.join(out, "_pieces")) for r in relpaths}
    assert sorted(p for p in listed if p in own) == sorted(own)
