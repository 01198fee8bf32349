"""A run's first steps in its locked output directory: bring what the directory holds in line with this run's
settings and plan, and find the files still to classify.

In order: the run fingerprint (checked, or stored; `--overwrite` discards the old run's state), temp files a
killed run left, what an earlier release left (driver/legacy_outputs.py), pieces of other settings or inputs (redone), inputs changed since they were classified (`--on-changed-input`), the plan, outputs whose
marker was lost, outputs outside the plan (reported), then the pending files and the pieces of finished ones.
"""

from __future__ import annotations

from typing import Any

from hpc_classify.config import RunConfig
from hpc_classify.driver.fingerprint import check_or_store_fingerprint
from hpc_classify.driver.foreign_pieces import forget_pieces_of_other_runs
from hpc_classify.driver.input_changes import (
    apply_changed_input_policy,
    find_changed_inputs,
    forget_old_versions,
    merge_changes,
)
from hpc_classify.driver.legacy_outputs import migrate_legacy_outputs
from hpc_classify.driver.lost_outputs import forget_lost_outputs
from hpc_classify.driver.pieces import changed_partial_inputs, remove_finished_pieces
from hpc_classify.driver.plan import PlannedFile, pending_files, remove_stale_temp_files, write_plan
from hpc_classify.driver.stale_outputs import warn_outside_plan
from hpc_classify.io.markers import MarkerListing


def reconcile_output_dir(
    config: RunConfig, output_dir: str, details: dict[str, Any], files: list[PlannedFile]
) -> tuple[str, list[PlannedFile]]:
    """The run's fingerprint and the planned `files` still to classify, once `output_dir` (locked by this
    run) agrees with `config` and `files`."""
    fingerprint = check_or_store_fingerprint(output_dir, details, overwrite=config.overwrite)
    legacy_quarantines: list[str] = []
    remove_stale_temp_files(output_dir, legacy_quarantines)
    # Before the pieces' inputs are compared: pieces of other settings or inputs are no version of this file.
    forget_pieces_of_other_runs(output_dir, files, fingerprint)
    # One scan of _markers/ for every step below; the steps that remove markers update it.
    markers = MarkerListing(output_dir)
    # Before lost outputs are looked for: a migrated marker of no output row names no output.
    migrate_legacy_outputs(output_dir, fingerprint, config.output_format, markers, legacy_quarantines)
    classified = find_changed_inputs(  # also removes markers of another fingerprint: pending again
        files, output_dir, verify=config.verify_inputs, markers=markers, fingerprint=fingerprint
    )
    cut = changed_partial_inputs(files, output_dir, verify=config.verify_inputs)
    if apply_changed_input_policy(merge_changes(classified, cut), config.on_changed_input, output_dir):
        # pending now, as if never classified, and with no output of the old version
        forget_old_versions(output_dir, classified, cut, markers, output_format=config.output_format)
    write_plan(output_dir, config.inputs, files)
    relpaths = [f.relpath for f in files]
    forget_lost_outputs(relpaths, output_dir, config.output_format, markers)
    warn_outside_plan(output_dir, relpaths, markers)  # renamed inputs: reported, kept
    pending = pending_files(files, output_dir, markers)
    remove_finished_pieces(output_dir, set(relpaths) - {f.relpath for f in pending})
    return fingerprint, pending
