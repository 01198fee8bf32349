"""What a run has to do: the input files, which of them are already done, in which order.

The plan (the --input specs made absolute, every input's relpath, size and absolute path) is stored as
`<output>/_plan.json` at the start of each run so that `hpc-classify status` and the report can count
remaining files from the output directory alone, from any working directory. A file is done when
its completion marker exists (an output without a marker is redone). Pending files go largest first, so the
longest tasks start early and do not trail at the end of the run.
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hpc_classify.driver.failures import LEGACY_FAILURES_FILE
from hpc_classify.driver.input_roots import refuse_renamed_outputs, shown_specs
from hpc_classify.driver.piece_files import PIECES_DIRNAME
from hpc_classify.driver.task import quarantine_relpath
from hpc_classify.errors import ConfigError, InputFileError, OutputDirectoryError
from hpc_classify.io.discovery import InputFile, absolute_spec, expand_inputs, output_relpath
from hpc_classify.io.markers import MARKER_SUFFIX, MARKERS_DIRNAME, MarkerListing
from hpc_classify.io.output_clashes import refuse_output_clashes
from hpc_classify.io.skipped_names import LEGACY_QUARANTINE_SUFFIX, is_hidden
from hpc_classify.io.writers import is_temp_file, temp_path_for, write_json_atomically

logger = logging.getLogger(__name__)

PLAN_FILE = "_plan.json"
OUR_DIRNAMES = (MARKERS_DIRNAME, PIECES_DIRNAME)  # bookkeeping directories only a run holding the lock writes


@dataclass(frozen=True)
class PlannedFile:
    path: str
    relpath: str
    size: int
    mtime: float | None = None  # st_mtime when listed: compared with the marker's to find changed inputs

    @property
    def input_file(self) -> InputFile:
        return InputFile(self.path, self.relpath)


def list_input_files(inputs: Sequence[str], output_dir: str, output_format: str) -> list[PlannedFile]:
    """Expand --input specs into files with their sizes; refuse an output that would overwrite an input
    or that two inputs would share, and a file of the stored plan that would get another output name
    (another --input root: driver/input_roots.py)."""
    # The listing's own stat of each file (it compares their inodes) gives the sizes and mtimes: one stat
    # per input, where 100,000 inputs on Lustre make each extra round a long wait on the metadata server.
    stats: dict[str, os.stat_result] = {}
    earlier = _earlier_plan(output_dir)
    files = expand_inputs(list(inputs), relpaths_by_path(earlier) if earlier else {}, stats=stats)
    refuse_renamed_outputs(earlier, files, inputs, output_dir, output_format)
    refuse_output_clashes((f.path, output_relpath(f.relpath, output_format)) for f in files)
    for f in files:
        _refuse_a_name_too_long(f, output_format)
    _check_output_apart(inputs, files, output_dir, output_format)
    planned = []
    for f in files:
        stat = stats[f.path]
        planned.append(PlannedFile(f.path, f.relpath, stat.st_size, stat.st_mtime))
    return planned


# Linux file systems (ext4, xfs, Lustre, GPFS, NFS) take names of up to 255 bytes.
NAME_MAX = 255


def _refuse_a_name_too_long(f: InputFile, output_format: str) -> None:
    """The names a file's bookkeeping adds to its own (marker, quarantine, and their temp files) must fit:
    found at the end, after classifying, the error was retried like any write and the work redone."""
    output_name = os.path.basename(output_relpath(f.relpath, output_format))
    temp_extra = len(os.path.basename(temp_path_for("x"))) - 1  # ".<name>.tmp-<pid>-<random>"
    derived = (
        os.path.basename(f.relpath) + MARKER_SUFFIX,
        output_name,
        quarantine_relpath(output_name),
    )
    longest = max(len(name.encode()) for name in derived) + temp_extra + 2  # pid digits to spare
    if longest > NAME_MAX:
        raise InputFileError(
            f.path,
            f"its name is too long for the files the run writes beside it: with a completion marker's "
            f"'{MARKER_SUFFIX}' and a temp file's suffix they would have {longest} bytes, over {NAME_MAX}",
            hint=f"rename the file (at most {len(os.path.basename(f.relpath).encode()) - (longest - NAME_MAX)} "
            "bytes), or link it under a shorter name",
        )


def pending_files(
    files: Sequence[PlannedFile], output_dir: str, markers: MarkerListing | None = None
) -> list[PlannedFile]:
    """Files without a completion marker (a changed input to redo has had its marker removed: driver/
    input_changes.py), largest first (ties by relpath, so the order is deterministic). `markers`: the run
    start's listing of `_markers/` (None: scanned here)."""
    # One directory scan instead of a stat per file: the difference matters on Lustre with 100,000 files.
    done = markers if markers is not None else MarkerListing(output_dir)
    pending = [f for f in files if f.relpath not in done]
    pending.sort(key=lambda f: (-f.size, f.relpath))
    return pending


