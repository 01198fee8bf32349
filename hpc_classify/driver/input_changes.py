"""Inputs that changed after they were classified: found on resume (and by `status`), handled by a policy.

A completion marker stores the input's size, mtime and SHA-256 as the worker read it. A file regenerated or
appended to later no longer matches: by default (size and mtime) or, with --verify-inputs, by content hash
(streamed; a touched but identical file then counts as unchanged, and its marker takes the new mtime).
A marker records its input's path too: one made from another file that still exists (a new file now has
that output name) is never this file's, whatever the sizes and mtimes say (with --verify-inputs, the same
content, a copy, counts as unchanged); a recorded path that is gone is a corpus moved since. The policy --on-changed-input is `error`
(stop before any work, naming the files: exit 2) or `redo` (classify them again). A redo first forgets the
old version: pieces cut from another version of the input, or left beside a completion marker, are removed,
then the old version's output (and quarantine: those its marker names), then the old completion markers.
Each file is then pending as one never finished, with no output: a redo that fails leaves none of the old
version under the final name (driver/stale_outputs.py), and a file without a marker is redone by any
resume (no --on-changed-input needed again; pieces already cut from the new version are kept, so a
stopped redo resumes where it stopped). While a
run goes, a marker of a pending file is therefore always this run's: the old one is never taken for it.
A kill between two of these steps leaves either the change (found again) or a pending file.
At a run start the input's size and mtime are those its listing took (`PlannedFile`), not a stat again: a
file that changes after that moment is as one changing after the check.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from hpc_classify.driver.piece_files import remove_pieces
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.run_owner import say_classified_again, written_under_other_settings
from hpc_classify.driver.stale_outputs import log_removed, remove_output_of
from hpc_classify.errors import InputFileError, InputsChangedError
from hpc_classify.io.hashing import file_sha256
from hpc_classify.io.markers import (
    CompletionMarker,
    MarkerListing,
    iso_time,
    marker_path,
    read_marker,
    write_marker,
)

logger = logging.getLogger(__name__)

VANISHED = "input vanished"
T = TypeVar("T")

LISTED = 20  # files named in a message or a status listing; the rest are counted


@dataclass(frozen=True)
class InputChange:
    relpath: str
    input_path: str
    what: str  # e.g. "size 120 -> 240 bytes"


def describe_change(
    marker: CompletionMarker,
    path: str,
    *,
    verify: bool,
    listed: PlannedFile | None = None,
    other: bool | None = None,
) -> str | None:
    """What differs between the input at `path` now and the version `marker` was made from, or None.
    `listed`: the file as this run's listing just stat'ed it (size, mtime), used instead of a stat.
    `other`: `another_input(marker, path)` where the caller needs it too (None: found here).

    A marker made from another file that still exists (`another_input`) is not this file's, whatever
    their sizes and mtimes; with `verify`, the same content (a copy) counts as unchanged."""
    if listed is not None and listed.mtime is not None:
        size, mtime = listed.size, listed.mtime
    else:
        try:
            stat = os.stat(path)
        except FileNotFoundError:
            return VANISHED
        size, mtime = stat.st_size, stat.st_mtime
    if other is None:
        other = another_input(marker, path)
    if other and not (verify and marker.input_sha256):
        return f"classified from another input file, {marker.input_path}, which still exists"
    if size != marker.input_size:
        return f"size {marker.input_size} -> {size} bytes"
    if verify and marker.input_sha256:
        return None if file_sha256(path) == marker.input_sha256 else "same size, different content (SHA-256)"
    if mtime != marker.input_mtime:
        return (
            f"modified at {iso_time(mtime)}, after the classified version of {iso_time(marker.input_mtime)}"
        )
    return None


def another_input(marker: CompletionMarker, path: str) -> bool:
    """Whether `marker` was made from an existing file other than `path` (compared by identity, st_dev and
    st_ino, so a link or another mount path to the same file is the same file). A recorded path that no
    longer exists is a corpus moved or renamed since (the plan's paths decide which file is which): False,
    and size and mtime (or the content hash) decide as for any input. Stats only where the paths differ."""
    return another_file(marker.input_path, path)


def another_file(recorded: str | None, path: str) -> bool:
    """Whether `recorded` (a path a marker or a piece layout recorded) is an existing file other than
    `path` (`another_input`'s test)."""
    if not recorded or recorded == path:
        return False
    try:
        then, now = os.stat(recorded), os.stat(path)
    except OSError:
        return False
    return (then.st_dev, then.st_ino) != (now.st_dev, now.st_ino)


def find_changed_inputs(
    files: Sequence[PlannedFile],
    output_dir: str,
    *,
    verify: bool,
    markers: MarkerListing | None = None,
    fingerprint: str | None = None,
) -> list[InputChange]:
    """Planned files whose completion marker no longer matches the input (an unreadable marker counts too).
    Their size and mtime are the planned ones where the listing took them. `markers`: the run start's
    listing of `_markers/` (None: scanned here). `fingerprint` (the run's): a marker written under another
    (a task of an earlier, killed run finished after this run took the directory: run_owner.py) is removed
    here, whatever the policy, with a warning: its file is pending like one never finished, not a change."""
    by_relpath = {f.relpath: f for f in files}
    changes: list[InputChange] = []
    unhashed = 0
    other_settings: list[str] = []
    other_outputs: list[str] = []
    listed = markers if markers is not None else MarkerListing(output_dir)
    for relpath in sorted(listed.relpaths() & by_relpath.keys()):
        planned = by_relpath[relpath]
        try:
            marker = read_marker(marker_path(output_dir, relpath))
        except InputFileError as exc:
            # Its reason only: the marker's own hint (delete it) would nest inside the policy's.
            changes.append(InputChange(relpath, planned.path, exc.reason))
            continue
        if fingerprint is not None and written_under_other_settings(marker.fingerprint, fingerprint):
            # Its output too (another format's name, or this run's attempt failing would leave it there
            # with no marker), then the marker.
            other_outputs += remove_output_of(output_dir, relpath, None)
            listed.remove(relpath)
            other_settings.append(relpath)
            continue
        unhashed += verify and not marker.input_sha256
        other = another_input(marker, planned.path)  # two stats where the paths differ: once per file
        what = describe_change(marker, planned.path, verify=verify, listed=planned, other=other)
        if what is not None:
            changes.append(InputChange(relpath, planned.path, what))
        elif verify and planned.mtime is not None and (planned.mtime != marker.input_mtime or other):
            # Touched (or a copy), same content: record the new mtime and path, so that checks by size and
            # mtime agree again.
            marker.input_mtime = planned.mtime
            marker.input_path = planned.path
            write_marker(marker_path(output_dir, relpath), marker)
    say_classified_again(other_settings)
    log_removed(other_outputs, output_dir, "the outputs those markers named")
    if unhashed:
        logger.warning(
            "%d completion marker(s) hold no content hash (written by an older version): those inputs "
            "were compared by size and mtime only",
            unhashed,
        )
    return changes


def apply_changed_input_policy(changes: Sequence[InputChange], policy: str, output_dir: str) -> set[str]:
    """The relpaths to classify again (policy `redo`); raises InputsChangedError with policy `error`."""
    if not changes:
        return set()
    listing = format_changes(changes)
    if policy == "error":
        raise InputsChangedError(
            f"{len(changes)} input file(s) changed after they were classified into {output_dir}:\n{listing}",
            hint="rerun with --on-changed-input redo to classify them again (their outputs are replaced), "
            "or restore the original inputs; if only their timestamps or paths changed (a copied corpus), "
            "--verify-inputs compares contents instead",
        )
    logger.warning("%d changed input file(s) will be classified again:\n%s", len(changes), listing)
    return {c.relpath for c in changes}


def merge_changes(*lists: Sequence[InputChange]) -> list[InputChange]:
    """One change per file (the first found: a done file with leftover pieces is in both lists)."""
    merged: dict[str, InputChange] = {}
    for changes in lists:
        for change in changes:
            merged.setdefault(change.relpath, change)
    return list(merged.values())


def forget_old_versions(
    output_dir: str,
    classified: Sequence[InputChange],
    cut: Sequence[InputChange],
    markers: MarkerListing | None = None,
    *,
    output_format: str | None = None,
) -> None:
    """Under `redo`: remove the pieces cut from another version of their input (`cut`), and those of a
    file with a completion marker (`classified`: pieces outlive the marker only when a kill came before
    their removal, so they are the marker's version, even where size and mtime match the new one); then the
    old versions' outputs (an unreadable marker's by the name `output_format`, the run's, gives) and
    markers, so that the files are pending like files never finished, with no output. Pieces of a file
    without a marker, cut from its current version (a stopped redo), stay: they are resumed. In this order,
    a kill in between leaves the old marker, so the file is found changed again. `markers`: the run start's
    listing of `_markers/`, which forgets them."""
    for relpath in dict.fromkeys(change.relpath for change in (*cut, *classified)):
        remove_pieces(output_dir, relpath)
    listing = markers if markers is not None else MarkerListing(output_dir)  # removes without a scan
    removed: list[str] = []
    for change in classified:
        removed += remove_output_of(output_dir, change.relpath, output_format)
        listing.remove(change.relpath)
    log_removed(removed, output_dir, "the outputs of the changed inputs' old versions, before their redo")


def format_changes(changes: Sequence[InputChange]) -> str:
    return "\n".join(capped_lines(changes, lambda c: f"  {c.input_path}: {c.what}", indent="  "))


def capped_lines(
    items: Sequence[T], line: Callable[[T], str], *, indent: str = "", more: str = ""
) -> list[str]:
    """The first LISTED items as lines, then how many more there are (`more`: what to add to that line)."""
    lines = [line(item) for item in items[:LISTED]]
    if len(items) > LISTED:
        lines.append(f"{indent}... and {len(items) - LISTED} more{more}")
    return lines
