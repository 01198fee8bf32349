"""One schema for an output directory's Parquet files, once every planned file is done.

Each output is written with the column types of its own rows, so files of one run can differ (a field null in
all of one shard's rows, `1` in one and `1.5` in another, a key only in later shards), and readers of the
directory (`pd.read_parquet`, `pyarrow.dataset`, dask) then fail to merge them or silently keep the first
file's columns. At the end of a complete Parquet run (and by `hpc-classify unify-schema --output DIR`) the
outputs that the markers name are brought to one schema (io/parquet_dataset.py: footers read, unified,
the files that differ rewritten atomically with safe casts only), each rewritten file's marker gets its new
`output_size`, and `DIR/_common_metadata` holds the schema. A column of no common type (text in one file,
int64 in another) leaves every file as it is: the log and `_summary.json` name it and its files, and no
`_common_metadata` is written; nor when an output could not be read, its marker could not, or a Parquet file
a reader of the directory would read has no marker (driver/schema_outputs.py). Nothing here changes a run's exit code.

A stop asked while the markers, footers or output sizes are read ends the reads and the pass writes nothing
more: after a SIGTERM, what KillWait leaves is for the summary. Every rename first checks that this process still owns the directory.

Kill-safe and idempotent: every rewrite is atomic, the next pass rewrites what is left and sets the
`output_size` of any marker a kill left stale; a directory already unified is read (markers and footers)
and not written but for `_common_metadata`. A run that classifies anything, or a run start that removes
outputs (driver/stale_outputs.py), first removes `_common_metadata`, which would no longer describe the files.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from hpc_classify import exit_codes
from hpc_classify.driver.lock import LOCK_LOST
from hpc_classify.driver.run_context import RunContext
from hpc_classify.driver.schema_outputs import ownership_check, read_outputs, record_size, unmarked_outputs
from hpc_classify.errors import HpcClassifyError, OutputDirectoryError
from hpc_classify.io.formats import PARQUET
from hpc_classify.io.markers import CompletionMarker, MarkerFiles, read_marker_files
from hpc_classify.io.parquet_dataset import (
    COMMON_METADATA,
    Clash,
    conform_file,
    plan_schema,
    remove_common_metadata,
    write_common_metadata,
)
from hpc_classify.io.threaded_map import METADATA_THREADS, map_in_threads, run_until_stopped

logger = logging.getLogger(__name__)

UNREADABLE_NAMED = 10  # unreadable outputs named in the summary (all are counted)
# What the end of a run rewrites itself: a minute or two of one process's I/O. Past it (a key in a few late
# shards is a column every other file lacks: the whole output copied) the job would hold its nodes for hours
# of copying, so the run ends and says to run `hpc-classify unify-schema`, which has no limit.
RUN_REWRITE_BYTES = 4 << 30
# Rewrites at once at a run's end: a parallel file system gives several streams more than one (the node is
# otherwise idle by then); `unify-schema --threads` chooses its own.
RUN_REWRITE_THREADS = 4
# The reads and writes of a pass, in their order: what a stop came during (`SchemaOutcome.stopped_while`).
MARKERS, LISTING, FOOTERS, REWRITES, SIZES = "markers", "listing", "footers", "rewrites", "sizes"


@dataclass
class SchemaOutcome:
    """What one pass did; `to_summary` is `_summary.json`'s `output_schema`."""

    files: int = 0
    differing: int = 0  # files whose schema differed from the unified one (to rewrite)
    rewritten: int = 0
    markers_updated: int = 0
    clashes: list[Clash] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)  # relpath -> why its footer could not be read
    common_metadata: str | None = None  # its path, once written
    stopped: bool = False  # a stop came before every file was rewritten: the next pass finishes
    stopped_while: str = ""  # MARKERS, LISTING, FOOTERS, REWRITES or SIZES: what a stop cut short
    footers_read: int = 0
    deferred_bytes: int = 0  # the rewrites were left to `hpc-classify unify-schema`: this many bytes to copy
    seconds: float = 0.0
    # The markers as the pass left them (its new output sizes in): the run's report counts them, not read again.
    markers: MarkerFiles = field(default_factory=MarkerFiles, repr=False)

    def stop_progress(self) -> str:
        """What was done and what was left when a stop came (`stopped`), for the log and the CLI."""
        if self.stopped_while == MARKERS:
            found = f"{self.files} Parquet output(s) found so far"
            return f"while reading the completion markers ({found}): nothing rewritten"
        if self.stopped_while == LISTING:
            return "while listing the output directory for Parquet files no marker names: nothing rewritten"
        if self.stopped_while == FOOTERS:
            return f"while reading the outputs' schemas ({self.footers_read} of {self.files} read): nothing rewritten"
        during = "rewriting" if self.stopped_while == REWRITES else "checking the markers' output sizes"
        rewritten = (
            f"{self.rewritten} of {self.differing} differing Parquet output(s) rewritten to one schema"
        )
        return f"while {during}: {rewritten}"

    def to_summary(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "rewritten": self.rewritten,
            "markers_updated": self.markers_updated,
            "clashes": [c.to_dict() for c in self.clashes],
            "unreadable": dict(list(self.unreadable.items())[:UNREADABLE_NAMED]),
            "unreadable_count": len(self.unreadable),
            "common_metadata": self.common_metadata,
            "stopped": self.stopped,
            "stopped_while": self.stopped_while,
            "deferred_bytes": self.deferred_bytes,
            "seconds": round(self.seconds, 3),
        }


