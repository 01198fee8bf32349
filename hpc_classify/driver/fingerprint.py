"""The run fingerprint: what an output directory's files were made with, stored as `<output>/_run.json`.

Resuming into a directory is only safe when the new run would write the same outputs: same model (id and
revision, and the checkpoint's hash, so a re-downloaded or retrained checkpoint counts as different),
same classifier settings, same output format and same package version. Anything else is refused
unless the user passes --overwrite, which takes the directory over (`_run.json` first, so that the old run's
tasks are fenced out) and then discards the old run's outputs (those its markers name, and those its plan's
files have under its output format: ours) and its bookkeeping so every file is redone, and no output of the
old settings is left among the new ones. A first run into a directory that holds files of no run is refused
alike (its outputs could replace them).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from typing import Any

from hpc_classify._version import __version__
from hpc_classify.config import stable_hash
from hpc_classify.driver.failures import FAILURES_FILE, LEGACY_FAILURES_FILE
from hpc_classify.driver.piece_files import PIECES_DIRNAME
from hpc_classify.driver.plan import PLAN_FILE
from hpc_classify.driver.run_owner import RUN_FILE
from hpc_classify.driver.stale_outputs import log_removed, remove_outputs_of_markers, remove_outputs_of_plan
from hpc_classify.driver.summary import SUMMARY_FILE
from hpc_classify.errors import OutputDirectoryError
from hpc_classify.io.markers import MARKERS_DIRNAME
from hpc_classify.io.writers import write_json_atomically
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)

# Bookkeeping that belongs to one run's fingerprint; removed when --overwrite takes a directory over, in this
# order: the plan last, as the discard of a take-over killed midway reads it again to find the old outputs.
RUN_STATE = (MARKERS_DIRNAME, PIECES_DIRNAME, FAILURES_FILE, LEGACY_FAILURES_FILE, SUMMARY_FILE, PLAN_FILE)
# `_run.json`'s note of an --overwrite's discard not finished yet: {"fingerprint", "output_format"} of the old run.
DISCARDING = "discarding"
# `_run.json`'s note that the directory's outputs are laid out as this version writes them (a file of no output
# row has no output; quarantines are `_<output>.quarantine`). A directory without it was started by an earlier
# release of the same version number: its leftovers are migrated once (driver/legacy_outputs.py).
LAYOUT_KEY = "output_layout"
LAYOUT = 2


def compute_run_fingerprint(
    classifier_fingerprints: list[dict[str, Any]],
    *,
    output_format: str,
    keep_columns: tuple[str, ...] | None = None,
    key_column: str | None = None,
) -> dict[str, Any]:
    """The fingerprint's details: everything that changes the rows of an output file (never speed settings)."""
    return {
        "package_version": __version__,
        "classifiers": classifier_fingerprints,
        "output_format": output_format,
        "keep_columns": list(keep_columns) if keep_columns is not None else None,
        "key_column": key_column,
    }


def fingerprint_id(details: dict[str, Any]) -> str:
    return stable_hash(details)


