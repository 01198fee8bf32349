"""A run that ends with files neither done nor failed, though nothing stopped it: never "all files done".

The dispatcher finishes every file it is given (done, or failed after its retries) unless a stop or a halt
ends it early. Should a file still be left over without either (a bug, or a step of the file system that
the driver could not see), the run says so: it names the files and what each lacks, and exits 3
(resumable: the batch script requeues it and the rerun finishes them), or 5 when this run finished
nothing, so that a file left over by every attempt cannot requeue the job for ever.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence

from hpc_classify import exit_codes
from hpc_classify.driver.pieces import partly_done
from hpc_classify.driver.plan import PlannedFile
from hpc_classify.driver.summary import RunStats
from hpc_classify.io.markers import marker_path
from hpc_classify.named_items import first_and_count

logger = logging.getLogger(__name__)

NAMED_IN_SUMMARY = 10  # files named in the summary's stop_reason; the log names all


def check_all_accounted_for(stats: RunStats, pending: Sequence[PlannedFile], output_dir: str) -> None:
    """After a run that nothing stopped: if files remain, log each with what it lacks and make the run
    stop as interrupted (`stats.stop_reason`, `stats.stop_exit_code`)."""
    if stats.files_remaining <= 0:
        return
    failed = set(stats.failed)
    left = [
        f.relpath
        for f in pending
        if f.relpath not in failed and not os.path.exists(marker_path(output_dir, f.relpath))
    ]
    in_pieces = {p["relpath"]: p for p in partly_done(output_dir, set(left))}
    for relpath in left:
        logger.error(
            "%s was neither finished nor failed by this run: %s", relpath, _lacks(in_pieces.get(relpath))
        )
    named = first_and_count(left, NAMED_IN_SUMMARY)
    stats.stop_reason = (
        f"{stats.files_remaining} file(s) left neither done nor failed, though nothing stopped the run"
        f"{': ' + named if named else ''}; rerun to finish them"
    )
    stats.stop_exit_code = exit_codes.INTERRUPTED
    logger.error("%s", stats.stop_reason)


def _lacks(pieces: dict | None) -> str:
    if pieces is None:
        return "no completion marker and no pieces"
    count = "?" if pieces["pieces"] is None else pieces["pieces"]
    if pieces["pieces_done"] == pieces["pieces"]:
        return f"all {count} pieces done, not assembled (no completion marker)"
    return f"{pieces['pieces_done']} of {count} pieces done, no completion marker"
