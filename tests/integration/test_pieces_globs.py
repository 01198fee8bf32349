"""An unfinished run's pieces never look like outputs: after a stop partway through a file in pieces, a
recursive glob of the output directory (`OUT/**/*.jsonl`, as `dask.dataframe.read_json` takes) matches no
piece and no pieces directory, whatever the input and output formats; the rerun finishes the file, every
document once. Pieces an older version left under names that read as outputs (`_pieces/<relpath>/000003.jsonl`)
are removed at the resume, or by an --overwrite, and their file classified again (driver/piece_files.py)."""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
from pathlib import Path

import pytest
from driver_support import output_files, run_args, run_cli, start_cli, summary, wait_for
from test_pieces import decompressed_size, read_output, write_big

from hpc_classify.driver import piece_files

DOCUMENT_SUFFIXES = (
    ".jsonl",
    ".json",
    ".ndjson",
    ".parquet",
    ".jsonl.gz",
    ".jsonl.zst",
    ".jsonl.bz2",
    ".jsonl.xz",
)
OLDER_VERSION = (
    "removed 1 pieces directory left by an older version of hpc-classify under names that read as outputs; 1 of "
    "their files will be classified again from their first piece (big.jsonl); 0 done already, their completion "
    "markers stand; 0 not among this run's inputs (each file is named at --log-level DEBUG)"
)


def _globbed(output: Path, suffix: str) -> list[str]:
    return sorted(glob.glob(f"{output}/**/*{suffix}", recursive=True))


def _done_pieces(output: Path) -> list[Path]:
    root = output / piece_files.PIECES_DIRNAME
    return sorted(root.rglob("*" + piece_files.PIECE_MARKER_SUFFIX)) if root.exists() else []


def _stopped_in_pieces(tmp_path: Path, inputs: Path, output: Path, args: list[str]) -> int:
    """Run `args`, SIGTERM once 3 pieces are done; returns the number of pieces (more than were done)."""
    proc = start_cli([*args, "--stop-grace", "0"], tmp_path / "stopped.log")
    wait_for(lambda: len(_done_pieces(output)) >= 3, timeout=300, what="3 pieces done")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 3, (tmp_path / "stopped.log").read_text()[-3000:]
    (layout,) = (output / piece_files.PIECES_DIRNAME).rglob(piece_files.LAYOUT_FILE)
    total = len(json.loads(layout.read_text())["pieces"] or []) or len(_done_pieces(output)) + 1
    assert 3 <= len(_done_pieces(output)) < total, (
        "the file was finished before SIGTERM: the test proved nothing"
    )
    assert not output_files(output)
    return total


def _args(inputs: Path, output: Path, model: Path, *extra: str) -> list[str]:
    piece_bytes = decompressed_size(next(inputs.iterdir())) // 8
    return run_args(inputs, output, model, "--piece-bytes", str(piece_bytes), *extra)


@pytest.mark.parametrize(
    ("fmt", "output_format"), [("jsonl", "jsonl"), ("jsonl.gz", "jsonl"), ("jsonl", "parquet")]
)
def test_a_recursive_glob_of_a_stopped_run_matches_no_piece_and_the_rerun_has_each_document_once(
    tmp_path, tiny_domain_model, fmt, output_format
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    ids = write_big(inputs, "big", fmt, 160, seed=5)
    args = _args(inputs, output, tiny_domain_model, "--output-format", output_format)
    _stopped_in_pieces(tmp_path, inputs, output, args)

    for suffix in DOCUMENT_SUFFIXES:  # the bookkeeping `_*.json` aside, documented as such
        found = [p for p in _globbed(output, suffix) if f"{os.sep}{piece_files.PIECES_DIRNAME}{os.sep}" in p]
        assert found == [], suffix
    output_suffix = ".parquet" if output_format == "parquet" else f".{fmt}"  # x.jsonl.gz -> x.jsonl.gz
    assert _globbed(output, output_suffix) == []  # no final output yet: the file is unfinished

    rerun = run_cli(args)

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    (path,) = output_files(output).values()
    assert _globbed(output, output_suffix) == [str(path)]
    assert read_output(path)["id"].tolist() == ids  # each document once, in input order
    assert not (output / piece_files.PIECES_DIRNAME).exists()


def _as_an_older_version_named_them(output: Path, relpath: str, *, keep: bool) -> Path:
    """Rename the file's pieces (`keep`: a copy of them) as versions before this layout did: `_pieces/<relpath>/`
    holding `layout.json`, `000003.done.json` and `000003.jsonl` (a no-op where the code under test still
    names them so)."""
    current = Path(piece_files.pieces_dir(str(output), relpath))
    older = output / piece_files.PIECES_DIRNAME / relpath
    if current != older:
        (shutil.copytree if keep else os.rename)(current, older)
    for path in older.iterdir():
        if path.name == piece_files.LAYOUT_FILE:
            path.rename(older / "layout.json")
        elif path.name.endswith(piece_files.PIECE_MARKER_SUFFIX):
            path.rename(older / (path.name[: -len(piece_files.PIECE_MARKER_SUFFIX)] + ".done.json"))
        elif not path.name.startswith("_") and "." in path.name:  # a piece's output
            path.rename(older / (path.name.split(".", 1)[0] + ".jsonl"))
    assert len(list(older.glob("0*.jsonl"))) >= 3
    return older


@pytest.mark.parametrize("overwrite", [False, True], ids=["resume", "overwrite"])
def test_pieces_an_older_version_named_as_outputs_are_removed_and_the_file_redone_once(
    tmp_path, tiny_domain_model, overwrite
):
    inputs, output = tmp_path / "in", tmp_path / "out"
    ids = write_big(inputs, "big", "jsonl", 160, seed=6)
    args = _args(inputs, output, tiny_domain_model)
    total = _stopped_in_pieces(tmp_path, inputs, output, args)
    # An --overwrite (other settings) finds both: this version's pieces and an older version's.
    older = _as_an_older_version_named_them(output, "big.jsonl", keep=overwrite)
    again = ["--pred-column", "label", "--overwrite"] if overwrite else []

    rerun = run_cli([*args, *again])

    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert not older.exists() and not (output / piece_files.PIECES_DIRNAME).exists()
    # a resume says why it redoes the file; an --overwrite discards every piece, as any old run's state
    assert rerun.stderr.count(OLDER_VERSION) == (0 if overwrite else 1), rerun.stderr[-3000:]
    assert ("--overwrite: discarding the previous run" in rerun.stderr) == overwrite
    assert summary(output)["pieces_processed"] == total  # every piece again, none taken from the old names
    (path,) = output_files(output).values()
    assert read_output(path)["id"].tolist() == ids