def write_plan(output_dir: str, inputs: Sequence[str], files: Sequence[PlannedFile]) -> bool:
    """Store the plan; an unchanged plan is not rewritten (a finished run's rerun touches no file but
    its summary). Returns whether the file was written."""
    plan = {
        "inputs": [absolute_spec(spec) for spec in inputs],
        "files": [{"relpath": f.relpath, "size": f.size, "path": os.path.abspath(f.path)} for f in files],
    }
    try:
        earlier = read_plan(output_dir)
    except OutputDirectoryError:  # a corrupt plan is simply replaced
        earlier = None
    if earlier == plan:
        return False
    if earlier and earlier.get("inputs") and earlier["inputs"] != plan["inputs"]:
        # Another corpus into this directory, or an --input added or dropped: say so, as the outputs of what
        # the last run planned stay beside the new ones (`status` counts them outside the plan).
        logger.warning(
            "--input differs from the last run's into %s (%s, now %s): outputs of files no longer listed are "
            "kept; use a new --output for another corpus",
            output_dir,
            shown_specs(earlier["inputs"]),
            shown_specs(plan["inputs"]),
        )
    write_json_atomically(os.path.join(output_dir, PLAN_FILE), plan)
    return True


_REWRITE = "rerun the same `hpc-classify run` to rewrite it (finished files are kept)"


