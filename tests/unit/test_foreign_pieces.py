"""At run start, pieces made for another run's settings, another input file, or by an older version that
recorded neither, are removed with one warning for each kind; those of this run are kept (driver/foreign_pieces.py)."""

from __future__ import annotations

import dataclasses
import json
import os

from hpc_classify.driver import piece_files
from hpc_classify.driver.foreign_pieces import FOREIGN, LEGACY_NAMES, forget_pieces_of_other_runs
from hpc_classify.driver.piece_files import PieceLayout
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.io.markers import CompletionMarker, marker_path, write_marker
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
    caplog.set_level("DEBUG", logger="hpc_classify.driver.foreign_pieces")
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
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", f"c.jsonl: its pieces were made from another input file, {elsewhere.path}, which still exists"
         + REDONE),
        ("DEBUG", "not-listed.jsonl: its pieces were made under other settings (fingerprint killed-run, this "
         "run's this-run): removed, the file is not among this run's inputs"),
        ("DEBUG", "o.jsonl: its pieces were cut by an older version of hpc-classify, which recorded neither "
         "their settings nor their input" + REDONE),
        ("DEBUG", "other.jsonl: its pieces were made under other settings (fingerprint killed-run, this run's "
         "this-run)" + REDONE),
        ("WARNING", f"{out}: removed 4 pieces directories {FOREIGN}; 3 of their files will be classified again "
         "from their first piece (c.jsonl, o.jsonl, other.jsonl); 0 done already, their completion markers "
         "stand; 1 not among this run's inputs (each file is named at --log-level DEBUG)"),
    ]  # fmt: skip


def test_thousands_of_files_of_other_settings_get_one_warning(tmp_path, caplog):
    """A change of settings after a stopped run leaves a pieces directory per started file: one warning
    counts them and names the first few to redo (a file done since, its marker of this run's settings
    standing, is not said to be redone); each file goes to DEBUG."""
    caplog.set_level("DEBUG", logger="hpc_classify.driver.foreign_pieces")
    out = str(tmp_path / "out")
    files = [_planned(tmp_path / "in", f"f{i}.jsonl") for i in range(8)]
    for planned in files:
        _pieces_of(out, planned, fingerprint="earlier-settings")
    _marked_done(out, files[2], "this-run")

    assert forget_pieces_of_other_runs(out, files, "this-run") == [f.relpath for f in files]

    assert piece_files.files_in_pieces(out) == []
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{out}: removed 8 pieces directories {FOREIGN}; 7 of their files will be classified again from their "
        "first piece (f0.jsonl, f1.jsonl, f3.jsonl, f4.jsonl, f5.jsonl and 2 more); 1 done already, their "
        "completion markers stand; 0 not among this run's inputs (each file is named at --log-level DEBUG)"
    ]
    assert len([r for r in caplog.records if r.levelname == "DEBUG"]) == 8


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


def _older_versions_pieces(out: str, planned: PlannedFile, *, with_layout: bool = True) -> str:
    """A pieces directory as versions before `<relpath>.pieces/` wrote it: pieces named as outputs."""
    directory = os.path.join(out, "_pieces", *planned.relpath.split("/"))
    os.makedirs(directory)
    layout = PieceLayout(8, planned.size, planned.mtime, (Piece(0, 0, 8),), None, "this-run", planned.path)
    names = {"000000.jsonl": '{"text": "x"}\n', "000000.done.json": "{}"}
    if with_layout:  # none: a removal cut short after the layout went
        names["layout.json"] = json.dumps(layout.to_dict())
    for name, text in names.items():
        with open(os.path.join(directory, name), "w") as f:
            f.write(text)
    return directory


def test_pieces_an_older_version_named_as_outputs_are_removed_whatever_their_layout_says(tmp_path, caplog):
    caplog.set_level("DEBUG", logger="hpc_classify.driver.foreign_pieces")
    out = str(tmp_path / "out")
    mine, older, cut_short, nested = (
        _planned(tmp_path / "in", name) for name in ("mine.jsonl", "o.jsonl", "cut.jsonl", "sub/deep/n.jsonl")
    )
    _pieces_of(out, mine)
    _pieces_of(out, nested)  # this version's, beside an older version's directory of the same parent
    old_dirs = [
        _older_versions_pieces(out, older),  # this run's fingerprint and input: only the names are old
        _older_versions_pieces(out, cut_short, with_layout=False),
        _older_versions_pieces(out, _planned(tmp_path / "in", "sub/deep/m.jsonl")),
    ]

    forgotten = forget_pieces_of_other_runs(out, [mine, older, cut_short, nested], "this-run")

    assert forgotten == ["cut.jsonl", "o.jsonl", "sub/deep/m.jsonl"]
    assert [os.path.exists(d) for d in old_dirs] == [False, False, False]
    assert piece_files.files_in_pieces(out) == ["mine.jsonl", "sub/deep/n.jsonl"]
    assert piece_files.done_piece_indices(out, "sub/deep/n.jsonl") == {0}
    assert sorted(os.listdir(os.path.join(out, "_pieces"))) == ["mine.jsonl.pieces", "sub"]
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("DEBUG", f"cut.jsonl: its pieces were {LEGACY_NAMES}" + REDONE),
        ("DEBUG", f"o.jsonl: its pieces were {LEGACY_NAMES}" + REDONE),
        ("DEBUG", f"sub/deep/m.jsonl: its pieces were {LEGACY_NAMES}: removed, the file is not among this run's "
         "inputs"),
        ("WARNING", f"{out}: removed 3 pieces directories {LEGACY_NAMES}; 2 of their files will be classified "
         "again from their first piece (cut.jsonl, o.jsonl); 0 done already, their completion markers stand; 1 "
         "not among this run's inputs (each file is named at --log-level DEBUG)"),
    ]  # fmt: skip
    assert forget_pieces_of_other_runs(out, [mine, nested], "this-run") == []


