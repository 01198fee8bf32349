"""Finished files whose output is gone: deleted or moved out of the output directory after their marker was
written. The marker alone said "done", so a rerun skipped them and `status` counted them done: their
documents were missing from the output with nothing to say so. Now `status` counts them as remaining and a
rerun classifies them again (their markers removed first, as for a changed input).

Whether an output exists is read from one listing per output directory, not a stat per file: a resume of
100,000 files on Lustre would otherwise ask the metadata server 100,000 more times. A name the listing lacks
is looked up once by its own path before the file counts as lost: an NFS client may serve a listing cached
before another node wrote the output (a requeue right after a kill), and the done file would be redone.

A file of no output row has no output and a marker naming none (output path ""): never lost. Its marker is
read only when its output is not listed, so a resume reads no marker of a file whose output is there.
"""

from __future__ import annotations

import logging
import os
import posixpath
from collections.abc import Sequence

from hpc_classify.errors import InputFileError
from hpc_classify.io.formats import output_relpath
from hpc_classify.io.markers import CompletionMarker, MarkerListing, marker_path, read_marker
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)


class OutputListing:
    """Which files exist under an output directory, listing each of its directories once when first asked;
    a name not listed is looked up by its path (the listing may lag), so a stat only for the missing ones."""

    def __init__(self, output_dir: str):
        self.output_dir = output_dir
        self._names: dict[str, set[str]] = {}

    def has(self, relpath: str) -> bool:
        directory, name = posixpath.split(relpath.replace(os.sep, "/"))
        if directory not in self._names:
            try:
                self._names[directory] = set(os.listdir(os.path.join(self.output_dir, directory)))
            except (FileNotFoundError, NotADirectoryError):
                self._names[directory] = set()
        return name in self._names[directory] or os.path.exists(os.path.join(self.output_dir, relpath))


def has_output_of(listing: OutputListing, relpath: str, marker: CompletionMarker) -> bool:
    """Whether the output that `relpath`'s marker names is there (a marker naming none: nothing missing)."""
    return not marker.output_path or listing.has(output_of_marker(relpath, marker.output_path))


def _names_no_output(output_dir: str, relpath: str) -> bool:
    """Whether `relpath`'s marker records that the file had no output row, hence no output."""
    try:
        return not read_marker(marker_path(output_dir, relpath)).output_path
    except InputFileError:  # unreadable: redone like a lost output
        return False


def output_of_marker(relpath: str, marker_output_path: str) -> str:
    """The output relpath of the input `relpath` whose marker names `marker_output_path`: the marker's file
    name in the input's directory (the absolute path it recorded may be of a directory since moved)."""
    return posixpath.join(
        posixpath.dirname(relpath.replace(os.sep, "/")), os.path.basename(marker_output_path)
    )


def forget_lost_outputs(
    relpaths: Sequence[str], output_dir: str, output_format: str, markers: MarkerListing | None = None
) -> list[str]:
    """Remove the markers of the files among `relpaths` whose output is missing, so that they are classified
    again; returns their relpaths (sorted), after a warning naming them. `markers`: the run start's listing
    of `_markers/` (None: scanned here), which forgets the removed ones."""
    done = markers if markers is not None else MarkerListing(output_dir)
    listing = OutputListing(output_dir)
    lost = sorted(
        r
        for r in relpaths
        if r in done
        and not listing.has(output_relpath(r, output_format))
        and not _names_no_output(output_dir, r)
    )
    if not lost:
        return lost
    for relpath in lost:
        done.remove(relpath)
    named = first_and_count(lost)
    logger.warning(
        "%d finished file(s) have no output in %s any more (deleted or moved?): classifying them again: %s",
        len(lost),
        output_dir,
        named,
    )
    return lost