def read_run_file(output_dir: str) -> dict[str, Any] | None:
    path = os.path.join(output_dir, RUN_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        return None
    except ValueError as exc:
        raise OutputDirectoryError(
            f"{path} is not valid JSON ({exc})",
            hint="restore it, or pass --overwrite to redo every file into this directory",
        ) from exc


def check_or_store_fingerprint(output_dir: str, details: dict[str, Any], *, overwrite: bool) -> str:
    """Return the fingerprint id, after checking it against `_run.json` (or writing that file).

    On a mismatch: OutputDirectoryError naming the differences, or with `overwrite` a take-over:
    `_run.json` is written first with the new fingerprint and a `discarding` note (the old run's fingerprint
    and output format), so that a task of the old run still running (a joined cluster) fails the fence
    (run_owner.py) from that moment and cannot rename an output or marker behind the discard; then the old
    run's outputs (those its markers name, and those of every file its plan lists: a listing of `_markers/`
    may lag), its markers, pieces (with their markers), failures, summary and plan (last: a discard killed
    before it is finished from the plan again) are removed; then `_run.json` is written again without the
    note. A run that finds the note (a take-over killed midway: the new settings, or --overwrite with any)
    finishes the discard first.
    """
    new_id = fingerprint_id(details)
    stored = read_run_file(output_dir)
    if stored is not None and stored.get("fingerprint") == new_id:
        if pending := stored.get(DISCARDING):
            logger.warning(
                "%s: finishing the discard of a previous run that an --overwrite began", output_dir
            )
            discard_run_state(output_dir, pending.get("output_format"))
            _write_run_file(output_dir, new_id, details)
        return new_id
    if stored is None:
        refuse_files_of_no_run(output_dir, overwrite=overwrite)
    if stored is not None:
        differences = describe_differences(stored.get("details", {}), details)
        if not overwrite:
            raise OutputDirectoryError(
                f"{output_dir} holds the output of a different run (fingerprint {stored.get('fingerprint')} "
                f"there, {new_id} now): {differences}",
                hint="use the original model and settings to resume, a new --output, "
                "or --overwrite to discard the old run's markers and redo every file",
            )
        logger.warning("--overwrite: discarding the previous run in %s (%s)", output_dir, differences)
        # A discard already pending names the output format of the run whose outputs may be left.
        old_format = (stored.get(DISCARDING) or {}).get("output_format") or stored.get("details", {}).get(
            "output_format"
        )
        _write_run_file(
            output_dir,
            new_id,
            details,
            {DISCARDING: {"fingerprint": stored.get("fingerprint"), "output_format": old_format}},
        )
        discard_run_state(output_dir, old_format)
    _write_run_file(output_dir, new_id, details)
    return new_id


def _write_run_file(
    output_dir: str, new_id: str, details: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    write_json_atomically(
        os.path.join(output_dir, RUN_FILE),
        {
            "fingerprint": new_id,
            "details": details,
            "created": time.time(),
            LAYOUT_KEY: LAYOUT,
            **(extra or {}),
        },
        indent=2,
    )


def refuse_files_of_no_run(output_dir: str, *, overwrite: bool) -> None:
    """A first run into a directory that already holds files (none of a run: no `_run.json`) would replace
    any of them that has an output's name, the user's own data perhaps: refused, unless `overwrite`. Ours
    are `_`-named (the launcher's `_jobs/` comes first) or the failure log; hidden files are not data."""
    ours = {*RUN_STATE, RUN_FILE}
    found = sorted(
        entry.name + ("/" if entry.is_dir() else "")
        for entry in os.scandir(output_dir)
        if entry.name not in ours and not entry.name.startswith(("_", "."))
    )
    if not found:
        return
    listed = first_and_count(found)
    if overwrite:
        logger.warning("--overwrite: writing into %s, which holds files of no run: %s", output_dir, listed)
        return
    raise OutputDirectoryError(
        f"--output {output_dir} already holds files that no hpc-classify run wrote ({listed}): outputs with "
        "the same names would replace them",
        hint="give a new or empty --output, or --overwrite to write into it anyway",
    )


def discard_run_state(output_dir: str, output_format: str | None = None) -> None:
    """Remove the outputs of a previous run that its markers name (an unreadable marker's by the name
    `output_format`, the old run's, gives) and those its plan's files have under `output_format` (a marker
    the listing missed), then its bookkeeping (driver/stale_outputs.py: a file the new settings name
    otherwise, or that fails in the new run, must not keep the old settings' output)."""
    removed = remove_outputs_of_markers(output_dir, output_format)
    removed = sorted({*removed, *remove_outputs_of_plan(output_dir, output_format)})
    log_removed(removed, output_dir, "--overwrite: the outputs of the previous run's settings")
    for name in RUN_STATE:
        path = os.path.join(output_dir, name)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def describe_differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """'classifier.model: 'a' -> 'b'; ...' for the keys whose values differ (dotted paths into nested dicts)."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    changed = [
        f"{key}: {flat_old.get(key)!r} -> {flat_new.get(key)!r}"
        for key in sorted(set(flat_old) | set(flat_new))
        if flat_old.get(key) != flat_new.get(key)
    ]
    return "; ".join(changed) if changed else "details equal but fingerprint differs"


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, name + "."))
        elif isinstance(value, list) and any(isinstance(item, dict) for item in value):
            flat.update(_flatten(dict(enumerate(value)), name + "."))  # classifiers.0.model...
        else:
            flat[name] = value
    return flat