def test_a_removed_older_versions_directory_takes_its_emptied_parents_along(tmp_path):
    out = str(tmp_path / "out")
    _older_versions_pieces(out, _planned(tmp_path / "in", "a/b/c.jsonl"))

    assert forget_pieces_of_other_runs(out, [], "this-run") == ["a/b/c.jsonl"]
    assert sorted(os.listdir(out)) == []  # no empty a/b/ left behind, nor _pieces/ (as remove_pieces)


def _marked_done(out: str, planned: PlannedFile, fingerprint: str) -> None:
    marker = CompletionMarker(
        planned.path, planned.size, planned.mtime, "", 4, 0, 0, {}, 0.0, "n", "w", fingerprint
    )
    write_marker(marker_path(out, planned.relpath), marker)


def test_an_upgraded_directory_gets_one_warning_and_done_files_are_not_said_to_be_redone(tmp_path, caplog):
    """Thousands of older pieces directories would be thousands of warnings: one counts them, names the first
    NAMED files to redo; a file whose marker of this run's settings stands is done (its pieces were left by a
    kill before their removal), not redone. A marker of other settings is redone (a later step says why)."""
    caplog.set_level("DEBUG", logger="hpc_classify.driver.foreign_pieces")
    out = str(tmp_path / "out")
    files = [_planned(tmp_path / "in", f"f{i}.jsonl") for i in range(9)]
    for planned in files:
        _older_versions_pieces(out, planned)
    _marked_done(out, files[1], "this-run")
    _marked_done(out, files[4], "this-run")
    _marked_done(out, files[6], "another-run")  # redone: its marker is set aside later

    forgotten = forget_pieces_of_other_runs(out, files, "this-run")

    assert forgotten == [f.relpath for f in files]
    assert not os.path.exists(os.path.join(out, "_pieces"))
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [
        f"{out}: removed 9 pieces directories {LEGACY_NAMES}; 7 of their files will be classified again from "
        "their first piece (f0.jsonl, f2.jsonl, f3.jsonl, f5.jsonl, f6.jsonl and 2 more); 2 done already, their "
        "completion markers stand; 0 not among this run's inputs (each file is named at --log-level DEBUG)"
    ]
    debug = [r.getMessage() for r in caplog.records if r.levelname == "DEBUG"]
    kept = ": removed, the file is done (its completion marker stands)"
    assert debug == [
        f"f{i}.jsonl: its pieces were {LEGACY_NAMES}" + (kept if i in (1, 4) else REDONE) for i in range(9)
    ]


def test_pieces_directories_a_kill_left_without_a_layout_are_removed_at_the_run_start(tmp_path, caplog):
    """`remove_pieces` removes the layout, then the rest: a kill between (found by a fault-injection loop, a
    SIGKILL right after a file's assembly) left `000008.piece` and `.done` files under `_pieces/` of a done
    file for good. Nothing in them counts; the next run start removes them, and nothing else."""
    out = str(tmp_path / "out")
    done, started = _planned(tmp_path / "in", "sub/done.jsonl"), _planned(tmp_path / "in", "started.jsonl")
    _pieces_of(out, done)
    os.remove(piece_files.layout_path(out, done.relpath))  # the kill came after the layout went
    _pieces_of(out, started)  # a file partly done: kept

    with caplog.at_level("INFO", logger="hpc_classify.driver.foreign_pieces"):
        assert forget_pieces_of_other_runs(out, [done, started], "this-run") == []

    assert piece_files.scan_pieces(out).unlaid == []
    assert sorted(os.listdir(os.path.join(out, "_pieces"))) == ["started.jsonl.pieces"]  # sub/ went too
    assert piece_files.done_piece_indices(out, "started.jsonl") == {0}
    assert [r.getMessage() for r in caplog.records] == [
        f"{out}: removed 1 pieces directory whose removal a kill cut short (no layout: nothing in them counts): "
        "sub/done.jsonl"
    ]