def before_classifying(output_format: str, output_dir: str) -> None:
    """A Parquet run about to write outputs: `_common_metadata` may no longer describe them, so it goes."""
    if output_format == PARQUET.name and remove_common_metadata(output_dir):
        logger.info("removed %s: rewritten when every file is done", COMMON_METADATA)


def after_run(context: RunContext, exit_code: int) -> tuple[dict[str, Any] | None, MarkerFiles | None]:
    """The `output_schema` of a run's summary: a complete Parquet run's outputs unified (None: not a
    Parquet run, or files failed or remain), and the markers it read, as it left them, for the report (None:
    not read, or not all of them). An error here (disk full, a bug) is logged, never the run's."""
    if context.config.output_format != PARQUET.name or exit_code != exit_codes.OK:
        return None, None
    if context.stop.requested:  # finished within the stop's grace: the job's last seconds are not for this
        logger.warning(
            "the Parquet outputs were not brought to one schema (%s received): the next run does it, or "
            "`hpc-classify unify-schema --output %s`",
            context.stop.signal_name,
            context.output_dir,
        )
        return {"skipped": context.stop.signal_name}, None
    try:
        outcome = unify_output_schemas(
            context.output_dir,
            stopped=lambda: context.stop.requested,
            owned=ownership_check(
                context.output_dir, context.fingerprint, lambda: context.stop.signal_name == LOCK_LOST
            ),
            rewrite_limit=RUN_REWRITE_BYTES,
            threads=RUN_REWRITE_THREADS,
        )
        return outcome.to_summary(), outcome.markers if outcome.markers.complete else None
    except Exception as exc:  # noqa: BLE001 - pyarrow's ArrowInvalid, a MemoryError: the run is complete
        logger.error(
            "the Parquet outputs were not brought to one schema: %s: %s; HINT: rerun to finish",
            type(exc).__name__,
            exc,
            exc_info=not isinstance(exc, HpcClassifyError | OSError),
        )
        return {"error": str(exc)}, None


