"""What the one-schema step (driver/output_schema.py) counts as a run's Parquet outputs, and its writes' fences.

The outputs are those the markers name. An unreadable marker's output, and a Parquet file with no marker beside
the outputs (not provably an output of a run: driver/stale_outputs.py), are counted as unreadable, so that
`_common_metadata` never claims a schema for files it was not checked against. The files with no marker are
found as a reader of the directory finds them: one listing of each directory it descends into (every one but
hidden and "_" names: `_markers/`, `_pieces/`, `_jobs/`), a directory that holds no output included (a
stray file, an output whose marker a kill never wrote, of an input no longer planned); no stat per file.

Each rename (a rewritten output, a marker, `_common_metadata`) first asks `owned(path)`, which refuses once this
process no longer owns the directory: its lock taken over (a suspended job, a file system stalled past the
lock's staleness) or `_run.json` naming another run. A marker is also read again before its `output_size` is
set, and left when it changed since it was planned (a new owner redid the file).
"""

from __future__ import annotations

import errno
import logging
import os
from collections.abc import Callable
from dataclasses import replace

from hpc_classify.driver.lost_outputs import output_of_marker
from hpc_classify.driver.run_owner import check_run_owner
from hpc_classify.errors import OutputDirectoryError
from hpc_classify.io.formats import PARQUET
from hpc_classify.io.markers import CompletionMarker, MarkerFiles, marker_path, write_marker
from hpc_classify.io.skipped_names import is_hidden
from hpc_classify.io.threaded_map import map_in_threads

logger = logging.getLogger(__name__)

NO_MARKER = "no completion marker: not an output of a run here"
Outputs = dict[str, tuple[str, CompletionMarker]]  # output path -> (input relpath, marker)


def ownership_check(
    output_dir: str, fingerprint: str | None, lock_lost: Callable[[], bool]
) -> Callable[[str], None]:
    """`owned(path)`, asked before each rename into `output_dir`: raises OutputDirectoryError once `lock_lost()`,
    RunSupersededError when `_run.json` names a run other than `fingerprint` (None: not checked)."""

    def owned(path: str) -> None:
        if lock_lost():
            raise OutputDirectoryError(
                f"{path}: not written: the lock of {output_dir} was taken over by another run",
                hint="nothing to do: the run that holds the lock now owns the directory",
            )
        if fingerprint is not None:
            check_run_owner(output_dir, fingerprint, path)

    return owned


def read_outputs(output_dir: str, markers: MarkerFiles, unreadable: dict[str, str]) -> Outputs:
    """The Parquet outputs the markers name; each unreadable marker put in `unreadable` (its relpath -> why)."""
    outputs: Outputs = {}
    for relpath, marker in markers.found.items():
        if marker.output_path.endswith(PARQUET.output_suffix):  # "": the file had no output row
            outputs[os.path.join(output_dir, output_of_marker(relpath, marker.output_path))] = (
                relpath,
                marker,
            )
    for relpath, error in markers.unreadable.items():
        unreadable[os.path.relpath(marker_path(output_dir, relpath), output_dir)] = str(error)
    return outputs


def unmarked_outputs(
    output_dir: str, outputs: Outputs, threads: int, stopped: Callable[[], bool]
) -> dict[str, str]:
    """relpath -> NO_MARKER for each Parquet file that a reader of `output_dir` would read that no marker names,
    and `<relpath>/` -> why for each directory that cannot be listed (what it holds is unknown: no one schema
    can be claimed for the directory): the directories listed a level at a time, `threads` listings at once."""
    unmarked: dict[str, str] = {}
    level = [output_dir]
    while level and not stopped():
        below: list[str] = []
        for directory, (files, directories, error) in zip(
            level,
            map_in_threads(_listing, level, threads, stopped),
            strict=False,  # a stop: fewer results
        ):
            if error:
                unmarked[os.path.relpath(directory, output_dir) + "/"] = error
            unmarked.update((os.path.relpath(p, output_dir), NO_MARKER) for p in files if p not in outputs)
            below.extend(directories)
        level = sorted(below)
    return unmarked


def _listing(directory: str) -> tuple[list[str], list[str], str]:
    """(the Parquet files, the subdirectories) a reader of `directory` reads (no hidden or "_" name), and why
    it could not be listed ("" when it could; gone since: nothing to read, no error)."""
    files, directories = [], []
    try:
        with os.scandir(directory) as entries:
            for e in entries:
                if is_hidden(e.name):
                    continue
                if e.is_dir(follow_symlinks=False):
                    directories.append(e.path)
                elif e.name.endswith(PARQUET.output_suffix) and e.is_file():
                    files.append(e.path)
    except FileNotFoundError:
        pass
    except OSError as error:  # permissions, EIO or ESTALE on a parallel file system
        code = f"{errno.errorcode[error.errno]}: " if error.errno in errno.errorcode else ""
        return [], [], f"cannot list this directory ({code}{error.strerror or error})"
    return files, directories, ""


def record_size(
    output_dir: str,
    markers: MarkerFiles,
    output: tuple[str, CompletionMarker],
    path: str,
    owned: Callable[[str], None],
    size: int | None = None,
) -> bool:
    """Set the `output_size` of the marker of `output` (its relpath, the marker as planned) to its output's size
    (rewritten, or a kill came before its marker was), unless the marker changed since it was planned; whether
    it was written. `markers` are kept what the directory holds. `size`: the output's, where the caller knows it
    (it just wrote the file); None: a stat (a metadata request on Lustre)."""
    relpath, marker = output
    if size is None:
        try:
            size = os.path.getsize(path)
        except FileNotFoundError:  # named among the unreadable
            return False
    if marker.output_size == size:
        return False
    where = marker_path(output_dir, relpath)
    current = markers.read_again(
        output_dir, relpath
    )  # None: removed or rewritten since: not this pass's to set
    if current is None or replace(current, output_size=None) != replace(marker, output_size=None):
        logger.warning("%s changed while the outputs were brought to one schema: left as it is", where)
        return False
    updated = replace(marker, output_size=size)
    write_marker(where, updated, before_rename=lambda: owned(where))
    markers.update(relpath, updated)
    return True
