"""Outputs that no completion marker of the current plan stands for: readers of an output directory glob it for
data files, so an output left under its final name after its marker is gone (or whose marker is of no planned
input) duplicates documents, or holds those of an old version of its input.

Which outputs are ours is read from our own bookkeeping, never guessed from names: a marker names the output
(and quarantine) it stands for, and a run's plan the files whose outputs it writes. Two steps remove its
marker, and remove the output with it, output first, so that a kill in between leaves the marker (found again
by the next run) and never an output without one:
- `--overwrite` over a run of other settings (driver/fingerprint.py): every output of the old run's markers
  (`remove_outputs_of_markers`), those the new settings would rewrite under the same name included: a file
  that fails in the new run must not keep the old settings' output; and the output (and quarantine) every
  file of the old run's `_plan.json` has under the old output format (`remove_outputs_of_plan`): a shared
  file system's cached listing of `_markers/` may miss a marker another node wrote a moment ago (NFS: up to
  a minute), and that file's output would outlive its marker; then the old run's bookkeeping.
- `--on-changed-input redo` (driver/input_changes.py): the old version's output, before the new attempt
  (`remove_output_of`), so that a failed redo leaves no output of the old version.
Otherwise an output without any marker (a run killed in the instant between its rename and its marker's) is
not provably ours, and stays: a resume of the same settings rewrites it.

Markers of files the plan no longer lists (a renamed or recompressed input, an input spec narrowed) are
reported, never removed (`warn_outside_plan`, and `status` through `outside_entry`): their inputs may only be
out of this run's --input (another part of a corpus classified into the same directory), and their outputs
are then wanted.
"""

from __future__ import annotations

import logging
import os
import posixpath
import stat
from collections.abc import Collection
from typing import Any

from hpc_classify.driver.lost_outputs import output_of_marker
from hpc_classify.driver.plan import PLAN_FILE, read_plan
from hpc_classify.driver.task import quarantine_relpath
from hpc_classify.errors import ConfigError, InputFileError, OutputDirectoryError
from hpc_classify.io.formats import output_relpath
from hpc_classify.io.markers import MARKERS_DIRNAME, CompletionMarker, MarkerListing, marker_path, read_marker
from hpc_classify.io.parquet_dataset import COMMON_METADATA, remove_common_metadata
from hpc_classify.io.skipped_names import LEGACY_QUARANTINE_SUFFIX, QUARANTINE_SUFFIX, QUARANTINE_SUFFIXES
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)

LISTED = 20  # outputs named in a warning; the rest are counted
NO_OUTPUT = "no output file (classified, no output rows)"  # a marker naming output "": what messages say
OUTSIDE_REMEDY = (
    "if their inputs were renamed, recompressed or removed, these outputs duplicate or outlive them: delete "
    "each output and its marker (_markers/<relpath>.done.json); if they are another part of the corpus "
    "classified into this directory, keep them"
)


def outputs_of_marker(output_dir: str, relpath: str, fallback_format: str | None) -> list[str]:
    """The relpaths of the output and quarantine that `relpath`'s marker names (in the input's directory: the
    absolute paths it recorded may be of a directory since moved); for an unreadable marker, those
    `fallback_format` gives (None: none)."""
    try:
        marker = read_marker(marker_path(output_dir, relpath))
    except InputFileError:
        return outputs_by_name(relpath, fallback_format) if fallback_format else []
    named = [marker.output_path] if _output_name(marker.output_path) else []
    if marker.quarantine_path and marker.quarantine_path.endswith(QUARANTINE_SUFFIXES):
        named.append(marker.quarantine_path)
    return [output_of_marker(relpath, path) for path in named]


def outputs_by_name(relpath: str, output_format: str) -> list[str]:
    """The relpaths of the output and quarantine that the input `relpath` has under `output_format`; none
    for a relpath no input of ours has (not plain, or without a document suffix) or whose output name is
    bookkeeping's ("_"/"." names)."""
    parts = relpath.split("/")
    if relpath.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return []
    try:
        out_relpath = output_relpath(relpath, output_format)
    except ConfigError:  # not a format or a document name of ours: nothing known to be ours
        return []
    if not _output_name(out_relpath):
        return []
    # An older version's quarantine name too: the run being discarded may be of that version.
    legacy = quarantine_relpath(out_relpath).removesuffix(QUARANTINE_SUFFIX) + LEGACY_QUARANTINE_SUFFIX
    return [out_relpath, quarantine_relpath(out_relpath), legacy]


def remove_output_of(
    output_dir: str, relpath: str, fallback_format: str | None, *, schema_gone: bool = False
) -> list[str]:
    """Remove the output (and quarantine) `relpath`'s marker names, not the marker; returns the relpaths
    removed (a file already gone, or not a regular file, is left). `schema_gone`: `_common_metadata` was
    removed already (by a caller removing many)."""
    return remove_output_files(
        output_dir, outputs_of_marker(output_dir, relpath, fallback_format), schema_gone
    )