def read_plan(output_dir: str) -> dict[str, Any] | None:
    """The stored plan ({"inputs": [...], "files": [{"relpath", "size", "path"}, ...]}; "path" is missing
    in plans of older versions), or None before any run. OutputDirectoryError for an unreadable one."""
    path = os.path.join(output_dir, PLAN_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            plan = json.load(f)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputDirectoryError(
            f"{output_dir} is a file, not a run's output directory",
            hint="pass the --output directory of a run",
        ) from None
    except OSError as exc:
        raise OutputDirectoryError(
            f"cannot read the run plan {path}: {exc.strerror or exc}", hint="check its permissions"
        ) from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise OutputDirectoryError(f"the run plan {path} is not valid JSON ({exc})", hint=_REWRITE) from None
    if not _is_plan(plan):
        raise OutputDirectoryError(
            f'the run plan {path} is malformed: expected {{"inputs": [...], "files": [{{"relpath", "size"}}, ...]}}',
            hint=_REWRITE,
        )
    return plan


def _is_plan(plan: Any) -> bool:
    if not isinstance(plan, dict) or not isinstance(plan.get("files"), list):
        return False
    inputs = plan.get("inputs", [])
    if not isinstance(inputs, list) or not all(isinstance(spec, str) for spec in inputs):
        return False
    return all(
        isinstance(e, dict)
        and isinstance(e.get("relpath"), str)
        and isinstance(e.get("size"), int)
        and isinstance(e.get("path", ""), str)
        for e in plan["files"]
    )


def _earlier_plan(output_dir: str) -> dict[str, Any] | None:
    """The stored plan (None before a first run, or where the plan is unreadable: the run rewrites it)."""
    try:
        return read_plan(output_dir)
    except OutputDirectoryError:
        return None


def relpaths_by_path(plan: dict[str, Any]) -> dict[str, str]:
    """path -> relpath of a plan's files (plans of older versions store no path: left out)."""
    return {e["path"]: e["relpath"] for e in plan.get("files", []) if e.get("path")}


def stored_files(plan: dict[str, Any]) -> dict[str, PlannedFile]:
    """The plan's files by relpath; `path` is "" in plans of older versions (then only the marker knows)."""
    return {e["relpath"]: PlannedFile(e.get("path", ""), e["relpath"], e["size"]) for e in plan["files"]}


def remove_stale_temp_files(output_dir: str, legacy_quarantines: list[str] | None = None) -> int:
    """Delete temp files a killed run left in the output tree (only our own `.<name>.tmp-…` pattern).
    `legacy_quarantines`: where given, the relpaths of the quarantines under an older version's name found
    beside the outputs are appended to it (driver/legacy_outputs.py renames them: this walk is their listing).

    Safe only while holding the run lock: then no writer of ours is active in this directory.
    """
    removed = 0
    for dirpath, dirnames, filenames in os.walk(output_dir):
        # Only where a run of ours writes: outputs (their relpaths have no part that a listing passes over:
        # is_hidden), _markers/ and _pieces/ (whose own names are plain, so the walk goes on inside them).
        # Other bookkeeping dirs (e.g. the Slurm launcher's _jobs/) may be written by live processes.
        dirnames[:] = [d for d in dirnames if not is_hidden(d) or d in OUR_DIRNAMES]
        directory = os.path.relpath(dirpath, output_dir)
        beside_outputs = legacy_quarantines is not None and directory.split(os.sep)[0] not in OUR_DIRNAMES
        for name in filenames:
            if is_temp_file(name):
                try:
                    os.remove(os.path.join(dirpath, name))
                    removed += 1
                except FileNotFoundError:
                    pass
            elif beside_outputs and name.startswith("_") and name.endswith(LEGACY_QUARANTINE_SUFFIX):
                legacy_quarantines.append(
                    posixpath.normpath(posixpath.join(directory.replace(os.sep, "/"), name))
                )
    if removed:
        logger.info("removed %d temp file(s) left by an interrupted run in %s", removed, output_dir)
    return removed


def _check_output_apart(
    inputs: Sequence[str], files: Sequence[InputFile], output_dir: str, output_format: str
) -> None:
    out = os.path.realpath(output_dir)
    for spec in inputs:
        if os.path.isdir(spec):
            root = os.path.realpath(spec)
            if out == root or out.startswith(root + os.sep):
                raise ConfigError(
                    f"--output {output_dir} is inside the input directory {spec}: outputs would be read as inputs",
                    hint="choose an output directory outside the inputs",
                )
    # realpath once per directory, not per file: cheap with 100,000 inputs in a few directories.
    real_dirs: dict[str, str] = {}

    def real_dir(path: str) -> str:
        directory = os.path.dirname(path)
        if directory not in real_dirs:
            real_dirs[directory] = os.path.realpath(directory)
        return real_dirs[directory]

    for f in files:
        out_relpath = output_relpath(f.relpath, output_format)
        # Older versions' failure log, still read where the current one is absent (driver/failures.py).
        if out_relpath == LEGACY_FAILURES_FILE:
            raise ConfigError(
                f"the output for {f.path} would be {LEGACY_FAILURES_FILE} at the top of --output, which is the "
                "failure log of earlier versions (read and removed by every run)",
                hint="rename that input or move it into a sub-directory; if it is an earlier run's failure "
                "log (the inputs are an hpc_classify output), move it out of the inputs",
            )
        target = os.path.join(out, out_relpath)
        same_name = os.path.basename(target) == os.path.basename(f.path)
        if same_name and real_dir(target) == real_dir(f.path):
            raise ConfigError(
                f"the output for {f.path} would overwrite the input itself", hint="choose another --output"
            )
