"""What an earlier release (same version number, hence same fingerprint) left in an output directory that a run
of this one resumes, migrated at the run start so that the directory reads as a dataset:

- quarantines of finished files under the old name `_<output>.quarantine.jsonl`: `OUT/*.jsonl` globs and
  dataset readers take their bad rows for documents. Renamed to `_<output>.quarantine` (the marker first, where
  it records the old path, then the file: a kill in between leaves the old name, found again by the next run).
  Found by the walk of the output tree that the run start makes anyway (plan.remove_stale_temp_files), so a
  directory without them costs no more I/O; only the markers of the files that have one are read.
- files of no output row: the old release wrote a 0-byte JSONL file (or a Parquet file with only some columns)
  and a marker naming it; now there is no file and the marker names "" (driver/task.py says why). Only a
  marker tells such a file from others (a stat of the size would not tell a Parquet one), so every marker is
  read, once: when `_run.json` lacks the layout note (fingerprint.LAYOUT_KEY), which is then written. A
  directory this release started has the note from its first run: its resumes read no marker here. The output
  is removed before its marker is rewritten, and the note written last: a kill in between leaves a marker
  naming a missing output, which the next run's migration (before its check of lost outputs) rewrites.
Markers of another fingerprint are left: their files are classified again, which rewrites both.

`hpc-classify status` (and `report`) write nothing: they read such a directory as the migration will leave it
(`as_migrated`), so that a file of no row whose 0-byte output was deleted counts as done, as the next run finds
it, not as an output missing.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import posixpath

from hpc_classify.driver.fingerprint import LAYOUT, LAYOUT_KEY, read_run_file
from hpc_classify.driver.lost_outputs import output_of_marker
from hpc_classify.driver.run_owner import RUN_FILE
from hpc_classify.driver.stale_outputs import remove_output_files
from hpc_classify.driver.task import quarantine_relpath
from hpc_classify.errors import InputFileError, OutputDirectoryError
from hpc_classify.io.formats import output_relpath
from hpc_classify.io.markers import CompletionMarker, MarkerListing, marker_path, read_marker, write_marker
from hpc_classify.io.skipped_names import LEGACY_QUARANTINE_SUFFIX, QUARANTINE_SUFFIX
from hpc_classify.io.writers import write_json_atomically

logger = logging.getLogger(__name__)


def migrate_legacy_outputs(
    output_dir: str,
    fingerprint: str,
    output_format: str,
    markers: MarkerListing,
    legacy_quarantines: list[str],
) -> tuple[int, int]:
    """Rename the `legacy_quarantines` (relpaths the output tree's walk found) of finished files, and, in a
    directory without the layout note, remove the outputs of no row that markers name; returns
    (quarantines renamed, zero-row outputs removed), after one log line where either is not 0."""
    renamed = _rename_quarantines(output_dir, fingerprint, output_format, markers, legacy_quarantines)
    removed = 0
    run_file = read_run_file(output_dir)
    if run_file is not None and run_file.get(LAYOUT_KEY) != LAYOUT:
        removed = _remove_zero_row_outputs(output_dir, fingerprint, markers)
        write_json_atomically(os.path.join(output_dir, RUN_FILE), {**run_file, LAYOUT_KEY: LAYOUT}, indent=2)
    if renamed or removed:
        logger.info(
            "%s: migrated what an earlier release left: %d quarantine(s) renamed from *%s to *%s, %d output "
            "file(s) of no row removed (their markers now name no output)",
            output_dir,
            renamed,
            LEGACY_QUARANTINE_SUFFIX,
            QUARANTINE_SUFFIX,
            removed,
        )
    return renamed, removed


def laid_out(output_dir: str) -> bool:
    """Whether `output_dir`'s `_run.json` has the layout note (or there is none to read: nothing to migrate)."""
    try:
        run_file = read_run_file(output_dir)
    except OutputDirectoryError:
        return True
    return run_file is None or run_file.get(LAYOUT_KEY) == LAYOUT


def as_migrated(marker: CompletionMarker, fingerprint: str | None, *, laid_out: bool) -> CompletionMarker:
    """`marker` as the migration of a run of `fingerprint` leaves it (markers of another one are left as they
    are); `laid_out`: the directory's `laid_out`. For readers that write nothing (`status`)."""
    if fingerprint is None or marker.fingerprint != fingerprint:
        return marker
    if not laid_out and marker.rows_out == 0 and marker.output_path:
        marker = dataclasses.replace(marker, output_path="", output_size=0)
    quarantine = marker.quarantine_path
    if quarantine and quarantine.endswith(LEGACY_QUARANTINE_SUFFIX):
        new = quarantine.removesuffix(LEGACY_QUARANTINE_SUFFIX) + QUARANTINE_SUFFIX
        marker = dataclasses.replace(marker, quarantine_path=new)
    return marker


def _rename_quarantines(
    output_dir: str, fingerprint: str, output_format: str, markers: MarkerListing, legacy: list[str]
) -> int:
    if not legacy:
        return 0
    # legacy quarantine relpath -> the relpath of the finished input it belongs to (names only, no I/O)
    owners = {}
    for relpath in markers.relpaths():
        new = quarantine_relpath(output_relpath(relpath, output_format)).replace(os.sep, "/")
        owners[new.removesuffix(QUARANTINE_SUFFIX) + LEGACY_QUARANTINE_SUFFIX] = relpath
    renamed = 0
    for old in sorted(legacy):
        relpath = owners.get(old)
        marker = _marker_of(output_dir, relpath, fingerprint) if relpath is not None else None
        if (
            marker is None
        ):  # not a finished file's: its next attempt removes it (task.remove_earlier_quarantines)
            continue
        old_path = _path(output_dir, old)
        new_path = old_path.removesuffix(LEGACY_QUARANTINE_SUFFIX) + QUARANTINE_SUFFIX
        recorded = os.path.basename(marker.quarantine_path or "")
        if recorded == os.path.basename(old_path):
            write_marker(
                marker_path(output_dir, relpath),
                dataclasses.replace(marker, quarantine_path=os.path.abspath(new_path)),
            )
        elif recorded != os.path.basename(new_path) or os.path.exists(new_path):
            # Not the quarantine the marker counts (none, or the new one is there): an earlier attempt's.
            os.remove(old_path)
            continue
        os.replace(old_path, new_path)  # the marker names the new name: a kill came before this rename
        renamed += 1
    return renamed


def _remove_zero_row_outputs(output_dir: str, fingerprint: str, markers: MarkerListing) -> int:
    removed = 0
    for relpath in sorted(markers.relpaths()):
        marker = _marker_of(output_dir, relpath, fingerprint)
        if marker is None or marker.rows_out != 0 or not marker.output_path:
            continue
        # Through the one remover of outputs: `_common_metadata` goes before the first. An output gone
        # already was removed by a migration killed before it rewrote the marker.
        out = output_of_marker(relpath, marker.output_path)
        removed += len(remove_output_files(output_dir, [out], schema_gone=removed > 0))
        write_marker(
            marker_path(output_dir, relpath), dataclasses.replace(marker, output_path="", output_size=0)
        )
    return removed


def _marker_of(output_dir: str, relpath: str, fingerprint: str) -> CompletionMarker | None:
    """`relpath`'s marker when it is readable and of this run's fingerprint, else None (such a file is redone)."""
    try:
        marker = read_marker(marker_path(output_dir, relpath))
    except InputFileError:
        return None
    return marker if marker.fingerprint == fingerprint else None


def _path(output_dir: str, relpath: str) -> str:
    return os.path.join(output_dir, *posixpath.normpath(relpath).split("/"))