def unify_output_schemas(
    output_dir: str,
    *,
    stopped: Callable[[], bool] = lambda: False,
    owned: Callable[[str], None] = lambda _path: None,
    rewrite_limit: int | None = None,
    threads: int = 1,
    read_threads: int = METADATA_THREADS,
) -> SchemaOutcome:
    """Bring the Parquet outputs the markers of `output_dir` name to one schema (see the module's doc);
    `stopped`: asked as markers and footers are read (once true, none other is read and nothing is
    written) and before each rewrite starts (a stop signal, a lost lock): the rewrites in flight finish,
    no other starts; `owned(path)`: asked before each rename, raises when this process no longer owns the
    directory (driver/schema_outputs.py); `rewrite_limit`: more bytes than this to rewrite are left
    (`deferred_bytes`), none rewritten; `threads`: rewrites at once; `read_threads`: markers and footers
    read at once. The outcome, the files and the markers are those of one thread, whatever the numbers."""
    started = time.monotonic()
    markers = read_marker_files(output_dir, read_threads, stopped=stopped)
    unreadable: dict[str, str] = {}  # relpath -> why: markers, outputs with no marker, footers
    outputs = read_outputs(output_dir, markers, unreadable)
    if stopped():  # the markers may be some of them only
        outcome = SchemaOutcome(
            files=len(outputs), unreadable=unreadable, stopped=True, stopped_while=MARKERS, markers=markers
        )
        return _stopped_before_writing(outcome, started, output_dir)
    unreadable.update(unmarked_outputs(output_dir, outputs, read_threads, stopped))
    if stopped():  # the listing may have left directories out
        outcome = SchemaOutcome(
            files=len(outputs), unreadable=unreadable, stopped=True, stopped_while=LISTING, markers=markers
        )
        return _stopped_before_writing(outcome, started, output_dir)
    plan = plan_schema(sorted(outputs), threads=read_threads, stopped=stopped)
    outcome = SchemaOutcome(
        files=len(outputs),
        differing=len(plan.to_rewrite),
        clashes=[_relative(c, output_dir) for c in plan.clashes],
        unreadable={
            **unreadable,
            **{os.path.relpath(p, output_dir): why for p, why in plan.unreadable.items()},
        },
        footers_read=plan.read,
        markers=markers,
    )
    if plan.stopped or stopped():  # the job's last seconds go to its summary: nothing written
        outcome.stopped, outcome.stopped_while = True, FOOTERS
        return _stopped_before_writing(outcome, started, output_dir)
    to_rewrite = plan.to_rewrite if plan.schema is not None else []
    to_copy = sum(_size(outputs[path][1], path) for path in to_rewrite)
    if rewrite_limit is not None and to_copy > rewrite_limit:
        outcome.deferred_bytes, to_rewrite = to_copy, []

    def rewrite(path: str) -> tuple[Clash | None, bool]:
        """Its marker follows its own file: a kill between the two leaves one stale size, not every one."""
        clash, size = conform_file(path, plan.schema, before_rename=lambda: owned(path))
        return clash, clash is None and record_size(output_dir, markers, outputs[path], path, owned, size)

    done, outcome.stopped = run_until_stopped(rewrite, to_rewrite, threads, stopped)
    outcome.stopped_while = REWRITES if outcome.stopped else ""
    recorded = set()
    for path, (clash, marker_updated) in done:
        if clash is None:
            outcome.rewritten += 1
            outcome.markers_updated += marker_updated
            recorded.add(path)
        else:
            outcome.clashes.append(_relative(clash, output_dir))
    if (
        not outcome.stopped
    ):  # a stat each (a metadata request on Lustre): threaded, and not in a stop's last seconds
        left = [(path, entry) for path, entry in outputs.items() if path not in recorded]
        sizes = map_in_threads(
            lambda item: record_size(output_dir, markers, item[1], item[0], owned),
            left,
            read_threads,
            stopped,
        )
        outcome.markers_updated += sum(sizes)
        outcome.stopped = stopped()
        outcome.stopped_while = SIZES if outcome.stopped else ""
    common = os.path.join(output_dir, COMMON_METADATA)
    if plan.schema is not None and not (
        outcome.clashes or outcome.unreadable or outcome.stopped or outcome.deferred_bytes
    ):
        outcome.common_metadata = write_common_metadata(output_dir, plan.schema, lambda: owned(common))
    elif _still_owned(owned, common):  # a lost lock's directory is the new owner's to tidy
        remove_common_metadata(output_dir)
    outcome.seconds = time.monotonic() - started
    _log(outcome, output_dir)
    return outcome


def _stopped_before_writing(outcome: SchemaOutcome, started: float, output_dir: str) -> SchemaOutcome:
    outcome.seconds = time.monotonic() - started
    _log(outcome, output_dir)
    return outcome


def _still_owned(owned: Callable[[str], None], path: str) -> bool:
    try:
        owned(path)
    except OutputDirectoryError:
        return False
    return True


def _size(marker: CompletionMarker, path: str) -> int:
    if marker.output_size is not None:
        return marker.output_size
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _relative(clash: Clash, output_dir: str) -> Clash:
    named = {
        kind: [os.path.relpath(p, output_dir) for p in paths] for kind, paths in clash.files_by_type.items()
    }
    return replace(clash, files_by_type=named)


def _log(outcome: SchemaOutcome, output_dir: str) -> None:
    if outcome.unreadable:
        named = ", ".join(list(outcome.unreadable)[:UNREADABLE_NAMED])
        logger.error(
            "%d Parquet output(s) could not be read or have no readable marker (no %s written): %s",
            len(outcome.unreadable),
            COMMON_METADATA,
            named,
        )
    if outcome.clashes:
        logger.warning(
            "the Parquet outputs keep their own schemas (no %s written): %s; HINT: give each such column one "
            "type in the inputs, or read the files one at a time",
            COMMON_METADATA,
            "; ".join(c.describe() for c in outcome.clashes),
        )
    elif outcome.deferred_bytes:
        logger.warning(
            "the Parquet outputs keep their own schemas: %d of %d file(s) differ, %.1f GiB to rewrite, more "
            "than a run's end does itself; HINT: run `hpc-classify unify-schema --output %s` (one process, "
            "e.g. a one-node job) to give them one schema",
            outcome.differing,
            outcome.files,
            outcome.deferred_bytes / (1 << 30),
            output_dir,
        )
    elif outcome.stopped:
        logger.warning(
            "stopped %s, every file whole; no %s written; run `hpc-classify unify-schema --output %s` (or the "
            "next run) to finish",
            outcome.stop_progress(),
            COMMON_METADATA,
            output_dir,
        )
    elif outcome.common_metadata is not None:
        logger.info(
            "the %d Parquet output(s) share one schema (%d rewritten to it, %.1f s); written %s",
            outcome.files,
            outcome.rewritten,
            outcome.seconds,
            outcome.common_metadata,
        )
