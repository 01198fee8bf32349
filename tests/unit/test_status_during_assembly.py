"""`hpc-classify status` beside a running run: a file's assembly may finish (file marker written, `_pieces/`
removed) between status's listing of its pieces and the read of their markers. That file is no longer partly
done and the command still succeeds; it never exits 2 with "no such completion marker"."""

from __future__ import annotations

import json
import os

import pytest
from fake_markers import marker_of

from hpc_classify.cli.main import main
from hpc_classify.driver import piece_files
from hpc_classify.driver.pieces import PieceScheduler
from hpc_classify.driver.plan import PlannedFile, write_plan
from hpc_classify.driver.status import compute_status
from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import marker_path, write_marker


@pytest.fixture
def partly_done_output(tmp_path) -> tuple[str, PlannedFile]:
    """An output directory whose one input is cut in pieces, the first two done."""
    inputs = tmp_path / "in"
    inputs.mkdir()
    path = inputs / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(400):
            f.write(json.dumps({"id": i, "text": f"document {i} " + "word " * 20}) + "\n")
    stat = os.stat(path)
    planned = PlannedFile(str(path), path.name, stat.st_size, stat.st_mtime)
    out = str(tmp_path / "out")
    scheduler = PieceScheduler(out, 4096)
    scheduler.expand(planned)  # writes the layout
    scheduler.close()
    for index in (0, 1):
        write_marker(piece_files.piece_marker_path(out, planned.relpath, index), marker_of(planned))
    write_plan(out, [str(inputs)], [planned])
    return out, planned


def test_status_lists_a_partly_done_file(partly_done_output) -> None:
    out, _ = partly_done_output
    [entry] = compute_status(out)["partly_done"]
    assert (entry["relpath"], entry["pieces_done"], entry["documents_done"]) == ("big.jsonl", 2, 2)


def assembled_after_the_listing(monkeypatch, planned: PlannedFile) -> None:
    """Force the timing: the run's assembly ends right after status lists the file's pieces (the file's
    marker written, then its pieces directory removed, as driver/assembly.py does)."""
    listed = piece_files.done_piece_indices

    def listing_then_assembled(output_dir: str, relpath: str) -> set[int]:
        done = listed(output_dir, relpath)
        write_marker(marker_path(output_dir, relpath), marker_of(planned))
        piece_files.remove_pieces(output_dir, relpath)
        return done

    monkeypatch.setattr(piece_files, "done_piece_indices", listing_then_assembled)


def test_a_file_assembled_while_status_reads_its_pieces_is_not_partly_done(partly_done_output, monkeypatch):
    out, planned = partly_done_output
    assembled_after_the_listing(monkeypatch, planned)
    status = compute_status(out)
    assert status["partly_done"] == []
    assert status["files_remaining"] == 1  # as the markers were when they were counted, before the end


def test_the_status_command_succeeds_while_a_file_is_assembled(partly_done_output, monkeypatch, capsys):
    out, planned = partly_done_output
    assembled_after_the_listing(monkeypatch, planned)
    assert main(["status", "--output", out]) == 0
    assert "output:" in capsys.readouterr().out


def test_a_piece_marker_that_is_there_but_unreadable_is_still_an_error(partly_done_output) -> None:
    out, planned = partly_done_output
    with open(piece_files.piece_marker_path(out, planned.relpath, 1), "w") as f:
        f.write("{torn")
    with pytest.raises(InputFileError, match="corrupt completion marker"):
        compute_status(out)
