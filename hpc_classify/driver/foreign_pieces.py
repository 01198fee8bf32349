"""Pieces a run does not use: those made under other settings or from another input file (at run start).

A file's pieces are assembled into its output once all are done, and a layout (`_pieces/<relpath>.pieces/layout`)
records the run fingerprint and the input path they were made for (driver/piece_files.py). Pieces of another
fingerprint (left by a run killed before an --overwrite took the directory, or by a task of such a run) or
cut from another input file that still exists (an input spec changed to another copy of the corpus, same
relpath, size and mtime) must never be assembled into this run's output, nor fail the file: they are removed
and the file is classified again from its first piece, with one warning naming it. A layout without these
fields was written by an older version, which recorded neither: its pieces are not trusted, and redone alike.
So are the pieces directories of versions that named pieces as outputs (`_pieces/<relpath>/000003.jsonl`,
which a recursive glob of the output directory matched): this version would never look there, and they
would stay, matched, for good.
A recorded input path that is gone is a corpus moved since: size and mtime decide, as for completion markers
(driver/input_changes.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from hpc_classify.driver import piece_files
from hpc_classify.driver.input_changes import another_file
from hpc_classify.driver.piece_files import PieceLayout
from hpc_classify.driver.plan import PlannedFile

logger = logging.getLogger(__name__)

_REDONE = ", the file is classified again from its first piece"
LEGACY_NAMES = "left by an older version of hpc-classify under names that read as outputs"


def forget_pieces_of_other_runs(output_dir: str, files: Sequence[PlannedFile], fingerprint: str) -> list[str]:
    """Remove the pieces made under another fingerprint than `fingerprint` (the run's), by an older version,
    or (for a planned file) from another input than the planned one; returns their relpaths, sorted."""
    by_relpath = {f.relpath: f for f in files}
    forgotten = []
    for relpath in piece_files.legacy_pieces_dirs(output_dir):
        piece_files.remove_legacy_pieces(output_dir, relpath)
        logger.warning("%s: its pieces were %s: removed%s", relpath, LEGACY_NAMES, _REDONE)
        forgotten.append(relpath)
    for relpath in piece_files.files_in_pieces(output_dir):
        layout = piece_files.read_layout(output_dir, relpath)
        planned = by_relpath.get(relpath)
        why = layout and not_this_runs(layout, fingerprint, planned.path if planned else None)
        if not why:
            continue
        piece_files.remove_pieces(output_dir, relpath)
        logger.warning("%s: its pieces were %s: removed%s", relpath, why, _REDONE)
        forgotten.append(relpath)
    return sorted(forgotten)


def not_this_runs(layout: PieceLayout, fingerprint: str, input_path: str | None) -> str | None:
    """Why pieces of `layout` are not for the run of `fingerprint` reading `input_path` (None: not planned,
    not compared), in words; None when they are."""
    if layout.fingerprint is None:
        return (
            "cut by an older version of hpc-classify, which recorded neither their settings nor their input"
        )
    if layout.fingerprint != fingerprint:
        return f"made under other settings (fingerprint {layout.fingerprint}, this run's {fingerprint})"
    if input_path is not None and another_file(layout.input_path, input_path):
        return f"made from another input file, {layout.input_path}, which still exists"
    return None