def remove_outputs_of_markers(output_dir: str, fallback_format: str | None) -> list[str]:
    """Remove the outputs (and quarantines) that every marker under `output_dir` names, not the markers;
    returns the removed files' relpaths, sorted."""
    relpaths = sorted(MarkerListing(output_dir).relpaths())
    if relpaths:
        _remove_schema(output_dir)  # once, not once per output
    removed: list[str] = []
    for relpath in relpaths:
        removed.extend(remove_output_of(output_dir, relpath, fallback_format, schema_gone=True))
    return sorted(removed)


def remove_outputs_of_plan(output_dir: str, output_format: str | None) -> list[str]:
    """Remove the output (and quarantine) that every file of the stored plan has under `output_format` (the
    previous run's), whether or not a listing of `_markers/` found its marker; returns the removed files'
    relpaths, sorted. Without a readable plan, or the previous run's format, nothing: a warning says that
    only the markers listed were gone by, where there are markers."""
    try:
        plan = read_plan(output_dir)
    except OutputDirectoryError as exc:
        plan, why = None, str(exc).partition("\n")[0]  # no HINT: rewriting it is no remedy now
    else:
        why = f"no run plan {os.path.join(output_dir, PLAN_FILE)}"
    if plan is None or not output_format:
        if os.path.isdir(os.path.join(output_dir, MARKERS_DIRNAME)):
            logger.warning(
                "--overwrite: %s: the previous run's outputs are found only by listing its markers; an output "
                "whose marker the listing misses (a shared file system's cached listing) stays",
                why if plan is None else "the previous run's output format is not recorded in _run.json",
            )
        return []
    named = [out for entry in plan["files"] for out in outputs_by_name(entry["relpath"], output_format)]
    return sorted(remove_output_files(output_dir, named))


def remove_output_files(output_dir: str, relpaths: list[str], schema_gone: bool = False) -> list[str]:
    """Remove those of `relpaths` (output relpaths, "/"-separated) that are regular files; returns the relpaths
    removed. The one remover of outputs: `_common_metadata` goes before the first of them (unless
    `schema_gone`): it would describe outputs no longer there, or replaced by a redo that the run may not
    finish (a kill, a stop before classifying)."""
    removed = []
    for out_relpath in relpaths:
        path = os.path.join(output_dir, *out_relpath.split("/"))
        try:
            if not stat.S_ISREG(os.lstat(path).st_mode):
                continue
            if not (removed or schema_gone):
                _remove_schema(output_dir)
            os.remove(path)
        except FileNotFoundError:
            continue
        removed.append(out_relpath)
    return removed


def _remove_schema(output_dir: str) -> None:
    if remove_common_metadata(output_dir):
        logger.info("removed %s: outputs are removed", COMMON_METADATA)


def outside_entry(
    output_dir: str, relpath: str, marker: CompletionMarker, input_exists: bool | None
) -> dict[str, Any]:
    """What `status` lists of a marker of no planned file: its output (in the output directory) and input;
    `input_exists` as the caller found it (None: not looked up, the inputs being out of reach)."""
    return {
        "relpath": relpath,
        "output": os.path.join(output_dir, *output_of_marker(relpath, marker.output_path).split("/"))
        if marker.output_path  # "": a file of no output row, which has none
        else None,
        "input_path": marker.input_path,
        "input_exists": input_exists,
    }


def warn_outside_plan(output_dir: str, planned: Collection[str], markers: MarkerListing) -> list[str]:
    """Warn of the markers of files not in `planned` (relpaths), naming the first LISTED outputs and the
    remedy; returns those marker relpaths, sorted. Only the named ones' markers are read."""
    outside = sorted(markers.relpaths() - set(planned))
    if not outside:
        return outside
    lines = []
    for relpath in outside[:LISTED]:
        try:
            marker = read_marker(marker_path(output_dir, relpath))
        except InputFileError as exc:
            lines.append(f"  {relpath}: {exc.reason}")
            continue
        entry = outside_entry(output_dir, relpath, marker, os.path.exists(marker.input_path))
        output = entry["output"] or f"{relpath}: {NO_OUTPUT}"
        lines.append(f"  {output} (input {entry['input_path']} {input_state(entry)})")
    if len(outside) > LISTED:
        lines.append(f"  ... and {len(outside) - LISTED} more (hpc-classify status --json lists them all)")
    logger.warning(
        "%d output(s) in %s have a marker of no file this run's --input lists (kept, not counted): %s\n%s",
        len(outside),
        output_dir,
        OUTSIDE_REMEDY,
        "\n".join(lines),
    )
    return outside


def output_in_words(entry: dict[str, Any]) -> str:
    """An `outside_entry`'s output: "output <path>", or that it has none."""
    return f"output {entry['output']}" if entry["output"] else NO_OUTPUT


def input_state(entry: dict[str, Any]) -> str:
    """An `outside_entry`'s input, in words."""
    return {True: "still exists", False: "is gone", None: "not checked"}[entry["input_exists"]]


def log_removed(removed: list[str], output_dir: str, why: str) -> None:
    if removed:
        named = first_and_count(removed)
        logger.warning("removed %d old output file(s) from %s (%s): %s", len(removed), output_dir, why, named)


def _output_name(path: str) -> bool:
    """A recorded path whose file name can be an output's: never "", "..", bookkeeping ("_") or hidden."""
    name = posixpath.basename(path.replace(os.sep, "/"))
    return bool(name) and not name.startswith(("_", "."))
