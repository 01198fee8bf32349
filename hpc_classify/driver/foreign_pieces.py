"""Pieces a run does not use: those made under other settings or from another input file (at run start).

A file's pieces are assembled into its output once all are done, and a layout (`_pieces/<relpath>.pieces/layout`)
records the run fingerprint and the input path they were made for (driver/piece_files.py). Pieces of another
fingerprint (left by a run killed before an --overwrite took the directory, or by a task of such a run) or
cut from another input file that still exists (an input spec changed to another copy of the corpus, same
relpath, size and mtime) must never be assembled into this run's output, nor fail the file: they are removed and the file is
classified again from its first piece. A layout without these fields was written by an older version, which
recorded neither: its pieces are not trusted, and redone alike. So are the pieces directories of versions that
named pieces as outputs (`_pieces/<relpath>/000003.jsonl`, which a recursive glob of the output directory
matched), or put one within another (piece_files.py): this version would never look there, and they would
stay, matched, for good. A change of settings or an upgrade may find thousands: one warning for each kind
counts them, names the first few files to be classified again (a file whose completion marker of this run's
settings stands is done, not redone), and each file, with why, goes to DEBUG.
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
from hpc_classify.errors import InputFileError
from hpc_classify.io.markers import marker_path, read_marker
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)

_REDONE = ", the file is classified again from its first piece"
LEGACY_NAMES = "left by an older version of hpc-classify under names that read as outputs"
FOREIGN = (
    "made for another run (other settings, another input file, or an older version that recorded neither)"
)
_KEPT = ", the file is done (its completion marker stands)"
_UNPLANNED = ", the file is not among this run's inputs"


def forget_pieces_of_other_runs(output_dir: str, files: Sequence[PlannedFile], fingerprint: str) -> list[str]:
    """Remove the pieces made under another fingerprint than `fingerprint` (the run's), by an older version,
    or (for a planned file) from another input than the planned one; returns their relpaths, sorted."""
    by_relpath = {f.relpath: f for f in files}
    scan = piece_files.scan_pieces(output_dir)  # one listing of each pieces directory for all three
    legacy = []
    for directory in scan.legacy:  # first: one may lie within an unlaid directory
        piece_files.remove_legacy_pieces(output_dir, directory)
        legacy.append((piece_files.legacy_relpath(directory), LEGACY_NAMES))
    _remove_unlaid_pieces(output_dir, scan.unlaid)
    foreign = []
    for relpath in scan.laid:
        layout = piece_files.read_layout(output_dir, relpath)
        planned = by_relpath.get(relpath)
        why = layout and not_this_runs(layout, fingerprint, planned.path if planned else None)
        if why:
            piece_files.remove_pieces(output_dir, relpath)
            foreign.append((relpath, why))
    _report(output_dir, LEGACY_NAMES, legacy, set(by_relpath), fingerprint)
    _report(output_dir, FOREIGN, foreign, set(by_relpath), fingerprint)
    return sorted(relpath for relpath, _ in legacy + foreign)


def _remove_unlaid_pieces(output_dir: str, relpaths: list[str]) -> None:
    """Pieces directories without a layout: a removal a kill cut short (after an assembly, or here). Nothing
    in them counts; gone, so that a finished file leaves no `_pieces/` behind."""
    for relpath in relpaths:
        piece_files.remove_pieces(output_dir, relpath)
    if relpaths:
        logger.info(
            "%s: removed %d pieces director%s whose removal a kill cut short (no layout: nothing in them counts): "
            "%s",
            output_dir,
            len(relpaths),
            "y" if len(relpaths) == 1 else "ies",
            first_and_count(relpaths),
        )


def _report(
    output_dir: str, what: str, removed: list[tuple[str, str]], planned: set[str], fingerprint: str
) -> None:
    """One warning for the pieces directories `removed` as `what` ((relpath, why) each), which an upgrade or
    a change of settings makes thousands: it counts them and names the first files to redo; each file, with
    why, goes to DEBUG."""
    redone, done = [], 0
    for relpath, why in removed:
        if _finished(output_dir, relpath, fingerprint):
            done += 1
            then = _KEPT
        elif relpath in planned:
            redone.append(relpath)
            then = _REDONE
        else:
            then = _UNPLANNED
        logger.debug("%s: its pieces were %s: removed%s", relpath, why, then)
    if removed:
        named = first_and_count(redone)
        logger.warning(
            "%s: removed %d pieces director%s %s; %d of their files will be classified again from their first "
            "piece%s; %d done already, their completion markers stand; %d not among this run's inputs (each file "
            "is named at --log-level DEBUG)",
            output_dir,
            len(removed),
            "y" if len(removed) == 1 else "ies",
            what,
            len(redone),
            f" ({named})" if redone else "",
            done,
            len(removed) - len(redone) - done,
        )


def _finished(output_dir: str, relpath: str, fingerprint: str) -> bool:
    """Whether `relpath` has a readable completion marker of this run's settings: it is done, not redone (a
    marker of other settings, or one whose input changed since, is redone by a later step, which says so)."""
    try:
        return read_marker(marker_path(output_dir, relpath)).fingerprint == fingerprint
    except InputFileError:
        return False


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
